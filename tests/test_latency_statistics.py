"""The gate's statistics: pure numpy, so every rule is checked on hand-made samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from esrprof.latency import statistics as st


def test_bootstrap_is_seeded_and_covers_the_median():
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 0.1, size=300)
    a = st.bootstrap_median_ci(x, seed=3)
    assert a == st.bootstrap_median_ci(x, seed=3)
    assert a[0] < np.median(x) < a[1]
    wide = st.bootstrap_median_ci(x[:30], seed=3)
    assert wide[1] - wide[0] > a[1] - a[0]


def test_the_interval_follows_the_confidence():
    rng = np.random.default_rng(2)
    x = rng.lognormal(0.0, 0.1, size=200)
    narrow = st.bootstrap_median_ci(x, confidence=0.5)
    wide = st.bootstrap_median_ci(x, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    for bad in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError):
            st.bootstrap_median_ci(x, confidence=bad)


def test_estimate_ratio_of_paired_samples():
    base = [2.0, 4.0, 3.0, 5.0, 2.5] * 10
    cand = [b * 1.2 for b in base]
    est = st.estimate_ratio(cand, base, confidence=0.9)
    assert est.ratio == pytest.approx(1.2)
    assert est.low == pytest.approx(1.2) and est.high == pytest.approx(1.2)
    assert est.pairs == 50 and est.confidence == 0.9
    assert est.slowdown == pytest.approx(0.2)
    assert est.clear_of(1.1) and est.clear_of(1.3) and not est.clear_of(1.2)
    with pytest.raises(ValueError):
        st.estimate_ratio([1.0], [1.0, 2.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1.0])
def test_non_finite_or_non_positive_samples_are_refused(bad):
    base = [1.0] * 16
    cand = [1.0] * 15 + [bad]
    with pytest.raises(ValueError, match="finite and positive"):
        st.estimate_ratio(cand, base)
    with pytest.raises(ValueError, match="finite and positive"):
        st.estimate_against_reference(base, base, [1.0, bad])


def test_block_ratios_resist_additive_delays():
    rng = np.random.default_rng(0)
    base = np.full(400, 2.0)
    cand = np.full(400, 2.2)  # 10 % slower
    # another process preempts most calls, both of a pair alike, adding 1-6 ms
    hit = rng.random(400) < 0.7
    delay = rng.uniform(1, 6, 400) * hit
    est = st.estimate_ratio(cand + delay, base + delay)
    assert est.median_call_ratio < 1.06  # the plain per-call ratio is pulled towards 1
    assert est.ratio == pytest.approx(1.1, abs=0.01) and est.low > 1.05


def test_block_minima_and_fast_end():
    samples = [5.0, 1.0, 3.0, 4.0, 2.0, 9.0, 8.0, 7.0, 100.0]  # the partial block is dropped
    assert list(st.block_minima(samples)) == [1.0, 2.0]
    assert st.fast_end_ms(samples) == 1.5
    assert st.fast_end_ms([3.0, 2.0]) == 2.0  # fewer than a block: the fastest


def test_estimate_against_reference():
    base = [2.0] * 40
    ref = [4.0] * 40
    stored = st.block_ratios(base, ref)  # base was half the reference
    est = st.estimate_against_reference([2.4] * 40, [4.0] * 40, stored)
    assert est.ratio == pytest.approx(1.2) and est.low == pytest.approx(1.2)


def test_is_finite_positive():
    assert st.is_finite_positive(1) and st.is_finite_positive(0.5)
    for bad in (0, -1, math.inf, math.nan, True, "1", None):
        assert not st.is_finite_positive(bad)
