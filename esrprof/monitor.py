"""A training-loop helper: count once, then every N steps time the model on a probe input.

    monitor = esrprof.Monitor(model, probe_shape=(1, 3, 64, 64), every=500, log="eff.jsonl")
    for batch in loader:
        ...
        optimizer.step()
        monitor.step()

Training is left exactly as it was (weights bit-identical with and without the monitor): each
measurement runs inside :func:`esrprof.state.preserved` (every module's train flag, grad mode,
CPU and CUDA RNG, cuDNN flags), under ``torch.inference_mode``, on a probe drawn from a private
generator. A step that does not measure costs one increment and one modulo.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from esrprof.errors import UsageError

_FIELDS = (
    "step",
    "unix_time",
    "latency_ms",
    "latency_min_ms",
    "latency_max_ms",
    "repeats",
    "memory_mib",
    "params",
    "macs",
    "complete_macs",
)


@dataclass(frozen=True)
class MonitorRecord:
    step: int
    unix_time: float
    latency_ms: float  # median of the repeats
    latency_min_ms: float
    latency_max_ms: float
    repeats: int
    memory_mib: float | None  # CUDA: peak allocated during the probe; CPU: peak resident set
    params: int | None
    macs: int | None  # ntire2022 MACs (the challenge's "FLOPs") at the probe shape
    complete_macs: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Monitor:
    """Latency and memory of ``model`` on a probe input every ``every`` steps.

    ``log`` is a ``.jsonl`` or ``.csv`` file that records are appended to; ``tensorboard`` a
    log folder or a ``SummaryWriter`` (needs the tensorboard package). ``threads`` pins the
    intra-op threads while measuring (default: leave them as training set them).
    """

    def __init__(
        self,
        model: nn.Module,
        probe_shape: Sequence[int] = (1, 3, 64, 64),
        every: int = 100,
        log: str | os.PathLike[str] | None = None,
        *,
        repeats: int = 5,
        warmup: int = 1,
        threads: int | None = None,
        tensorboard: Any = None,
        count: bool = True,
        clock: Any = None,
        on_record: Callable[[MonitorRecord], None] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise UsageError(f"Monitor needs a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise UsageError(f"every={every!r}: must be a positive integer")
        if repeats < 1 or warmup < 0:
            raise UsageError("repeats must be >= 1 and warmup >= 0")
        if threads is not None and threads < 1:
            raise UsageError("threads must be >= 1")
        shape = tuple(probe_shape)
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            from esrprof.errors import InputShapeError

            raise InputShapeError(f"probe_shape {probe_shape!r} must be positive integers")
        self.model = model
        self.probe_shape = shape
        self.every = every
        self.repeats = repeats
        self.warmup = warmup
        self.threads = threads
        self.records: list[MonitorRecord] = []
        self._steps = 0
        self._log = _LogFile(Path(log)) if log is not None else None
        self._writer = _tensorboard_writer(tensorboard)
        self._clock = clock
        self._on_record = on_record
        self._probe: Any = None
        self.counts: Any = None
        self.count_error: str | None = None
        if count:
            self._count()

    # The hot path: everything else happens only on measuring steps.
    def step(self, step: int | None = None) -> MonitorRecord | None:
        """Advance one training step (or jump to ``step``); measure when it is due."""
        if step is not None and step == self._steps:
            return None  # the same step again (gradient accumulation): measured already
        self._steps = self._steps + 1 if step is None else step
        if self._steps % self.every:
            return None
        return self.measure()

    @property
    def steps(self) -> int:
        return self._steps

    def measure(self) -> MonitorRecord:
        """Time the probe now, append the record to the log, and return it."""
        import torch

        from esrprof.gate import model_device
        from esrprof.state import preserved

        device = model_device(self.model)
        if self._probe is None or str(self._probe.device) != device:
            self._probe = _probe(self.model, self.probe_shape, device)
        clock = self._clock or _clock(device)
        fn = _forward(self.model, self._probe)
        with (
            _threads(self.threads),
            preserved(self.model, eval_mode=True),
            torch.inference_mode(),
            _PeakMemory(device) as memory,
        ):
            for _ in range(self.warmup):
                clock.time_ms(fn)
            times = sorted(clock.time_ms(fn) for _ in range(self.repeats))
        n = self.counts.ntire2022 if self.counts is not None else None
        record = MonitorRecord(
            step=self._steps,
            unix_time=time.time(),
            latency_ms=times[len(times) // 2]
            if len(times) % 2
            else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2,
            latency_min_ms=times[0],
            latency_max_ms=times[-1],
            repeats=self.repeats,
            memory_mib=memory.mib,
            params=self.counts.params if self.counts is not None else None,
            macs=n.macs if n is not None else None,
            complete_macs=self.counts.complete.macs if self.counts is not None else None,
        )
        self.records.append(record)
        if self._log is not None:
            self._log.append(record)
        if self._writer is not None:
            for key in ("latency_ms", "memory_mib"):
                value = getattr(record, key)
                if value is not None:
                    self._writer.add_scalar(f"esrprof/{key}", value, record.step)
        if self._on_record is not None:
            self._on_record(record)
        return record

    def close(self) -> None:
        if self._writer is not None and hasattr(self._writer, "flush"):
            self._writer.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self) -> None:
        # A model the counter cannot handle must not stop training: keep the reason instead.
        from esrprof.errors import EsrprofError

        try:
            from esrprof.api import count

            self.counts = count(self.model, self.probe_shape)
        except (EsrprofError, RuntimeError, NotImplementedError, TypeError) as exc:
            self.count_error = f"{exc.__class__.__name__}: {exc}"


def _probe(model: nn.Module, shape: tuple[int, ...], device: str) -> Any:
    import torch

    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    generator = torch.Generator(device="cpu").manual_seed(0)
    return torch.rand(shape, generator=generator).to(device=device, dtype=dtype)


def _forward(model: nn.Module, x: Any) -> Callable[[], Any]:
    def forward() -> Any:
        return model(x)

    return forward


def _clock(device: str) -> Any:
    from esrprof.timing import make_clock

    return make_clock(device)


class _threads:
    def __init__(self, n: int | None):
        self.n = n
        self._ctx: Any = None

    def __enter__(self) -> None:
        if self.n is not None:
            from esrprof.timing import pinned_threads

            self._ctx = pinned_threads(self.n)
            self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


class _PeakMemory:
    """Peak CUDA memory allocated during the probe, or the process's peak resident set on CPU
    (esrprof.memory's readers; NVML sampling is off, a probe is too short for it)."""

    def __init__(self, device: str):
        import torch

        from esrprof.memory import SplitMemory

        self._split = SplitMemory(torch.device(device), use_nvml=False)
        self.mib: float | None = None

    def __enter__(self) -> _PeakMemory:
        self._split.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._split.__exit__(*exc)
        record = self._split.record
        key = "max_allocated_mib" if record.get("kind") == "cuda" else "peak_rss_mib"
        self.mib = record.get(key)


class _LogFile:
    def __init__(self, path: Path):
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise UsageError(f"log {path}: use a .jsonl or .csv file")
        self.path = path
        self.csv = suffix == ".csv"
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: MonitorRecord) -> None:
        row = record.to_dict()
        # One open-append-close per record: a crash mid-training keeps every earlier line.
        with self.path.open("a", encoding="utf-8", newline="") as fh:
            if self.csv:
                writer = csv.DictWriter(fh, fieldnames=_FIELDS)
                if fh.tell() == 0:
                    writer.writeheader()
                writer.writerow(row)
            else:
                fh.write(json.dumps(row) + "\n")


def _tensorboard_writer(target: Any) -> Any:
    if target is None:
        return None
    if hasattr(target, "add_scalar"):
        return target
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "tensorboard logging needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(target))
