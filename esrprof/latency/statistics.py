"""The statistics of interleaved latency samples: pure numpy, no torch, no clocks.

Why block minima (measured on a 2-core shared machine, see docs/ci-gating.md): a call that
another process preempts gets an *additive* delay, and when both calls of a pair are delayed
their ratio is pulled towards 1. The ratio is therefore taken per block of :data:`BLOCK`
consecutive pairs, between the fastest call of each model in the block; blocks are short, so
load that drifts over a run still falls on both models of a block alike. The interval of the
median block ratio comes from a seeded circular block bootstrap, whose blocks keep the machine's
bursts together so that the interval is not falsely narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_CONFIDENCE = 0.95
RESAMPLES = 2000
# Pairs per block: each block holds both call orders (candidate first, base first) twice.
BLOCK = 4
MIN_PAIRS = 2 * BLOCK  # fewer pairs give fewer than two blocks: no interval at all


def check_confidence(confidence: float) -> float:
    """A confidence level strictly between 0 and 1, or a ValueError."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        raise ValueError(f"confidence {confidence!r} must be a number between 0 and 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} must lie strictly between 0 and 1")
    return float(confidence)


def positive_samples(values: Sequence[float], what: str = "latencies") -> np.ndarray:
    """``values`` as a float array, or a ValueError if any is not a finite positive number."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError(f"no {what}")
    if not np.isfinite(x).all() or (x <= 0).any():
        raise ValueError(f"{what} must be finite and positive")
    return x


def bootstrap_medians(
    values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0,
    block: int | None = None,
) -> np.ndarray:
    """Medians of circular-block-bootstrap resamples of ``values`` (seeded).

    Blocks default to ``n ** (1/3)`` values, which keeps the time correlation of a shared
    machine's bursts inside each resample.
    """
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


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - check_confidence(confidence)) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_median_ci(
    values: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
    block: int | None = None,
) -> tuple[float, float]:
    """Percentile interval of the median by a circular block bootstrap; seeded, so the same
    samples give the same interval."""
    if len(values) == 1:
        return float(values[0]), float(values[0])
    medians = bootstrap_medians(values, resamples=resamples, seed=seed, block=block)
    return percentile_interval(medians, confidence)


def block_minima(samples: Sequence[float], k: int = BLOCK) -> np.ndarray:
    """The fastest of every ``k`` consecutive samples (a trailing partial block is dropped)."""
    x = np.asarray(samples, dtype=float)
    n = x.size // k * k
    return x[:n].reshape(-1, k).min(axis=1)


def block_ratios(
    candidate_ms: Sequence[float], base_ms: Sequence[float], k: int = BLOCK
) -> np.ndarray:
    """Per-block ratio of the fastest candidate call to the fastest base call.

    On the 2-core machine with two busy processes beside it, the median *per-call* ratio of a
    model 11 % slower came out at +4.6 % (with a confidently narrow interval); this ratio gave
    +11.2 %, as on a quiet machine.
    """
    return block_minima(candidate_ms, k) / block_minima(base_ms, k)


def fast_end_ms(samples: Sequence[float]) -> float:
    """Median of the block minima: load from other processes only ever adds time, so this
    moves far less with the machine's load than the median does."""
    minima = block_minima(samples)
    return float(np.median(minima)) if minima.size else float(min(samples))


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

    def clear_of(self, bound: float) -> bool:
        """Whether the whole interval lies on one side of ``bound``: more pairs cannot change
        the verdict."""
        return self.low > bound or self.high < bound

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slowdown": self.slowdown}


def _paired(candidate_ms: Sequence[float], base_ms: Sequence[float]) -> tuple:
    c = positive_samples(candidate_ms, "candidate latencies")
    b = positive_samples(base_ms, "base latencies")
    if c.shape != b.shape or c.size < MIN_PAIRS:
        raise ValueError(f"candidate and base need the same number (>= {MIN_PAIRS}) of samples")
    return c, b


def estimate_ratio(
    candidate_ms: Sequence[float],
    base_ms: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> RatioEstimate:
    """The median block ratio of interleaved samples and its bootstrap interval."""
    c, b = _paired(candidate_ms, base_ms)
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


def estimate_against_reference(
    candidate_ms: Sequence[float],
    reference_ms: Sequence[float],
    stored_ratios: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> RatioEstimate:
    """Slow-down through a third network: (candidate/reference now) / (base/reference stored).

    Both medians are bootstrapped, independently, and the interval is that of their quotient.
    """
    now = estimate_ratio(candidate_ms, reference_ms, confidence=confidence, seed=seed)
    stored = positive_samples(stored_ratios, "stored reference ratios")
    a = bootstrap_medians(block_ratios(candidate_ms, reference_ms), resamples=resamples, seed=seed)
    b = bootstrap_medians(stored, resamples=resamples, seed=seed + 1)
    low, high = percentile_interval(a / b, confidence)
    stored_median = float(np.median(stored))
    return RatioEstimate(
        ratio=now.ratio / stored_median,
        low=low,
        high=high,
        confidence=confidence,
        pairs=now.pairs,
        median_call_ratio=now.median_call_ratio / stored_median,
        ratio_of_medians=now.ratio_of_medians / stored_median,
        candidate_median_ms=now.candidate_median_ms,
        base_median_ms=now.base_median_ms,
    )


def is_finite_positive(value: Any) -> bool:
    """A real number (not a bool) that is finite and above zero."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
