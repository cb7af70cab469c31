"""The latency gate's decision: pick the base, time it beside the candidate, decide, say why.

Why this design (measured on a 2-core shared machine, see docs/ci-gating.md): absolute latencies
against a stored figure raised false alarms in ~40 % of unchanged runs, because the machine's
load changes between the day the baseline was taken and the day the gate runs. Timing the base
version of the same architecture *in the same process, call by call*, puts both under the same
load, and the verdict is on the median block ratio (:mod:`esrprof.latency.statistics`):

* the interval lies wholly above ``1 + max_slowdown``  -> regression (exit 1);
* it lies wholly below                               -> pass;
* it straddles the limit                             -> take more pairs, up to a budget, then
  decide on the median itself (the best estimate there is) and say it was a close call.

The absolute comparison against the stored figure is **information** unless asked for
(``absolute="check"``): with two busy processes beside it, an unchanged model failed it 5 times
in 10 (+41 % against a 25 % limit, the base itself +60 %) while its ratio read -0.2 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from esrprof.environment import same_hardware
from esrprof.errors import ResultFileError, UsageError
from esrprof.latency.baseline import Baseline, check_compatible
from esrprof.latency.sampling import (
    Budget,
    BudgetError,
    Deadline,
    environment_for,
    require_module,
    sample_pairs,
)
from esrprof.latency.statistics import (
    DEFAULT_CONFIDENCE,
    RatioEstimate,
    check_confidence,
    estimate_against_reference,
    estimate_ratio,
    fast_end_ms,
)
from esrprof.probe import check_shape, device_dtype
from esrprof.timing import Clock

DEFAULT_MAX_SLOWDOWN = 0.05
DEFAULT_ABS_MAX_SLOWDOWN = 0.25
# What the absolute comparison against the stored figure does: nothing, a printed line, or a
# check that can fail the gate (only on the baseline's own hardware).
ABSOLUTE_MODES = ("off", "info", "check")


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


def parse_confidence(text: str | float, *, what: str = "confidence") -> float:
    """``"95%"`` or ``0.95`` -> 0.95, strictly between 0 and 1."""
    value = parse_fraction(text, what=what)
    try:
        return check_confidence(value)
    except ValueError:
        raise UsageError(f"{what} {text!r} must lie strictly between 0% and 100%") from None


CHECK_KINDS = {
    "ratio": "median of per-block ratios candidate/base, timed interleaved (robust to load)",
    "abs": "candidate's fast-end latency against the stored one, same hardware only; "
    "enforced only when asked for",
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


def percent(confidence: float) -> str:
    """``0.95`` -> ``95%``, ``0.975`` -> ``97.5%``: the level the interval was taken at."""
    return f"{confidence * 100:g}%"


# ------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Check:
    """One decided check. ``observed``/``low``/``high`` are ratios (1.07 = 7 % slower).

    A check that is not ``enforced`` is information: it is printed, never fails the gate.
    """

    name: str
    limit: float  # allowed slow-down as a fraction
    observed: float
    low: float | None
    high: float | None
    passed: bool
    note: str = ""
    confidence: float | None = None
    enforced: bool = True

    def describe(self) -> str:
        slow = self.observed - 1
        interval = ""
        if self.low is not None and self.high is not None and self.confidence is not None:
            interval = (f" ({percent(self.confidence)} CI {self.low - 1:+.1%} to "
                        f"{self.high - 1:+.1%})")
        if self.enforced:
            label, word = self.name, "ok" if self.passed else "REGRESSION"
        else:
            label = f"{self.name} (information, not enforced)"
            word = "within the limit" if self.passed else "over the limit"
        text = f"{label}: {slow:+.1%}{interval}, limit +{self.limit:.1%} -> {word}"
        return f"{text}; {self.note}" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slowdown": self.observed - 1}


def decide_ratio(estimate: RatioEstimate, limit: float, *, name: str = "ratio") -> Check:
    bound = 1.0 + limit
    passed = estimate.high < bound if estimate.clear_of(bound) else estimate.ratio <= bound
    # A straddling interval after the whole budget: the median is the best guess there is.
    note = "" if estimate.clear_of(bound) else (
        f"close call after {estimate.pairs} pairs, decided on the median")
    return Check(name, limit, estimate.ratio, estimate.low, estimate.high, passed, note,
                 confidence=estimate.confidence)


def absolute_check(
    candidate_ms: Sequence[float],
    stored_fast_end_ms: float,
    limit: float,
    base_ms: Sequence[float] | None = None,
    *,
    enforced: bool = False,
) -> Check:
    """Candidate's fast end now against the stored one. ``base_ms`` (the base timed now) tells
    a slower machine from a slower model: when the base drifted as much, it is the machine."""
    now = fast_end_ms(candidate_ms)
    observed = now / stored_fast_end_ms
    note = f"fast end {now:.3f} ms vs stored {stored_fast_end_ms:.3f} ms"
    if base_ms is not None and len(base_ms):
        drift = fast_end_ms(base_ms) / stored_fast_end_ms - 1
        note += f"; the base itself {drift:+.1%} against its stored figure"
    return Check("abs", limit, observed, None, None, observed <= 1.0 + limit, note,
                 enforced=enforced)


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
    first: RatioEstimate | None = None  # the batch a confirmation overruled or confirmed

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.enforced)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def summary(self) -> str:
        """One line: the slow-down, its interval at the configured confidence, the pairs."""
        e = self.estimate
        return (f"{e.slowdown:+.1%} ({percent(e.confidence)} CI {e.low - 1:+.1%} to "
                f"{e.high - 1:+.1%}, {e.pairs} pairs)")

    def message(self) -> str:
        head = "PASS" if self.passed else "REGRESSION"
        e = self.estimate
        other = "base" if self.reference is None else "reference"
        lines = [
            f"{head} {self.model}: slow-down {e.slowdown:+.1%} against its base "
            f"({percent(e.confidence)} CI {e.low - 1:+.1%} to {e.high - 1:+.1%}, {e.pairs} "
            f"interleaved pairs; candidate {e.candidate_median_ms:.3f} ms, {other} "
            f"{e.base_median_ms:.3f} ms median)"
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
            "first_batch": self.first.to_dict() if self.first is not None else None,
        }


# ----------------------------------------------------------------------------- the gate


@dataclass(frozen=True)
class GateConfig:
    """How a gate decides. The defaults are every door's default decision (CLI, fixture,
    plugin): the interleaved ratio against 5 %, the absolute figure as information."""

    max_slowdown: float = DEFAULT_MAX_SLOWDOWN
    absolute: str = "info"  # one of ABSOLUTE_MODES
    abs_max_slowdown: float = DEFAULT_ABS_MAX_SLOWDOWN
    allow_other_hardware: bool = False
    against_reference: bool = False
    budget: Budget = field(default_factory=Budget)
    confidence: float = DEFAULT_CONFIDENCE
    threads: int = 1
    seed: int = 0
    confirm: bool = True  # a regression must show again in a second, fresh batch of pairs
    trust_spec: bool = False  # import a reference spec whose file cannot be checked

    def __post_init__(self) -> None:
        if self.absolute not in ABSOLUTE_MODES:
            raise UsageError(f"absolute {self.absolute!r} must be one of {ABSOLUTE_MODES}")
        for what in ("max_slowdown", "abs_max_slowdown"):
            parse_fraction(getattr(self, what), what=what)
        parse_confidence(self.confidence)
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise UsageError(f"threads {self.threads!r} must be a positive integer")


@dataclass(frozen=True)
class GatePlan:
    """What a gate times and against what: the outcome of the checks before any timing."""

    shape: tuple[int, ...]
    other: nn.Module  # the base version, or the reference network
    other_name: str
    notes: list[str]
    same_machine: bool  # the baseline's hardware and device: the absolute figure means something
    reference_ratios: tuple[float, ...] | None = None
    reference_spec: str | None = None

    def sampling_limit(self, max_slowdown: float) -> float:
        """The limit in the terms sampling sees: candidate/reference when timed against a
        reference, whose stored ratio base/reference scales it."""
        if self.reference_ratios is None:
            return max_slowdown
        from statistics import median

        return (1 + max_slowdown) * median(self.reference_ratios) - 1


def plan_gate(
    candidate: nn.Module,
    baseline: Baseline,
    config: GateConfig,
    *,
    base: nn.Module | None = None,
    input_shape: Sequence[int] | None = None,
    environment: dict[str, Any] | None = None,
) -> GatePlan:
    """Refuse a baseline for another model, shape or (unless allowed) machine; build what the
    candidate is timed against."""
    shape = check_shape(input_shape) if input_shape is not None else baseline.input_shape
    here = environment if environment is not None else environment_for(candidate, config.threads)
    notes = check_compatible(
        baseline,
        class_name=type(candidate).__qualname__,
        input_shape=shape,
        environment=here,
        allow_other_hardware=config.allow_other_hardware,
    )
    same_machine = (same_hardware(here, baseline.environment)
                    and str(device_dtype(candidate)[0]) == baseline.device)
    if config.against_reference:
        if base is not None:
            raise UsageError("a base model and against_reference exclude each other")
        ref = baseline.reference
        if ref is None:
            raise ResultFileError(
                "the baseline holds no reference timing; save it with "
                "`esrprof baseline save --reference NAME`"
            )
        notes.append(
            f"timed against the reference {ref.spec}, not the base version: a different "
            "network tracks this one's speed poorly under load (noisier verdict)"
        )
        other = ref.build(baseline.roots(), trust=config.trust_spec,
                          source=baseline.origin or "baseline")
        return GatePlan(shape, other, f"reference {ref.spec}", notes, same_machine,
                     ref.ratios, ref.spec)
    other = base if base is not None else baseline.build_base()
    return GatePlan(shape, other, "base", notes, same_machine)


@dataclass(frozen=True)
class _Batch:
    """One run of interleaved pairs and the estimate made from it."""

    cand_ms: list[float]
    other_ms: list[float]
    estimate: RatioEstimate

    @property
    def fastest_pair_s(self) -> float:
        return min(c + o for c, o in zip(self.cand_ms, self.other_ms)) / 1e3


def _measure(
    candidate: nn.Module, plan: GatePlan, config: GateConfig, clock: Clock | None,
    deadline: Deadline,
) -> _Batch:
    cand_ms, other_ms = sample_pairs(
        candidate,
        plan.other,
        plan.shape,
        limit=plan.sampling_limit(config.max_slowdown),
        budget=config.budget,
        confidence=config.confidence,
        threads=config.threads,
        clock=clock,
        seed=config.seed,
        deadline=deadline,
        names=("candidate", plan.other_name),
    )
    if plan.reference_ratios is not None:
        estimate = estimate_against_reference(cand_ms, other_ms, plan.reference_ratios,
                                              confidence=config.confidence, seed=config.seed)
    else:
        estimate = estimate_ratio(cand_ms, other_ms, confidence=config.confidence,
                                  seed=config.seed)
    return _Batch(cand_ms, other_ms, estimate)


def _confirm(
    candidate: nn.Module, plan: GatePlan, config: GateConfig, clock: Clock | None,
    deadline: Deadline, first: _Batch,
) -> tuple[_Batch, str]:
    """The batch to decide on, and a note. A regression is decided on a second, fresh batch:
    with two busy processes beside it, one gate in 20 of an unchanged model read +19.8 % (a
    confident interval) in a burst of load that the next batch does not repeat, while a real
    slow-down shows in every batch. Passing gates cost nothing more."""
    if not config.confirm or decide_ratio(first.estimate, config.max_slowdown).passed:
        return first, ""
    said = f"a first batch read {first.estimate.slowdown:+.1%} over {first.estimate.pairs} pairs"
    pairs = config.budget.warmup + config.budget.min_pairs
    if pairs * first.fastest_pair_s > deadline.left():
        return first, f"{said}; a second batch to confirm it did not fit in the time budget"
    try:
        second = _measure(candidate, plan, config, clock, deadline)
    except BudgetError:
        return first, f"{said}; a second batch to confirm it did not fit in the time budget"
    verb = ("confirmed" if not decide_ratio(second.estimate, config.max_slowdown).passed
            else "not confirmed")
    return second, f"{said}, {verb} by a second, fresh batch (the figures above)"


def _checks(
    plan: GatePlan,
    baseline: Baseline,
    estimate: RatioEstimate,
    cand_ms: Sequence[float],
    other_ms: Sequence[float],
    config: GateConfig,
) -> tuple[list[Check], list[str]]:
    checks = [decide_ratio(estimate, config.max_slowdown)]
    notes = list(plan.notes)
    if config.absolute != "off":
        if plan.same_machine:
            base_now = None if plan.reference_ratios is not None else other_ms
            checks.append(absolute_check(cand_ms, baseline.fast_end_ms, config.abs_max_slowdown,
                                         base_now, enforced=config.absolute == "check"))
        elif not notes:
            notes.append("absolute check skipped: baseline taken on another device")
    if len(cand_ms) < config.budget.min_pairs:
        notes.append(
            f"stopped at the time budget ({config.budget.max_seconds:g} s) after "
            f"{len(cand_ms)} pairs, fewer than the {config.budget.min_pairs} asked for"
        )
    return checks, notes


def run_gate(
    candidate: nn.Module,
    baseline: Baseline,
    config: GateConfig = GateConfig(),
    *,
    base: nn.Module | None = None,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
    clock: Clock | None = None,
    environment: dict[str, Any] | None = None,
    deadline: Deadline | None = None,
) -> Verdict:
    """Time ``candidate`` against the base version that ``baseline`` keeps and decide.

    ``base`` replaces the model rebuilt from the baseline's stored source (e.g. a checkout of
    the base revision); ``environment`` replaces this machine's record (tests); ``deadline``
    (default: ``config.budget.max_seconds`` from now) bounds the whole gate, base rebuild and
    warm-up included. Raises ResultFileError for a baseline of another model, input shape or
    (unless allowed) hardware, UsageError when the budget cannot hold the pairs, ModelError
    when a model fails.
    """
    deadline = deadline if deadline is not None else Deadline(config.budget.max_seconds)
    require_module(candidate, "the candidate")
    plan = plan_gate(candidate, baseline, config, base=base, input_shape=input_shape,
                     environment=environment)
    first = _measure(candidate, plan, config, clock, deadline)
    batch, note = _confirm(candidate, plan, config, clock, deadline, first)
    checks, notes = _checks(plan, baseline, batch.estimate, batch.cand_ms, batch.other_ms,
                            config)
    return Verdict(
        model=name or baseline.name,
        checks=tuple(checks),
        estimate=batch.estimate,
        notes=tuple([*notes, note] if note else notes),
        seconds=deadline.elapsed(),
        candidate_ms=tuple(batch.cand_ms),
        base_ms=tuple(batch.other_ms),
        reference=plan.reference_spec,
        first=first.estimate if batch is not first else None,
    )
