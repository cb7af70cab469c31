"""Fitting the runtime constants to measured runtimes, and judging the fit out of sample.

:func:`fit_constants` fits any subset of the three constants (the others held) by least squares
on log(predicted / measured); :func:`leave_one_out` refits without each figure in turn and
predicts it, which is the error a model the fit has not seen can expect. See calibration.py for
what each constant means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from esrprof.extras import require
from esrprof.prediction.calibration import Calibration
from esrprof.prediction.gpus import GpuSpec, gpu_spec
from esrprof.prediction.runtime import OpRow, total_seconds

NAMES = ("compute_efficiency", "bandwidth_efficiency", "kernel_floor_us")
# Bounds of the fit: no kernel beats the datasheet; the floor is 0 to ~200 µs.
BOUNDS = ((0.01, 1.0), (0.01, 1.0), (0.0, 200.0))
START = (0.5, 0.5, 10.0)
SCALE = (0.1, 0.1, 10.0)


@dataclass(frozen=True)
class Point:
    """One measured runtime: a model's op rows at the measured shape, on a GPU."""

    key: str
    rows: Sequence[OpRow]
    gpu: GpuSpec
    runtime_ms: float

    def predicted_ms(self, constants: Sequence[float],
                     class_factors: Mapping[str, float] | None = None) -> float:
        return total_seconds(self.rows, self.gpu.peak_flops, self.gpu.bandwidth,
                             constants, class_factors) * 1e3


def fit_constants(points: Sequence[Point], free: Sequence[str] = NAMES,
                  held: Mapping[str, float] | None = None) -> tuple[tuple[float, ...], float]:
    """The constants (in :data:`NAMES` order) minimising the RMS log error over ``points``,
    fitting only ``free`` and holding the rest at ``held``; and that in-sample RMS."""
    least_squares = require("scipy.optimize", "fitting a calibration").least_squares

    held = dict(held or {})
    idx = [NAMES.index(n) for n in free]
    if len(points) < len(idx):
        raise ValueError(f"fitting {len(idx)} constants needs at least {len(idx)} figures, "
                         f"got {len(points)}")
    base = [held.get(n, START[i]) for i, n in enumerate(NAMES)]

    def full(p: Sequence[float]) -> list[float]:
        c = list(base)
        for i, v in zip(idx, p):
            c[i] = float(v)
        return c

    def residuals(p: Sequence[float]) -> list[float]:
        c = full(p)
        return [math.log(pt.predicted_ms(c) / pt.runtime_ms) for pt in points]

    if idx:
        sol = least_squares(residuals, [START[i] for i in idx],
                            bounds=([BOUNDS[i][0] for i in idx], [BOUNDS[i][1] for i in idx]),
                            x_scale=[SCALE[i] for i in idx])
        constants = full(sol.x)
    else:
        constants = base
    res = residuals([constants[i] for i in idx])
    return tuple(constants), math.sqrt(sum(r * r for r in res) / len(res))


@dataclass(frozen=True)
class Held:
    """One figure predicted by the constants fitted without it."""

    key: str
    runtime_ms: float
    predicted_ms: float

    @property
    def ratio(self) -> float:
        return self.predicted_ms / self.runtime_ms


def leave_one_out(points: Sequence[Point], free: Sequence[str] = NAMES,
                  held: Mapping[str, float] | None = None) -> list[Held]:
    """Each figure predicted by the constants fitted on all the others."""
    out = []
    for i, pt in enumerate(points):
        rest = [p for j, p in enumerate(points) if j != i]
        constants, _ = fit_constants(rest, free, held)
        out.append(Held(pt.key, pt.runtime_ms, pt.predicted_ms(constants)))
    return out


def rms_log(held: Sequence[Held]) -> float:
    return math.sqrt(sum(math.log(h.ratio) ** 2 for h in held) / len(held)) if held else 0.0


# A shared class factor's bounds: from 1/5 to 50 times the roofline time of its class.
FACTOR_BOUNDS, FACTOR_START, FACTOR_SCALE = (0.2, 50.0), 1.0, 0.5


@dataclass(frozen=True)
class JointFit:
    """One fit over every generation's figures: each generation's constants (in
    :data:`NAMES` order), the class factors shared by all, the in-sample RMS log error."""

    constants: dict[str, tuple[float, ...]]
    class_factors: dict[str, float]
    rms_log_error: float

    def predicted_ms(self, generation: str, point: Point) -> float:
        return point.predicted_ms(self.constants[generation], self.class_factors)


def fit_joint(groups: Mapping[str, Sequence[Point]],
              per_generation: Sequence[str] = ("bandwidth_efficiency",),
              held: Mapping[str, float] | None = None,
              class_factors: Sequence[str] = (),
              ) -> JointFit:
    """One fit over every generation's figures: the constants in ``per_generation`` get one
    value per generation, the others not ``held`` are shared by all (e.g. the per-kernel
    floor, host-side work of the same software era), and each cost class in
    ``class_factors`` (runtime.COST_CLASSES) gets one factor on its roofline time, shared."""
    least_squares = require("scipy.optimize", "fitting a calibration").least_squares

    held = dict(held or {})
    gens = [g for g in groups if groups[g]]
    shared = [n for n in NAMES if n not in per_generation and n not in held]
    layout: list[tuple[str, str | None]] = [(n, None) for n in shared]
    layout += [(n, g) for g in gens for n in per_generation if n not in held]
    n_const = len(layout)

    def split(p: Sequence[float]) -> tuple[dict[str, tuple[float, ...]], dict[str, float]]:
        out = {}
        for g in gens:
            c = [held.get(n, START[i]) for i, n in enumerate(NAMES)]
            for (n, owner), v in zip(layout, p[:n_const]):
                if owner is None or owner == g:
                    c[NAMES.index(n)] = float(v)
            out[g] = tuple(c)
        return out, {k: float(v) for k, v in zip(class_factors, p[n_const:])}

    def residuals(p: Sequence[float]) -> list[float]:
        cs, fs = split(p)
        return [math.log(pt.predicted_ms(cs[g], fs) / pt.runtime_ms)
                for g in gens for pt in groups[g]]

    idx = [NAMES.index(n) for n, _ in layout]
    if sum(len(groups[g]) for g in gens) < n_const + len(class_factors):
        raise ValueError("fewer figures than constants to fit")
    k = len(class_factors)
    sol = least_squares(
        residuals, [START[i] for i in idx] + [FACTOR_START] * k,
        bounds=([BOUNDS[i][0] for i in idx] + [FACTOR_BOUNDS[0]] * k,
                [BOUNDS[i][1] for i in idx] + [FACTOR_BOUNDS[1]] * k),
        x_scale=[SCALE[i] for i in idx] + [FACTOR_SCALE] * k)
    res = residuals(sol.x)
    constants, factors = split(sol.x)
    return JointFit(constants, factors, math.sqrt(sum(r * r for r in res) / len(res)))


def leave_one_out_joint(groups: Mapping[str, Sequence[Point]],
                        per_generation: Sequence[str] = ("bandwidth_efficiency",),
                        held: Mapping[str, float] | None = None,
                        class_factors: Sequence[str] = ()) -> dict[str, list[Held]]:
    """Each figure predicted by the joint fit on all the other figures."""
    out: dict[str, list[Held]] = {g: [] for g in groups}
    for g, points in groups.items():
        for i, pt in enumerate(points):
            rest = {h: [p for j, p in enumerate(ps) if not (h == g and j == i)]
                    for h, ps in groups.items()}
            fitted = fit_joint(rest, per_generation, held, class_factors)
            out[g].append(Held(pt.key, pt.runtime_ms, fitted.predicted_ms(g, pt)))
    return out


def fit_calibration(
    rows: Mapping[str, Sequence[OpRow]],
    runtimes_ms: Mapping[str, float],
    gpu: str | GpuSpec = "titan-xp",
    input_shape: Sequence[int] = (1, 3, 339, 510),
    *,
    free: Sequence[str] = NAMES,
    held: Mapping[str, float] | None = None,
    generation: str | None = None,
    loo: bool = False,
) -> Calibration:
    """A :class:`Calibration` fitted to measured runtimes of models on one GPU.

    ``rows``: each model's op rows (from :class:`~esrprof.prediction.runtime.CostObserver`) at
    ``input_shape``; ``runtimes_ms``: the measured runtimes on ``gpu`` (same keys). ``loo``:
    also compute the leave-one-out RMS log error (one refit per figure).
    """
    require("scipy.optimize", "fitting a calibration")  # before any work: one line
    spec = gpu_spec(gpu)
    points = [Point(n, rows[n], spec, runtimes_ms[n]) for n in rows if n in runtimes_ms]
    if len(points) < max(1, len(free)):
        raise ValueError(f"fitting {len(free)} constants needs at least {max(1, len(free))} "
                         "measured models")
    constants, rms = fit_constants(points, free, held)
    loo_rms = rms_log(leave_one_out(points, free, held)) if loo and len(points) > 1 else None
    ec, eb, floor = constants
    return Calibration(ec, eb, floor, spec.name, tuple(int(d) for d in input_shape),
                       tuple(p.key for p in points), rms,
                       generation or spec.generation or "ampere", loo_rms)


__all__ = ["BOUNDS", "NAMES", "START", "Held", "JointFit", "Point", "fit_calibration",
           "fit_constants", "fit_joint", "leave_one_out", "leave_one_out_joint", "rms_log"]
