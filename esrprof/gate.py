"""The latency gate: time a candidate beside its base version and decide on the per-call ratios.

Why this design (measured on a 2-core shared machine, see docs/ci-gating.md): absolute medians
against a stored figure raised false alarms in ~40 % of unchanged runs, because the machine's
load changes between the day the baseline was taken and the day the gate runs. Timing the base
version of the same architecture *in the same process, call by call* (candidate, base, base,
candidate, ...) puts both under the same load. The ratio is taken per block of 4 consecutive
pairs, between the fastest call of each model in the block (preemption adds time to a call; a
plain per-call ratio of two delayed calls is pulled towards 1, the block minima are not), and
the verdict is on the median of those block ratios with a seeded block-bootstrap interval:

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
DEFAULT_ABS_MAX_SLOWDOWN = 0.25
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
    "abs": "candidate's fast-end latency (median of block minima) against the stored one; "
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


def bootstrap_medians(
    values: Sequence[float], *, resamples: int = 2000, seed: int = 0, block: int | None = None
) -> np.ndarray:
    """Medians of circular-block-bootstrap resamples of ``values`` (seeded)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        raise ValueError("no samples")
    b = max(1, min(n, block or round(n ** (1 / 3))))
    rng = np.random.default_rng(seed)
    blocks = -(-n // b)
    starts = rng.integers(0, n, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(resamples, -1)[:, :n] % n
    return np.median(x[idx], axis=1)


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
    if len(values) == 1:
        return float(values[0]), float(values[0])
    medians = bootstrap_medians(values, resamples=resamples, seed=seed, block=block)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(low), float(high)


# Pairs per block: the candidate/base ratio is taken between the fastest call of each model
# within BLOCK consecutive interleaved pairs (each block holds both call orders twice).
BLOCK = 4


def block_minima(samples: Sequence[float], k: int = BLOCK) -> np.ndarray:
    """The fastest of every ``k`` consecutive samples (a trailing partial block is dropped)."""
    x = np.asarray(samples, dtype=float)
    n = x.size // k * k
    return x[:n].reshape(-1, k).min(axis=1)


def block_ratios(candidate_ms: Sequence[float], base_ms: Sequence[float], k: int = BLOCK):
    """Per-block ratio of the fastest candidate call to the fastest base call.

    Why not the plain per-call ratio: a call that another process preempts gets an *additive*
    delay, and when both calls of a pair are delayed their ratio is pulled towards 1. On the
    2-core shared machine with two busy processes beside it, the median per-call ratio of a
    model 11 % slower came out at +4.6 % (with a confidently narrow interval); the per-block
    ratio of minima gave +11.2 %, as on a quiet machine. Blocks are short, so load that drifts
    over the run still falls on both models of a block alike.
    """
    return block_minima(candidate_ms, k) / block_minima(base_ms, k)


@dataclass(frozen=True)
class RatioEstimate:
    """Candidate/base latency from interleaved pairs."""

    ratio: float  # median over blocks of (fastest candidate call / fastest base call)
    low: float
    high: float
    confidence: float
    pairs: int
    median_call_ratio: float  # median of plain per-call ratios, for comparison
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
    if c.shape != b.shape or c.size < 2 * BLOCK:
        raise ValueError(f"candidate and base need the same number (>= {2 * BLOCK}) of samples")
    if (b <= 0).any() or (c <= 0).any():
        raise ValueError("latencies must be positive")
    ratios = block_ratios(c, b)
    low, high = bootstrap_median_ci(ratios, confidence=confidence, resamples=resamples, seed=seed)
    return RatioEstimate(
        ratio=float(np.median(ratios)),
        low=low,
        high=high,
        confidence=confidence,
        pairs=int(c.size),
        median_call_ratio=float(np.median(c / b)),
        ratio_of_medians=float(np.median(c) / np.median(b)),
        candidate_median_ms=float(np.median(c)),
        base_median_ms=float(np.median(b)),
    )


def fast_end_ms(samples: Sequence[float]) -> float:
    """Median of the block minima: load from other processes only ever adds time, so this
    moves far less with the machine's load than the median does."""
    minima = block_minima(samples)
    return float(np.median(minima)) if minima.size else float(min(samples))


def estimate_against_reference(
    candidate_ms: Sequence[float],
    reference_ms: Sequence[float],
    stored_ratios: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> RatioEstimate:
    """Slow-down through a third network: (candidate/reference now) / (base/reference stored).

    Both medians are bootstrapped, independently, and the interval is that of their quotient.
    """
    now = estimate_ratio(candidate_ms, reference_ms, confidence=confidence, seed=seed)
    ratios_now = block_ratios(candidate_ms, reference_ms)
    stored = np.asarray(stored_ratios, dtype=float)
    if stored.size == 0 or (stored <= 0).any():
        raise ValueError("no valid stored reference ratios")
    a = bootstrap_medians(ratios_now, resamples=resamples, seed=seed)
    b = bootstrap_medians(stored, resamples=resamples, seed=seed + 1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(a / b, [alpha, 1 - alpha])
    stored_median = float(np.median(stored))
    return RatioEstimate(
        ratio=now.ratio / stored_median,
        low=float(low),
        high=float(high),
        confidence=confidence,
        pairs=now.pairs,
        median_call_ratio=now.median_call_ratio / stored_median,
        ratio_of_medians=now.ratio_of_medians / stored_median,
        candidate_median_ms=now.candidate_median_ms,
        base_median_ms=now.base_median_ms,
    )


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
    candidate_ms: Sequence[float],
    stored_fast_end_ms: float,
    limit: float,
    base_ms: Sequence[float] | None = None,
) -> Check:
    """Candidate's fast end now against the stored one. ``base_ms`` (the base timed now) only
    explains a failure: when the base itself drifted as much, the machine or the environment
    is slower today, not the change."""
    now = fast_end_ms(candidate_ms)
    observed = now / stored_fast_end_ms
    note = f"fast end {now:.3f} ms vs stored {stored_fast_end_ms:.3f} ms"
    if base_ms is not None and len(base_ms):
        drift = fast_end_ms(base_ms) / stored_fast_end_ms - 1
        note += f"; the base itself {drift:+.1%} against its stored figure"
    return Check("abs", limit, observed, None, None, observed <= 1.0 + limit, note)


@dataclass(frozen=True)
class Verdict:
    model: str
    checks: tuple[Check, ...]
    estimate: RatioEstimate
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    candidate_ms: tuple[float, ...] = field(default=(), repr=False)
    base_ms: tuple[float, ...] = field(default=(), repr=False)
    reference: str | None = None  # set when timed against a reference, not the base

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def message(self) -> str:
        head = "PASS" if self.passed else "REGRESSION"
        e = self.estimate
        other = "base" if self.reference is None else "reference"
        lines = [
            f"{head} {self.model}: slow-down {e.slowdown:+.1%} against its base "
            f"({e.confidence:.0%} CI {e.low - 1:+.1%} to {e.high - 1:+.1%}, {e.pairs} interleaved "
            f"pairs; "
            f"candidate {e.candidate_median_ms:.3f} ms, {other} {e.base_median_ms:.3f} ms median)"
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
            "reference": self.reference,
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
        if self.min_pairs < 2 * BLOCK or self.max_pairs < self.min_pairs:
            raise UsageError(f"pairs: need {2 * BLOCK} <= min_pairs <= max_pairs")
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
            if len(cand) >= budget.min_pairs and now() - started >= budget.max_seconds:
                return cand, ref
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


def model_dtype(model: Any) -> Any:
    import torch

    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def probe_input(
    input_shape: Sequence[int], device: str, *, seed: int = 0, dtype: Any = None
) -> Any:
    """A fixed random image from a private generator (the global RNG stream is not touched)."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.rand(tuple(input_shape), generator=generator)
    return x.to(device=device, dtype=dtype or torch.float32)


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
    beside: Any = None,
    samples: int = 100,
    warmup: int = 5,
    threads: int = 1,
    clock: Clock | None = None,
    both: bool = False,
) -> Any:
    """Latency samples of ``model`` (eval, inference mode, threads pinned). With ``beside``,
    the calls alternate with that model's, as in the gate, so the stored figure is taken
    under the same cache and scheduling pattern the gate will see; ``both`` returns the other
    model's samples too."""
    import torch

    from esrprof.state import preserved
    from esrprof.timing import pinned_threads

    device = model_device(model)
    clock = clock or default_clock(device)
    x = probe_input(input_shape, device, dtype=model_dtype(model))
    fn = forward_of(model, x)
    other = beside.to(device, model_dtype(model)) if beside is not None else model
    with (
        pinned_threads(threads),
        preserved(model, eval_mode=True),
        preserved(other, eval_mode=True),
        torch.inference_mode(),
    ):
        if beside is None:
            for _ in range(warmup):
                clock.time_ms(fn)
            return [clock.time_ms(fn) for _ in range(samples)]
        budget = Budget(min_pairs=samples, max_pairs=samples, max_seconds=1e9, warmup=warmup)
        times, others = interleaved_pairs(
            clock, fn, forward_of(other, x), limit=0.0, budget=budget
        )
        return (times, others) if both else times


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
    against_reference: bool = False,
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
    if against_reference:
        if baseline.reference is None:
            from esrprof.errors import ResultFileError

            raise ResultFileError(
                "the baseline holds no reference timing; save it with "
                "`esrprof baseline save --reference NAME`"
            )
        base = baseline.reference.build()
        notes.append(
            f"timed against the reference {baseline.reference.spec}, not the base version: "
            "a different network tracks this one's speed poorly under load (noisier verdict)"
        )
    elif base is None:
        base = baseline.build_base()
    base = base.to(device)
    clock = clock or default_clock(device)
    sampling_limit = max_slowdown
    if against_reference:  # stop sampling against the limit in candidate/reference terms
        from statistics import median

        sampling_limit = (1 + max_slowdown) * median(baseline.reference.ratios) - 1
    x = probe_input(shape, device, seed=seed, dtype=model_dtype(candidate))
    base = base.to(dtype=model_dtype(candidate))
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
            limit=sampling_limit,
            budget=budget,
            confidence=confidence,
            seed=seed,
        )
    if against_reference:
        estimate = estimate_against_reference(
            cand_ms, base_ms, baseline.reference.ratios, confidence=confidence, seed=seed
        )
    else:
        estimate = estimate_ratio(cand_ms, base_ms, confidence=confidence, seed=seed)
    checks = [decide_ratio(estimate, max_slowdown)]
    if abs_max_slowdown is not None:
        if here == baseline.hardware and device == baseline.device:
            checks.append(
                decide_absolute(
                    cand_ms,
                    baseline.fast_end_ms,
                    abs_max_slowdown,
                    None if against_reference else base_ms,
                )
            )
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
        reference=baseline.reference.spec if against_reference else None,
    )
