"""The challenge's GPU figures predicted from the shape trace, on any machine, without a GPU.

    >>> from esrprof.prediction import predict, predict_challenge
    >>> p = predict_challenge(model)          # NTIRE 2022: Titan Xp, 510x510 and 339x510
    >>> p.memory.peak_allocated_mib, p.runtime.ms, p.runtime.memory_bound_share

One forward on meta tensors (no arithmetic, the same cost at any input size, the model
untouched) feeds two observers: the storages alive at each op, replayed through a model of the
CUDA caching allocator (what ``torch.cuda.max_memory_allocated()`` reads), and the kernels with
their arithmetic and traffic, costed on a GPU spec with one documented calibration.
See docs/prediction.md for the model, its assumptions, its error table and its limits.

Names resolve on first use, so importing this package (or ``esrprof.prediction.kinds``) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.prediction.api import CHALLENGE_2022, Preset, predict, predict_challenge
    from esrprof.prediction.calibration import CALIBRATION, Calibration
    from esrprof.prediction.gpus import GPUS, GpuSpec, gpu_spec
    from esrprof.prediction.kinds import KINDS
    from esrprof.prediction.records import (
        KindTime,
        LayerTime,
        MemoryPrediction,
        Prediction,
        RuntimePrediction,
    )

_LAZY = {
    **dict.fromkeys(("CHALLENGE_2022", "Preset", "predict", "predict_challenge"),
                    "esrprof.prediction.api"),
    **dict.fromkeys(("KindTime", "LayerTime", "MemoryPrediction", "Prediction",
                     "RuntimePrediction"), "esrprof.prediction.records"),
    "CALIBRATION": "esrprof.prediction.calibration",
    "Calibration": "esrprof.prediction.calibration",
    "GPUS": "esrprof.prediction.gpus",
    "GpuSpec": "esrprof.prediction.gpus",
    "gpu_spec": "esrprof.prediction.gpus",
    "KINDS": "esrprof.prediction.kinds",
}

__all__ = [
    "CALIBRATION",
    "CHALLENGE_2022",
    "GPUS",
    "KINDS",
    "Calibration",
    "GpuSpec",
    "KindTime",
    "LayerTime",
    "MemoryPrediction",
    "Prediction",
    "Preset",
    "RuntimePrediction",
    "gpu_spec",
    "predict",
    "predict_challenge",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'esrprof.prediction' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
