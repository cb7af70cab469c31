"""Clocks, thread pinning, statistics and the best-trial rule, driven by a fake clock."""

from __future__ import annotations

import random

import pytest
import torch

from esrprof.errors import UsageError
from esrprof.timing import (
    PerfCounterClock,
    SampleStats,
    Trials,
    best_trial,
    make_clock,
    pinned_threads,
    quantile,
    time_trials,
)


class ScriptedTimer:
    """A nanosecond timer whose every call-duration is taken from a script (or a seeded RNG)."""

    def __init__(self, durations_ms=None, seed=None):
        self.now = 0
        self.durations = list(durations_ms or [])
        self.rng = random.Random(seed) if seed is not None else None
        self.reads = 0

    def __call__(self) -> int:
        # Reads come in pairs (start, end); the end read advances time by the next duration.
        self.reads += 1
        if self.reads % 2 == 0:
            d = self.durations.pop(0) if self.durations else self.rng.uniform(1.0, 2.0)
            self.now += round(d * 1e6)
        return self.now


def test_perf_counter_clock_measures_the_call_in_ms():
    timer = ScriptedTimer([12.5])
    clock = make_clock("cpu", timer=timer)
    calls = []
    assert clock.name == "perf_counter"
    assert clock.time_ms(lambda: calls.append(1)) == pytest.approx(12.5)
    assert calls == [1]


def test_real_clock_is_positive_and_small():
    clock = make_clock(torch.device("cpu"))
    assert isinstance(clock, PerfCounterClock)
    ms = clock.time_ms(lambda: sum(range(1000)))
    assert 0 < ms < 1000


def test_cuda_device_with_timer_uses_host_clock_with_sync(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: synced.append(d))
    clock = make_clock("cuda:0", timer=ScriptedTimer([3.0]))
    assert clock.name == "perf_counter"
    assert clock.time_ms(lambda: None) == pytest.approx(3.0)
    assert len(synced) == 2  # before and after the call


def test_pinned_threads_sets_and_restores():
    before = torch.get_num_threads()
    with pinned_threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pinned_threads(None) as n:
        assert n == before


def test_pinned_threads_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), pinned_threads(1):
        raise RuntimeError("model failed")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_pinned_threads_rejects_bad_counts(bad):
    with pytest.raises(UsageError), pinned_threads(bad):
        pass


def test_quantile_matches_numpy_linear():
    import numpy as np

    rng = random.Random(3)
    xs = [rng.uniform(0, 10) for _ in range(17)]
    for q in (0, 0.1, 0.25, 0.5, 0.75, 1):
        assert quantile(xs, q) == pytest.approx(float(np.quantile(xs, q)))


def test_sample_stats_hand_computed():
    s = SampleStats.of([4.0, 1.0, 3.0, 2.0])
    assert s.n == 4
    assert s.mean_ms == 2.5
    assert s.median_ms == 2.5
    assert s.min_ms == 1.0 and s.max_ms == 4.0
    assert s.q1_ms == 1.75 and s.q3_ms == 3.25
    assert s.iqr_ms == 1.5
    assert s.stdev_ms == pytest.approx((5 / 3) ** 0.5)


def test_best_trial_is_lowest_mean_first_on_tie():
    assert best_trial([[3, 3], [1, 5], [2, 2]]) == 2
    assert best_trial([[2, 2], [1, 3]]) == 0
    assert best_trial([[], [5.0]]) == 1
    assert best_trial([[], []]) is None


def test_trials_figures_come_from_the_best_trial():
    t = Trials.of([[10, 30], [5, 7, 9][:2], [8, 8]])
    assert t.trial_means_ms == (20.0, 6.0, 8.0)
    assert t.best_index == 1
    assert t.runtime_ms == 6.0
    assert t.best.min_ms == 5.0
    assert t.spread == pytest.approx((20 - 6) / 6)
    d = t.to_dict()
    assert d["runtime_ms"] == 6.0 and d["best_trial"] == 1
    assert d["samples_ms"] == [[10, 30], [5, 7], [8, 8]]
    assert d["trial_spread_pct"] == pytest.approx(100 * 14 / 6)


def test_trials_without_samples_have_no_figures():
    d = Trials.of([[], []]).to_dict()
    assert d["runtime_ms"] is None and d["best_trial"] is None and d["trial_spread_pct"] is None


def test_time_trials_warms_up_then_keeps_every_sample():
    # Warm-up calls are not timed: the script's first durations go to the timed calls.
    timer = ScriptedTimer([1, 2, 3, 4, 5, 6])
    clock = make_clock("cpu", timer=timer)
    seen = []
    calls = [lambda: seen.append("a"), lambda: seen.append("b")]
    t = time_trials(clock, calls, trials=3, warmup=2)
    assert seen == ["a", "a"] + ["a", "b"] * 3
    assert t.samples_ms == ((1, 2), (3, 4), (5, 6))
    assert t.best_index == 0 and t.runtime_ms == 1.5


def test_time_trials_seeded_fake_clock_is_reproducible():
    def run(seed):
        clock = make_clock("cpu", timer=ScriptedTimer(seed=seed))
        return time_trials(clock, [lambda: None] * 5, trials=3, warmup=0)

    a, b = run(7), run(7)
    assert a == b
    assert a.runtime_ms == min(a.trial_means_ms)
    assert run(8) != a


def test_time_trials_rejects_bad_counts():
    clock = make_clock("cpu", timer=ScriptedTimer([1]))
    with pytest.raises(UsageError):
        time_trials(clock, [lambda: None], trials=0)
