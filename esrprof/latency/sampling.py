"""Taking latency samples: the time budget, interleaved pairs, and one model's latency.

Every sample is taken the same way, whichever door asks (gate, baseline, monitor, plugin):
models in eval mode under ``torch.inference_mode`` with every flag restored afterwards
(:func:`esrprof.state.preserved`), threads pinned, a warm-up first, the input from
:mod:`esrprof.probe`, and the clock from :mod:`esrprof.timing`. A forward that fails, however
(``sys.exit`` included), is a one-line :class:`~esrprof.errors.ModelError`; an input too big for
the device is refused before it is allocated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from esrprof.errors import (
    USER_CODE_ERRORS,
    InputShapeError,
    UsageError,
    describe,
    user_code_failed,
)
from esrprof.latency.statistics import DEFAULT_CONFIDENCE, MIN_PAIRS, estimate_ratio
from esrprof.probe import (
    check_shape,
    device_dtype,
    dtype_label,
    forward_of,
    probe_input,
    shape_text,
)
from esrprof.state import preserved
from esrprof.timing import Clock, make_clock, pinned_threads

GIB = 1024.0**3


def positive_seconds(value: Any, what: str = "max_seconds") -> float:
    """A finite number of seconds above zero (``"nan"``, ``inf`` and ``-1`` are usage errors)."""
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise UsageError(f"{what} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{what} {value!r} must be a finite number of seconds above 0")
    return seconds


@dataclass(frozen=True)
class Budget:
    """How many interleaved pairs to take, and the wall-clock bound on the whole gate.

    ``max_seconds`` may be ``math.inf`` (no bound) when the library itself asks for a fixed
    number of pairs; users give a finite one (:func:`positive_seconds`).
    """

    min_pairs: int = 60
    max_pairs: int = 600
    max_seconds: float = 60.0
    warmup: int = 5

    def __post_init__(self) -> None:
        counts = (self.min_pairs, self.max_pairs, self.warmup)
        if any(isinstance(n, bool) or not isinstance(n, int) for n in counts):
            raise UsageError("pairs and warm-up must be integers")
        if self.min_pairs < MIN_PAIRS or self.max_pairs < self.min_pairs:
            raise UsageError(f"pairs: need {MIN_PAIRS} <= min_pairs <= max_pairs")
        if self.warmup < 0:
            raise UsageError("warm-up must be 0 or more calls")
        if not self.max_seconds > 0:  # also refuses NaN
            raise UsageError(f"max_seconds {self.max_seconds!r} must be above 0")


class Deadline:
    """The moment a whole gate must be done by, counted from when this is made."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.perf_counter) -> None:
        self.seconds = seconds
        self._now = now
        self.started = now()

    def elapsed(self) -> float:
        return self._now() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def passed(self) -> bool:
        return self.left() <= 0


class BudgetError(UsageError):
    """The time budget cannot hold the pairs asked for (exit 2, as any usage error)."""


def _too_slow(budget: Budget, pairs: int, pair_s: float, left: float) -> BudgetError:
    said = f"only {max(left, 0):.2g} s of it is left" if left > 0 else "none of it is left"
    return BudgetError(
        f"the time budget of {budget.max_seconds:g} s cannot hold {budget.min_pairs} pairs of "
        f"calls: one pair takes at least {pair_s:.2g} s, so the {pairs} pairs still needed "
        f"would take about {pairs * pair_s:.2g} s, and {said}; raise the time budget, lower "
        "the minimum pairs or time a smaller input shape"
    )


class _Pairs:
    """Interleaved samples of two calls, with the fastest pair seen so far (what the budget
    projections use: a cold first call or a preempted one should not refuse a gate)."""

    def __init__(self, clock: Clock, candidate: Callable[[], Any], base: Callable[[], Any]):
        self.clock = clock
        self.candidate = candidate
        self.base = base
        self.cand: list[float] = []
        self.ref: list[float] = []
        self.fastest_s = math.inf

    def take(self, *, keep: bool) -> None:
        # ABBA: a drift or a cache warmed by the previous call favours neither model.
        if len(self.cand) % 2 == 0:
            c = self.clock.time_ms(self.candidate)
            b = self.clock.time_ms(self.base)
        else:
            b = self.clock.time_ms(self.base)
            c = self.clock.time_ms(self.candidate)
        if not (c > 0 and b > 0 and math.isfinite(c + b)):  # a broken injected clock
            raise UsageError(f"the clock timed calls at {c!r} and {b!r} ms: latencies must be "
                             "finite and positive")
        self.fastest_s = min(self.fastest_s, (c + b) / 1e3)
        if keep:
            self.cand.append(c)
            self.ref.append(b)

    def check_fits(self, budget: Budget, deadline: Deadline, pairs: int) -> None:
        if pairs > 0 and pairs * self.fastest_s > deadline.left():
            raise _too_slow(budget, pairs, self.fastest_s, deadline.left())


def interleaved_pairs(
    clock: Clock,
    candidate: Callable[[], Any],
    base: Callable[[], Any],
    *,
    limit: float,
    budget: Budget = Budget(),
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    deadline: Deadline | None = None,
) -> tuple[list[float], list[float]]:
    """Time candidate and base call by call, alternating which goes first, in growing batches
    until the ratio's interval lies clear of ``1 + limit`` or the budget is spent.

    The deadline is looked at before every pair. Until the first ``MIN_PAIRS`` pairs are in,
    the ``min_pairs`` still needed are projected from the fastest pair so far: a budget that
    cannot hold them is a UsageError at once, not minutes later. Past that, a deadline returns
    what there is (the caller says so in its verdict).
    """
    deadline = deadline if deadline is not None else Deadline(budget.max_seconds)
    pairs = _Pairs(clock, candidate, base)
    for done in range(budget.warmup):
        if done:  # the first warm-up pair is what every projection starts from
            pairs.check_fits(budget, deadline, budget.warmup - done + budget.min_pairs)
        pairs.take(keep=False)
    target = budget.min_pairs
    while True:
        while len(pairs.cand) < target:
            if deadline.passed():
                return _stopped_at_deadline(pairs, budget)
            if len(pairs.cand) < MIN_PAIRS and math.isfinite(pairs.fastest_s):
                pairs.check_fits(budget, deadline, budget.min_pairs - len(pairs.cand))
            pairs.take(keep=True)
        if len(pairs.cand) >= budget.max_pairs or deadline.passed():
            return pairs.cand, pairs.ref
        est = estimate_ratio(pairs.cand, pairs.ref, confidence=confidence, resamples=1000,
                             seed=seed)
        if est.clear_of(1.0 + limit):
            return pairs.cand, pairs.ref
        target = min(budget.max_pairs, target * 2)


def _stopped_at_deadline(pairs: _Pairs, budget: Budget) -> tuple[list[float], list[float]]:
    if len(pairs.cand) < MIN_PAIRS:
        raise _too_slow(budget, budget.min_pairs - len(pairs.cand), pairs.fastest_s, 0.0)
    return pairs.cand, pairs.ref


# ------------------------------------------------------------------------- running models


def require_module(model: Any, what: str = "the model") -> nn.Module:
    """``model`` if it is a torch module; a UsageError line otherwise (not an AttributeError
    from deep inside the timing)."""
    if not isinstance(model, nn.Module):
        raise UsageError(f"{what} must be a torch.nn.Module, not {type(model).__name__}")
    return model


def guarded(fn: Callable[[], Any], what: str) -> Callable[[], Any]:
    """``fn`` with whatever it raises (``sys.exit`` included) turned into a one-line
    ModelError starting with ``what``: user code never decides esrprof's exit code."""

    def call() -> Any:
        try:
            return fn()
        except USER_CODE_ERRORS as exc:
            raise user_code_failed(what, exc) from exc

    return call


def free_bytes(device: torch.device) -> int | None:
    """Memory an allocation on ``device`` may take now (CUDA: free device memory; Linux CPU:
    MemAvailable), or None where it cannot be told."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def input_for(
    input_shape: Sequence[int], device: torch.device, dtype: torch.dtype, *, seed: int = 0
) -> torch.Tensor:
    """The probe input, refused with one line when it cannot fit rather than attempted: an
    allocation of 100 GB either fails with a traceback or invites the kernel's OOM killer."""
    shape = check_shape(input_shape)
    if device.type == "meta":
        raise UsageError("the model is on the meta device: it has no weights to time; build "
                         "it on a real device")
    element = torch.empty((), dtype=dtype).element_size()
    # probe_input draws in fp32 on the CPU, then converts: both copies live for a moment
    needed = math.prod(shape) * (4 + (element if device.type != "cpu" or element != 4 else 0))
    free = free_bytes(device)
    where = f"{shape_text(shape)} ({dtype_label(dtype)}, {device})"
    if free is not None and needed > free:
        raise InputShapeError(
            f"an input of {where} needs {needed / GIB:.1f} GiB, more than the "
            f"{free / GIB:.1f} GiB free; time a smaller input shape"
        )
    try:
        return probe_input(shape, device, dtype, seed=seed)
    except (RuntimeError, MemoryError) as exc:
        raise InputShapeError(f"cannot allocate an input of {where}: {describe(exc)}") from None


def moved(model: nn.Module, device: torch.device, dtype: torch.dtype, what: str) -> nn.Module:
    """``model`` on ``device`` in ``dtype`` (the models esrprof builds itself, never the user's:
    ``.to`` changes a module in place)."""
    try:
        return model.to(device=device, dtype=dtype)
    except USER_CODE_ERRORS as exc:
        raise user_code_failed(f"moving {what} to {device}", exc) from exc


@contextmanager
def timing_state(models: Sequence[nn.Module], threads: int | None) -> Iterator[int]:
    """Eval mode, inference mode and pinned threads for the block; everything restored after,
    even when a model raises. Yields the thread count used."""
    with ExitStack() as stack:
        used = stack.enter_context(pinned_threads(threads))
        for model in models:
            stack.enter_context(preserved(model, eval_mode=True))
        stack.enter_context(torch.inference_mode())
        yield used


def environment_for(model: nn.Module, threads: int | None) -> dict[str, Any]:
    """The environment record with the thread count the latency is timed with: on a CPU the
    ``hardware`` string names it, and a baseline must match it."""
    from esrprof.environment import collect

    device, dtype = device_dtype(model)
    with pinned_threads(threads):
        return collect(device=device, dtype=dtype_label(dtype))


def sample_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    samples: int = 100,
    warmup: int = 5,
    threads: int | None = 1,
    clock: Clock | None = None,
    seed: int = 0,
    what: str = "the model's forward",
) -> list[float]:
    """``samples`` latencies of ``model`` alone, after ``warmup`` untimed calls."""
    if samples < 1 or warmup < 0:
        raise UsageError("samples must be at least 1 and warm-up 0 or more")
    device, dtype = device_dtype(model)
    fn = guarded(forward_of(model, input_for(input_shape, device, dtype, seed=seed)), what)
    clock = clock or make_clock(device)
    with timing_state((model,), threads):
        for _ in range(warmup):
            clock.time_ms(fn)
        return [clock.time_ms(fn) for _ in range(samples)]


def sample_pairs(
    candidate: nn.Module,
    other: nn.Module,
    input_shape: Sequence[int],
    *,
    limit: float,
    budget: Budget = Budget(),
    confidence: float = DEFAULT_CONFIDENCE,
    threads: int | None = 1,
    clock: Clock | None = None,
    seed: int = 0,
    deadline: Deadline | None = None,
    names: tuple[str, str] = ("candidate", "base"),
) -> tuple[list[float], list[float]]:
    """Interleaved latencies of ``candidate`` and ``other`` (moved to the candidate's device
    and dtype) on the same input: see :func:`interleaved_pairs`."""
    device, dtype = device_dtype(candidate)
    other = moved(other, device, dtype, f"the {names[1]}")
    x = input_for(input_shape, device, dtype, seed=seed)
    clock = clock or make_clock(device)
    with timing_state((candidate, other), threads):
        return interleaved_pairs(
            clock,
            guarded(forward_of(candidate, x), f"the {names[0]}'s forward"),
            guarded(forward_of(other, x), f"the {names[1]}'s forward"),
            limit=limit,
            budget=budget,
            confidence=confidence,
            seed=seed,
            deadline=deadline,
        )


def fixed_pairs(
    model: nn.Module,
    other: nn.Module,
    input_shape: Sequence[int],
    *,
    pairs: int,
    warmup: int = 5,
    threads: int | None = 1,
    clock: Clock | None = None,
    names: tuple[str, str] = ("model", "base"),
) -> tuple[list[float], list[float]]:
    """Exactly ``pairs`` interleaved pairs, no early stop and no time bound: what a baseline
    stores is taken under the same cache and scheduling pattern the gate will see."""
    budget = Budget(min_pairs=pairs, max_pairs=pairs, max_seconds=math.inf, warmup=warmup)
    return sample_pairs(model, other, input_shape, limit=0.0, budget=budget, threads=threads,
                        clock=clock, names=names)
