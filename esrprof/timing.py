"""Clocks, thread pinning and the statistics of timed samples.

Two clock backends share one small protocol: ``time_ms(fn)`` runs ``fn`` once and returns how
long it took, synchronised, in milliseconds.

* ``perf_counter`` (CPU): ``time.perf_counter_ns`` around the call. The ``timer`` is injectable
  (any callable returning nanoseconds), so warm-up, trials and the best-trial rule are tested
  with a seeded fake clock, as torch's ``benchmark.Timer`` tests do.
* ``cuda_event`` (CUDA): one event pair per call, then a synchronise on the end event and
  ``elapsed_time`` (triton's ``do_bench`` recipe). Only the device work between the two events is
  timed; host-side copies belong outside ``fn``.

Statistics are plain functions of the raw samples (never cached), so a record read back from
JSON gives the same figures as the one that was measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from esrprof.errors import UsageError


class Clock(Protocol):
    name: str

    def time_ms(self, fn: Callable[[], object]) -> float: ...


class PerfCounterClock:
    """Host clock. On a CUDA device it synchronises before and after, so queued kernels are
    neither charged to this call nor left out of it."""

    name = "perf_counter"

    def __init__(
        self,
        timer: Callable[[], int] = time.perf_counter_ns,
        sync: Callable[[], None] | None = None,
    ) -> None:
        self._timer = timer
        self._sync = sync

    def time_ms(self, fn: Callable[[], object]) -> float:
        if self._sync is not None:
            self._sync()
        start = self._timer()
        fn()
        if self._sync is not None:
            self._sync()
        return (self._timer() - start) / 1e6


class CudaEventClock:
    """CUDA events around the call on the current stream; one synchronise per call."""

    name = "cuda_event"

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def time_ms(self, fn: Callable[[], object]) -> float:
        with torch.cuda.device(self.device):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))


def make_clock(
    device: str | torch.device, *, timer: Callable[[], int] | None = None
) -> Clock:
    """The clock for ``device``: CUDA events on a CUDA device, ``perf_counter_ns`` elsewhere.

    A ``timer`` (returning nanoseconds) forces the host clock, synchronising a CUDA device around
    each call; tests pass a fake one.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        if timer is not None:
            return PerfCounterClock(timer, sync=lambda: torch.cuda.synchronize(dev))
        return CudaEventClock(dev)
    return PerfCounterClock(timer or time.perf_counter_ns)


@contextmanager
def pinned_threads(n: int | None) -> Iterator[int]:
    """Fix torch's intra-op thread count for the block (restored after); yields the count used.

    ``None`` keeps the current count and only reports it.
    """
    before = torch.get_num_threads()
    if n is None:
        yield before
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------- statistics


def quantile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), ``0 <= q <= 1``."""
    if not samples:
        raise ValueError("quantile of no samples")
    xs = sorted(samples)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class SampleStats:
    """Summary of one list of samples (ms)."""

    n: int
    mean_ms: float
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    stdev_ms: float

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @classmethod
    def of(cls, samples: Sequence[float]) -> SampleStats:
        if not samples:
            raise ValueError("statistics of no samples")
        n = len(samples)
        mean = math.fsum(samples) / n
        var = math.fsum((x - mean) ** 2 for x in samples) / (n - 1) if n > 1 else 0.0
        return cls(
            n=n,
            mean_ms=mean,
            median_ms=quantile(samples, 0.5),
            min_ms=min(samples),
            max_ms=max(samples),
            q1_ms=quantile(samples, 0.25),
            q3_ms=quantile(samples, 0.75),
            stdev_ms=math.sqrt(var),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean_ms": self.mean_ms,
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "q1_ms": self.q1_ms,
            "q3_ms": self.q3_ms,
            "iqr_ms": self.iqr_ms,
            "stdev_ms": self.stdev_ms,
        }


def mean(samples: Sequence[float]) -> float | None:
    return math.fsum(samples) / len(samples) if samples else None


def best_trial(trials: Sequence[Sequence[float]]) -> int | None:
    """Index of the trial with the lowest per-sample mean (the challenge's "best of three");
    the first on a tie; None when no trial has a sample."""
    best: int | None = None
    best_mean = math.inf
    for i, samples in enumerate(trials):
        m = mean(samples)
        if m is not None and m < best_mean:
            best, best_mean = i, m
    return best


@dataclass(frozen=True)
class Trials:
    """Raw samples, one tuple per trial (a trial is one pass over the same calls, in order).

    Every figure is derived from ``samples_ms`` on demand.
    """

    samples_ms: tuple[tuple[float, ...], ...]
    # How the trials make the figure: "best" (2022: the lowest per-call mean) or "mean" (2024 on:
    # the organisers average their runs).
    choice: str = "best"

    @classmethod
    def of(cls, trials: Sequence[Sequence[float]], choice: str = "best") -> Trials:
        if choice not in ("best", "mean"):
            raise UsageError(f"trial choice {choice!r}: best or mean")
        return cls(tuple(tuple(float(x) for x in t) for t in trials), choice)

    @property
    def trial_means_ms(self) -> tuple[float | None, ...]:
        return tuple(mean(t) for t in self.samples_ms)

    @property
    def best_index(self) -> int | None:
        return best_trial(self.samples_ms)

    @property
    def best(self) -> SampleStats | None:
        i = self.best_index
        return None if i is None else SampleStats.of(self.samples_ms[i])

    @property
    def runtime_ms(self) -> float | None:
        """The protocol's figure: the per-call mean of the best trial, or (``choice="mean"``)
        the average of the trials' per-call means."""
        if self.choice == "mean":
            means = [m for m in self.trial_means_ms if m is not None]
            return math.fsum(means) / len(means) if means else None
        best = self.best
        return None if best is None else best.mean_ms

    @property
    def spread(self) -> float | None:
        """(slowest trial mean - fastest) / fastest: how much the trials disagree."""
        means = [m for m in self.trial_means_ms if m is not None]
        if len(means) < 2 or min(means) <= 0:
            return None
        return (max(means) - min(means)) / min(means)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        spread = self.spread
        return {
            "runtime_ms": self.runtime_ms,
            "trial_choice": self.choice,
            "median_ms": None if best is None else best.median_ms,
            "min_ms": None if best is None else best.min_ms,
            "iqr_ms": None if best is None else best.iqr_ms,
            "stdev_ms": None if best is None else best.stdev_ms,
            "best_trial": self.best_index,
            "trial_means_ms": list(self.trial_means_ms),
            "trial_spread_pct": None if spread is None else 100.0 * spread,
            "samples_ms": [list(t) for t in self.samples_ms],
        }


def time_trials(
    clock: Clock,
    calls: Sequence[Callable[[], object]],
    *,
    trials: int = 3,
    warmup: int = 1,
) -> Trials:
    """Time each call once per trial, in order, after ``warmup`` untimed passes of the first call.

    The generic loop for simple cases (benchmarks, tests); ``esrprof.run`` has its own per-image
    loop because it moves data between timed calls and handles out-of-memory per image.
    """
    if trials < 1 or warmup < 0:
        raise UsageError("trials must be >= 1 and warmup >= 0")
    if calls:
        for _ in range(warmup):
            calls[0]()
    return Trials.of([[clock.time_ms(fn) for fn in calls] for _ in range(trials)])
