"""esrprof: efficiency profiling of PyTorch super-resolution models, to the NTIRE ESR protocol.

    >>> import esrprof
    >>> counts = esrprof.count(model, (1, 3, 256, 256))
    >>> counts.ntire2022.macs, counts.complete.macs

Only the errors and the version load with the package: every other name resolves on first use.
That is what keeps torch out of ``esrprof --help`` and every usage error of the command line
(its modules live under this package, so importing them runs this file first;
tests/test_fast_doors.py checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esrprof._version import __version__
from esrprof.errors import (
    CheckpointError,
    DataError,
    EsrprofError,
    InputShapeError,
    ModelError,
    ResultFileError,
    SpecError,
    UsageError,
)

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.api import count, profile
    from esrprof.challenges import challenge
    from esrprof.loading import load_model
    from esrprof.monitor import Monitor
    from esrprof.prediction.api import Prediction, predict, predict_challenge
    from esrprof.results import Counts, Result, load_result
    from esrprof.run import RunConfig, measure

# name -> module; resolved on first use so `import esrprof` does not import torch.
_LAZY = {
    "Counts": "esrprof.results",
    "Result": "esrprof.results",
    "load_result": "esrprof.results",
    "challenge": "esrprof.challenges",
    "count": "esrprof.api",
    "profile": "esrprof.api",
    "load_model": "esrprof.loading",
    "measure": "esrprof.run",
    "RunConfig": "esrprof.run",
    "Monitor": "esrprof.monitor",
    "predict": "esrprof.prediction.api",
    "predict_challenge": "esrprof.prediction.api",
    "Prediction": "esrprof.prediction.api",
}

__all__ = [
    "CheckpointError",
    "Counts",
    "DataError",
    "EsrprofError",
    "InputShapeError",
    "ModelError",
    "Monitor",
    "Prediction",
    "Result",
    "ResultFileError",
    "RunConfig",
    "SpecError",
    "UsageError",
    "__version__",
    "challenge",
    "count",
    "load_model",
    "load_result",
    "measure",
    "predict",
    "predict_challenge",
    "profile",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'esrprof' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
