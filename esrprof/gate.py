"""The latency gate: time a candidate beside its base version and decide on the per-call ratios.

Why this design (measured on a 2-core shared machine, see docs/ci-gating.md): absolute medians
against a stored figure raised false alarms in ~40 % of unchanged runs, because the machine's
load changes between the day the baseline was taken and the day the gate runs. Timing the base
version of the same architecture *in the same process, call by call* (candidate, base, base,
candidate, ...) puts both under the same load, so the per-pair ratio cancels most of it. The
verdict is on the median of those ratios with a seeded block-bootstrap confidence interval:

* the interval lies wholly above ``1 + max_slowdown``  -> regression (exit 1);
* it lies wholly below                               -> pass;
* it straddles the limit                             -> take more pairs, up to a budget, then
  decide on the median itself (the best estimate there is) and say it was a close call.

Everything here is pure statistics over samples from a :class:`Clock`; the clock is injectable,
so the tests drive it with a seeded fake.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from esrprof.errors import UsageError

DEFAULT_MAX_SLOWDOWN = 0.05
DEFAULT_ABS_MAX_SLOWDOWN = 0.15
DEFAULT_CONFIDENCE = 0.95


class Clock(Protocol):
    def time_ms(self, fn: Callable[[], Any]) -> float: ...


# --------------------------------------------------------------------------------- parsing


def parse_fraction(text: str | float, *, what: str = "slow-down") -> float:
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05; a bare number above 1 is refused as ambiguous."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, percent = float(text), False
    elif isinstance(text, str):
        raw = text.strip()
        percent = raw.endswith("%")
        try:
            value = float(raw[:-1] if percent else raw)
        except ValueError:
            raise UsageError(f"{what} {text!r} is not a number like 5% or 0.05") from None
    else:
        raise UsageError(f"{what} {text!r} is not a number like 5% or 0.05")
    if percent:
        value /= 100.0
    elif value > 1:
        raise UsageError(f"{what} {text!r} is ambiguous: write {text}% or {value / 100:g}")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{what} {text!r} must be a non-negative fraction")
    return value


CHECK_KINDS = {
    "ratio": "median of per-call ratios candidate/base, timed interleaved (robust to load)",
    "abs": "candidate's fast-end latency (10th percentile) against the stored figure; "
    "same hardware only",
}


@dataclass(frozen=True)
class CheckSpec:
    """One requested check, parsed from ``ratio:5%`` or ``abs:15%``."""

    kind: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> CheckSpec:
        kind, sep, value = str(text).partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in CHECK_KINDS:
            known = ", ".join(f"{k}:5%" for k in CHECK_KINDS)
            raise UsageError(f"check {text!r} is not one of the forms {known}")
        return cls(kind, parse_fraction(value, what=f"check {text!r}"))

    def __str__(self) -> str:
        return f"{self.kind}:{self.limit:.1%}"


# ------------------------------------------------------------------------------ statistics


def bootstrap_median_ci(
    values: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
    block: int | None = None,
) -> tuple[float, float]:
    """Percentile interval of the median, by a circular block bootstrap.

    Blocks (default ``n ** (1/3)`` pairs) keep the time correlation of a shared machine's
    bursts inside each resample, so the interval is not falsely narrow. Seeded: the same
    samples give the same interval.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        raise ValueError("no samples")
    if n == 1:
        return float(x[0]), float(x[0])
    b = max(1, min(n, block or round(n ** (1 / 3))))
    rng = np.random.default_rng(seed)
    blocks = -(-n // b)
    starts = rng.integers(0, n, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(resamples, -1)[:, :n] % n
    medians = np.median(x[idx], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class RatioEstimate:
    """Candidate/base latency from interleaved pairs."""

    ratio: float  # median of per-pair ratios
    low: float
    high: float
    confidence: float
    pairs: int
    ratio_of_medians: float
    candidate_median_ms: float
    base_median_ms: float

    @property
    def slowdown(self) -> float:
        return self.ratio - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slowdown": self.slowdown}


def estimate_ratio(
    candidate_ms: Sequence[float],
    base_ms: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> RatioEstimate:
    c = np.asarray(candidate_ms, dtype=float)
    b = np.asarray(base_ms, dtype=float)
    if c.shape != b.shape or c.size == 0:
        raise ValueError("candidate and base need the same, non-zero number of samples")
    if (b <= 0).any() or (c <= 0).any():
        raise ValueError("latencies must be positive")
    ratios = c / b
    low, high = bootstrap_median_ci(ratios, confidence=confidence, resamples=resamples, seed=seed)
    return RatioEstimate(
        ratio=float(np.median(ratios)),
        low=low,
        high=high,
        confidence=confidence,
        pairs=int(c.size),
        ratio_of_medians=float(np.median(c) / np.median(b)),
        candidate_median_ms=float(np.median(c)),
        base_median_ms=float(np.median(b)),
    )


def fast_end_ms(samples: Sequence[float], q: float = 0.10) -> float:
    """A low quantile: load from other processes only ever adds time, so the fast end of many
    samples moves far less with the machine's load than the median does."""
    return float(np.quantile(np.asarray(samples, dtype=float), q))


# ------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Check:
    """One decided check. ``observed``/``low``/``high`` are ratios (1.07 = 7 % slower)."""

    name: str
    limit: float  # allowed slow-down as a fraction
    observed: float
    low: float | None
    high: float | None
    passed: bool
    note: str = ""

    def describe(self) -> str:
        slow = self.observed - 1
        interval = ""
        if self.low is not None and self.high is not None:
            interval = f" (95% CI {self.low - 1:+.1%} to {self.high - 1:+.1%})"
        word = "ok" if self.passed else "REGRESSION"
        text = f"{self.name}: {slow:+.1%}{interval}, limit +{self.limit:.1%} -> {word}"
        return f"{text}; {self.note}" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slowdown": self.observed - 1}


def decide_ratio(estimate: RatioEstimate, limit: float, *, name: str = "ratio") -> Check:
    bound = 1.0 + limit
    if estimate.low > bound:
        return Check(name, limit, estimate.ratio, estimate.low, estimate.high, False)
    if estimate.high < bound:
        return Check(name, limit, estimate.ratio, estimate.low, estimate.high, True)
    # The interval straddles the limit after the whole budget: the median is the best guess.
    note = f"close call after {estimate.pairs} pairs, decided on the median"
    return Check(
        name, limit, estimate.ratio, estimate.low, estimate.high, estimate.ratio <= bound, note
    )


def decide_absolute(
    candidate_ms: Sequence[float], stored_fast_end_ms: float, limit: float
) -> Check:
    observed = fast_end_ms(candidate_ms) / stored_fast_end_ms
    return Check(
        "abs",
        limit,
        observed,
        None,
        None,
        observed <= 1.0 + limit,
        f"10th percentile {fast_end_ms(candidate_ms):.3f} ms vs stored "
        f"{stored_fast_end_ms:.3f} ms",
    )


@dataclass(frozen=True)
class Verdict:
    model: str
    checks: tuple[Check, ...]
    estimate: RatioEstimate
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    candidate_ms: tuple[float, ...] = field(default=(), repr=False)
    base_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def message(self) -> str:
        head = "PASS" if self.passed else "REGRESSION"
        e = self.estimate
        lines = [
            f"{head} {self.model}: slow-down {e.slowdown:+.1%} against its base "
            f"(95% CI {e.low - 1:+.1%} to {e.high - 1:+.1%}, {e.pairs} interleaved pairs; "
            f"candidate {e.candidate_median_ms:.3f} ms, base {e.base_median_ms:.3f} ms median)"
        ]
        lines += [f"  {c.describe()}" for c in self.checks]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "estimate": self.estimate.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
            "seconds": self.seconds,
            "candidate_ms": list(self.candidate_ms),
            "base_ms": list(self.base_ms),
        }


# ------------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Budget:
    """How many interleaved pairs to take: stop early once the interval clears the limit."""

    min_pairs: int = 60
    max_pairs: int = 600
    max_seconds: float = 60.0
    warmup: int = 5

    def __post_init__(self) -> None:
        if self.min_pairs < 5 or self.max_pairs < self.min_pairs:
            raise UsageError("pairs: need 5 <= min_pairs <= max_pairs")
        if self.max_seconds <= 0 or self.warmup < 0:
            raise UsageError("budget: max_seconds must be positive and warmup non-negative")


def interleaved_pairs(
    clock: Clock,
    candidate: Callable[[], Any],
    base: Callable[[], Any],
    *,
    limit: float,
    budget: Budget = Budget(),
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    now: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], list[float]]:
    """Time candidate and base call by call, alternating which goes first (ABBA), so that a
    drift or a cache warmed by the previous call favours neither. Takes pairs in growing
    batches until the ratio's interval lies clear of ``1 + limit`` or the budget is spent."""
    for _ in range(budget.warmup):
        clock.time_ms(candidate)
        clock.time_ms(base)
    cand: list[float] = []
    ref: list[float] = []
    started = now()
    target = budget.min_pairs
    bound = 1.0 + limit
    while True:
        while len(cand) < target:
            if len(cand) % 2 == 0:
                cand.append(clock.time_ms(candidate))
                ref.append(clock.time_ms(base))
            else:
                ref.append(clock.time_ms(base))
                cand.append(clock.time_ms(candidate))
        if len(cand) >= budget.max_pairs or now() - started >= budget.max_seconds:
            return cand, ref
        est = estimate_ratio(cand, ref, confidence=confidence, resamples=1000, seed=seed)
        if est.low > bound or est.high < bound:
            return cand, ref
        target = min(budget.max_pairs, target * 2)


# ------------------------------------------------------------------------- running models


def model_device(model: Any) -> str:
    for tensor in [*model.parameters(), *model.buffers()]:
        return str(tensor.device)
    return "cpu"


def probe_input(input_shape: Sequence[int], device: str, *, seed: int = 0) -> Any:
    """A fixed random image from a private generator (the global RNG stream is not touched)."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(tuple(input_shape), generator=generator).to(device)


def environment_for(device: str, threads: int) -> dict[str, Any]:
    """The environment record with the thread count the gate times with: on a CPU the
    ``hardware`` string names it, and a baseline must match it."""
    from esrprof.environment import collect
    from esrprof.timing import pinned_threads

    with pinned_threads(threads):
        return collect(device=device, dtype="fp32")


def current_hardware(device: str, threads: int = 1) -> str | None:
    return environment_for(device, threads).get("hardware")


def default_clock(device: str) -> Clock:
    from esrprof.timing import make_clock

    return make_clock(device)


def forward_of(model: Any, x: Any) -> Callable[[], Any]:
    def forward() -> Any:
        return model(x)

    return forward


def sample_latency(
    model: Any,
    input_shape: Sequence[int],
    *,
    samples: int = 100,
    warmup: int = 5,
    threads: int = 1,
    clock: Clock | None = None,
) -> list[float]:
    """Plain latency samples of one model (eval, inference mode, threads pinned)."""
    import torch

    from esrprof.state import preserved
    from esrprof.timing import pinned_threads

    device = model_device(model)
    clock = clock or default_clock(device)
    x = probe_input(input_shape, device)
    fn = forward_of(model, x)
    with pinned_threads(threads), preserved(model, eval_mode=True), torch.inference_mode():
        for _ in range(warmup):
            clock.time_ms(fn)
        return [clock.time_ms(fn) for _ in range(samples)]


def run_gate(
    candidate: Any,
    baseline: Any,
    *,
    base: Any = None,
    input_shape: Sequence[int] | None = None,
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN,
    abs_max_slowdown: float | None = DEFAULT_ABS_MAX_SLOWDOWN,
    allow_other_hardware: bool = False,
    budget: Budget = Budget(),
    confidence: float = DEFAULT_CONFIDENCE,
    threads: int = 1,
    seed: int = 0,
    clock: Clock | None = None,
    hardware: str | None = None,
    name: str | None = None,
    check_class: bool = True,
) -> Verdict:
    """Time ``candidate`` against the base version that ``baseline`` keeps and decide.

    ``base`` overrides the model rebuilt from the baseline's stored source (e.g. a checkout of
    the base revision). ``abs_max_slowdown=None`` turns the absolute check off; it runs only
    when the baseline was taken on this hardware. Raises ResultFileError for a baseline of
    another model, input shape or (unless allowed) hardware.
    """
    import torch

    from esrprof.baseline import check_compatible
    from esrprof.state import preserved
    from esrprof.timing import pinned_threads

    started = time.perf_counter()
    device = model_device(candidate)
    shape = tuple(input_shape) if input_shape is not None else baseline.input_shape
    here = hardware if hardware is not None else current_hardware(device, threads)
    notes = check_compatible(
        baseline,
        class_name=type(candidate).__qualname__ if check_class else None,
        input_shape=shape,
        hardware=here,
        allow_other_hardware=allow_other_hardware,
    )
    if base is None:
        base = baseline.build_base()
    base = base.to(device)
    clock = clock or default_clock(device)
    x = probe_input(shape, device, seed=seed)
    with (
        pinned_threads(threads),
        preserved(candidate, eval_mode=True),
        preserved(base, eval_mode=True),
        torch.inference_mode(),
    ):
        cand_ms, base_ms = interleaved_pairs(
            clock,
            forward_of(candidate, x),
            forward_of(base, x),
            limit=max_slowdown,
            budget=budget,
            confidence=confidence,
            seed=seed,
        )
    estimate = estimate_ratio(cand_ms, base_ms, confidence=confidence, seed=seed)
    checks = [decide_ratio(estimate, max_slowdown)]
    if abs_max_slowdown is not None:
        if here == baseline.hardware and device == baseline.device:
            checks.append(decide_absolute(cand_ms, baseline.fast_end_ms, abs_max_slowdown))
        elif not notes:
            notes.append("absolute check skipped: baseline taken on another device")
    return Verdict(
        model=name or baseline.name,
        checks=tuple(checks),
        estimate=estimate,
        notes=tuple(notes),
        seconds=time.perf_counter() - started,
        candidate_ms=tuple(cand_ms),
        base_ms=tuple(base_ms),
    )
