"""The runtime model's three constants, and how they were fitted.

One calibration for every model and GPU: a compute efficiency (share of the datasheet's peak
FLOP/s a kernel reaches), a bandwidth efficiency (share of the datasheet's memory bandwidth)
and a floor per kernel (launch and host-side dispatch). They were fitted once, by least squares
on log(predicted / published), to the published Titan Xp runtimes of the nine reference models
of ``reference_models/`` at the challenge's typical image (1×3×339×510, fp32): see
:func:`fit_calibration`, ``benchmarks/bench_predict.py --fit`` and docs/prediction.md.
No model has a constant of its own.

What the fit says: the compute efficiency reaches its bound of 1 (cuDNN's Winograd 3×3
kernels do fewer multiplications than the direct count, so the dense convolutions of these
networks are never what limits them), the bandwidth efficiency is low (these layers have
few channels; a convolution reads its input through tiles and writes a fresh output, and the
cuDNN heuristics of 2022 rarely reached the bus's rate) and each kernel costs about 35 µs
beyond its roofline time (PyTorch 1.11 eager dispatch plus cuDNN's per-call algorithm
heuristic with ``cudnn.benchmark = False``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from esrprof.predict.gpus import GpuSpec, gpu_spec
from esrprof.predict.runtime import OpRow, total_seconds

# Bounds of the fit: no kernel beats the datasheet; the floor is a few to ~100 µs.
BOUNDS = ((0.01, 1.0), (0.01, 1.0), (0.0, 200.0))
START = (0.5, 0.5, 10.0)


@dataclass(frozen=True)
class Calibration:
    """The three constants and where they come from."""

    compute_efficiency: float
    bandwidth_efficiency: float
    kernel_floor_us: float
    gpu: str = "titan-xp"
    input_shape: tuple[int, ...] = (1, 3, 339, 510)
    fitted_on: tuple[str, ...] = ()
    rms_log_error: float | None = None  # of the fit, over fitted_on

    @property
    def constants(self) -> tuple[float, float, float]:
        return (self.compute_efficiency, self.bandwidth_efficiency, self.kernel_floor_us)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["fitted_on"] = list(self.fitted_on)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            compute_efficiency=float(data["compute_efficiency"]),
            bandwidth_efficiency=float(data["bandwidth_efficiency"]),
            kernel_floor_us=float(data["kernel_floor_us"]),
            gpu=str(data.get("gpu", "titan-xp")),
            input_shape=tuple(int(d) for d in data.get("input_shape", (1, 3, 339, 510))),
            fitted_on=tuple(data.get("fitted_on", ())),
            rms_log_error=data.get("rms_log_error"),
        )


REFERENCE_MODELS = (
    "IMDN", "RFDN", "RLFN", "FMEN", "EFDN", "BSRN", "IMDN+", "EFDN-plain", "MobileSR",
)

# The documented calibration: the output of fit_calibration() on the nine reference models,
# rounded. tests/test_predict_runtime.py refits and checks these figures.
CALIBRATION = Calibration(
    compute_efficiency=1.0,
    bandwidth_efficiency=0.283,
    kernel_floor_us=34.1,
    gpu="titan-xp",
    input_shape=(1, 3, 339, 510),
    fitted_on=REFERENCE_MODELS,
    rms_log_error=0.232,
)


def fit_calibration(
    rows: Mapping[str, Sequence[OpRow]],
    runtimes_ms: Mapping[str, float],
    gpu: str | GpuSpec = "titan-xp",
    input_shape: Sequence[int] = (1, 3, 339, 510),
) -> Calibration:
    """Least-squares fit of the three constants to measured runtimes, in log space.

    ``rows``: each model's op rows (from :class:`~esrprof.predict.runtime.CostObserver`) at
    ``input_shape``; ``runtimes_ms``: the measured runtimes on ``gpu`` (same keys).
    """
    from scipy.optimize import least_squares  # heavy: only when fitting

    spec = gpu_spec(gpu)
    names = [n for n in rows if n in runtimes_ms]
    if len(names) < 3:
        raise ValueError("fitting three constants needs at least three measured models")

    def residuals(p: Sequence[float]) -> list[float]:
        return [
            math.log(total_seconds(rows[n], spec.peak_flops, spec.bandwidth, p) * 1e3
                     / runtimes_ms[n])
            for n in names
        ]

    lo, hi = zip(*BOUNDS)
    sol = least_squares(residuals, START, bounds=(lo, hi), x_scale=(0.1, 0.1, 10.0))
    rms = math.sqrt(sum(r * r for r in sol.fun) / len(names))
    ec, eb, floor = (float(v) for v in sol.x)
    return Calibration(ec, eb, floor, spec.name, tuple(int(d) for d in input_shape),
                       tuple(names), rms)


__all__ = ["CALIBRATION", "REFERENCE_MODELS", "Calibration", "fit_calibration"]
