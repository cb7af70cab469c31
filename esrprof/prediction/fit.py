"""Fitting the runtime model's three constants to measured runtimes (see calibration.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from esrprof.extras import require
from esrprof.prediction.calibration import Calibration
from esrprof.prediction.gpus import GpuSpec, gpu_spec
from esrprof.prediction.runtime import OpRow, total_seconds

# Bounds of the fit: no kernel beats the datasheet; the floor is a few to ~100 µs.
BOUNDS = ((0.01, 1.0), (0.01, 1.0), (0.0, 200.0))
START = (0.5, 0.5, 10.0)


def fit_calibration(
    rows: Mapping[str, Sequence[OpRow]],
    runtimes_ms: Mapping[str, float],
    gpu: str | GpuSpec = "titan-xp",
    input_shape: Sequence[int] = (1, 3, 339, 510),
) -> Calibration:
    """Least-squares fit of the three constants to measured runtimes, in log space.

    ``rows``: each model's op rows (from :class:`~esrprof.prediction.runtime.CostObserver`) at
    ``input_shape``; ``runtimes_ms``: the measured runtimes on ``gpu`` (same keys).
    """
    least_squares = require("scipy.optimize", "fitting a calibration").least_squares

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


__all__ = ["BOUNDS", "START", "fit_calibration"]
