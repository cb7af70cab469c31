"""PyTorch Lightning callback around :class:`esrprof.Monitor` (needs ``pip install lightning``).

    trainer = lightning.Trainer(callbacks=[EsrprofCallback((1, 3, 64, 64), every=500,
                                                           log="eff.jsonl")])

Steps are Lightning's ``global_step``; the monitor leaves training as it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        raise ImportError(
            "esrprof.integrations.lightning needs lightning: pip install 'esrprof[lightning]'"
        ) from None

from esrprof.monitor import Monitor


class EsrprofCallback(Callback):
    def __init__(
        self,
        probe_shape: Sequence[int] = (1, 3, 64, 64),
        every: int = 100,
        log: str | os.PathLike[str] | None = None,
        **monitor_kwargs: Any,
    ):
        super().__init__()
        self.probe_shape = tuple(probe_shape)
        self.every = every
        self.log = log
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.monitor = Monitor(
            pl_module, self.probe_shape, self.every, self.log, **self.monitor_kwargs
        )

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        if self.monitor is None or not trainer.is_global_zero:
            return
        record = self.monitor.step(trainer.global_step)
        if record is not None:
            pl_module.log("esrprof/latency_ms", record.latency_ms, rank_zero_only=True)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.monitor.close()
