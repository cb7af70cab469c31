"""Sampling: the ABBA order, the budget and its deadline, and failures as one-line errors."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from esrprof.errors import InputShapeError, ModelError, UsageError
from esrprof.latency import sampling
from esrprof.latency.sampling import Budget, Deadline, interleaved_pairs
from esrprof.latency.statistics import estimate_ratio
from esrprof.probe import usable_device


class Replay:
    """A clock that returns what the timed function returns (the function *is* the cost)."""

    name = "replay"

    def time_ms(self, fn):
        return fn()


class VirtualTime:
    """A clock whose calls take the time they report, on a virtual wall clock: a slow model
    without the wait."""

    name = "virtual"

    def __init__(self, costs_ms):
        self.costs = costs_ms
        self.now_s = 0.0
        self.calls = 0

    def time_ms(self, fn):
        cost = self.costs[fn()]
        self.now_s += cost / 1e3
        self.calls += 1
        return cost

    def now(self):
        return self.now_s


def test_interleaved_pairs_alternate_order_and_stop_early():
    order: list[str] = []
    rng = random.Random(0)

    def cand():
        order.append("c")
        return 1.3 * (1 + rng.uniform(-0.02, 0.02))

    def base():
        order.append("b")
        return 1.0 * (1 + rng.uniform(-0.02, 0.02))

    c, b = interleaved_pairs(Replay(), cand, base, limit=0.05,
                             budget=Budget(min_pairs=10, max_pairs=80, warmup=0))
    assert order[:8] == ["c", "b", "b", "c", "c", "b", "b", "c"]
    assert len(c) == len(b) == 10  # the interval cleared the limit at the first look
    assert all(x > y for x, y in zip(c, b))


def test_interleaved_pairs_take_more_pairs_on_a_close_call():
    cand_times = iter(([1.0] * 4 + [1.1] * 4) * 100)
    # per-block ratios alternate 1.0 and 1.1: the interval always straddles the 5 % limit
    c, _ = interleaved_pairs(Replay(), lambda: next(cand_times), lambda: 1.0, limit=0.05,
                             budget=Budget(min_pairs=10, max_pairs=80, warmup=0))
    assert len(c) == 80


def test_interleaved_pairs_stop_at_the_time_budget():
    values = iter(([1.0] * 4 + [1.1] * 4) * 1000)
    wall = [0.0]

    class Tenth:  # every call takes 0.1 s of virtual wall time
        def time_ms(self, fn):
            wall[0] += 0.1
            return fn()

    deadline = Deadline(15, now=lambda: wall[0])
    c, _ = interleaved_pairs(
        Tenth(), lambda: next(values), lambda: 1.0, limit=0.05,
        budget=Budget(min_pairs=10, max_pairs=1000, max_seconds=15, warmup=0),
        deadline=deadline,
    )
    assert 10 <= len(c) <= 76 and wall[0] <= 15.2


def test_a_model_too_slow_for_the_budget_is_refused_after_its_first_pair():
    # a 4096x4096 forward of ~2.5 s: 60 pairs take 300 s, the budget is 5 s
    clock = VirtualTime({"c": 2500.0, "b": 2400.0})
    deadline = Deadline(5.0, now=clock.now)
    with pytest.raises(UsageError, match="cannot hold 60 pairs of calls"):
        interleaved_pairs(clock, lambda: "c", lambda: "b", limit=0.05,
                          budget=Budget(max_seconds=5.0), deadline=deadline)
    assert clock.calls == 2 and clock.now_s <= 5.0  # one warm-up pair, then the verdict


def test_the_deadline_holds_when_calls_slow_down_midway():
    costs = {"c": 10.0, "b": 10.0}
    clock = VirtualTime(costs)
    deadline = Deadline(2.0, now=clock.now)
    taken = []

    def cand():
        taken.append(1)
        if len(taken) > 20:  # the machine gets busy: every call now takes 100 ms
            costs["c"] = costs["b"] = 100.0
        return "c"

    c, b = interleaved_pairs(clock, cand, lambda: "b", limit=0.05,
                             budget=Budget(min_pairs=60, max_seconds=2.0, warmup=2),
                             deadline=deadline)
    assert 8 <= len(c) < 60 and len(c) == len(b)
    assert clock.now_s < 2.0 + 0.2  # at most the pair in flight past the bound


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "0", "abc", None, True, math.nan])
def test_positive_seconds_refuses_what_is_not_a_bound(bad):
    with pytest.raises(UsageError):
        sampling.positive_seconds(bad)
    assert sampling.positive_seconds("2.5") == 2.5


def test_budget_validation():
    with pytest.raises(UsageError):
        Budget(min_pairs=6)
    with pytest.raises(UsageError):
        Budget(min_pairs=50, max_pairs=10)
    with pytest.raises(UsageError):
        Budget(max_seconds=math.nan)
    with pytest.raises(UsageError):
        Budget(max_seconds=-1)
    assert Budget(max_seconds=math.inf).max_seconds == math.inf  # the library's "no bound"


@pytest.mark.parametrize("code", [0, 7, None])
def test_guarded_turns_sys_exit_into_a_model_error(code):
    def forward():
        raise SystemExit(code)

    with pytest.raises(ModelError, match=rf"the forward called sys.exit\({code!r}\)"):
        sampling.guarded(forward, "the forward")()


def test_a_huge_input_is_refused_before_it_is_allocated(monkeypatch):
    monkeypatch.setattr(sampling, "free_bytes", lambda device: 8 * 1024**3)

    def never(*args, **kwargs):
        raise AssertionError("allocated")

    monkeypatch.setattr(sampling, "probe_input", never)
    with pytest.raises(InputShapeError, match=r"1x3x100000x100000 .*needs 111.8 GiB"):
        sampling.input_for((1, 3, 100000, 100000), torch.device("cpu"), torch.float32)


def test_an_allocation_failure_is_one_line(monkeypatch):
    monkeypatch.setattr(sampling, "free_bytes", lambda device: None)

    def fails(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried...\nmore")

    monkeypatch.setattr(sampling, "probe_input", fails)
    with pytest.raises(InputShapeError, match="cannot allocate an input") as info:
        sampling.input_for((1, 3, 8, 8), torch.device("cpu"), torch.float32)
    assert "\n" not in str(info.value)


def test_free_bytes_reads_this_machine():
    free = sampling.free_bytes(torch.device("cpu"))
    assert free is None or free > 0


@pytest.mark.parametrize("text", ["cpux", "cuda:99" if torch.cuda.is_available() else "cuda",
                                  "meta"])
def test_unusable_devices_are_usage_errors(text):
    with pytest.raises(UsageError):
        usable_device(text)
    assert usable_device("cpu") == torch.device("cpu")


class Small(nn.Module):
    def __init__(self, depth=1):
        super().__init__()
        self.body = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])

    def forward(self, x):
        return self.body(x)


def test_real_clock_pairs_detect_a_large_slowdown():
    c, b = sampling.sample_pairs(Small(6), Small(1), (1, 8, 16, 16), limit=0.05,
                                 budget=Budget(min_pairs=20, max_pairs=100, warmup=2))
    assert estimate_ratio(c, b).ratio > 2


def test_sampling_restores_flags_and_threads_when_the_forward_fails():
    class Fails(Small):
        def forward(self, x):
            raise SystemExit(0)

    model = Fails().train()
    threads = torch.get_num_threads()
    with pytest.raises(ModelError, match=r"the candidate's forward called sys.exit\(0\)"):
        sampling.sample_pairs(model, Small(), (1, 8, 8, 8), limit=0.05,
                              budget=Budget(min_pairs=8, warmup=1))
    assert model.training and torch.is_grad_enabled()
    assert torch.get_num_threads() == threads


def test_sample_latency_alone():
    times = sampling.sample_latency(Small(), (1, 8, 8, 8), samples=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_broken_clock_is_a_usage_error_not_a_verdict(bad):
    with pytest.raises(UsageError, match="finite and positive"):
        interleaved_pairs(Replay(), lambda: bad, lambda: 1.0, limit=0.05,
                          budget=Budget(min_pairs=8, warmup=0))


def test_the_budget_sentence_reads_as_english():
    clock = VirtualTime({"c": 2500.0, "b": 2400.0})
    deadline = Deadline(5.0, now=clock.now)
    with pytest.raises(UsageError) as info:
        interleaved_pairs(clock, lambda: "c", lambda: "b", limit=0.05,
                          budget=Budget(max_seconds=5.0), deadline=deadline)
    text = str(info.value)
    assert text.startswith("the time budget of 5 s cannot hold 60 pairs of calls: one pair "
                           "takes at least 4.9 s, so the 64 pairs still needed would take "
                           "about 3.1e+02 s, and only")
    assert " s of it is left; raise the time budget" in text
    # no figure that says nothing ("0 s of 0.3 s are left", "~0 s")
    assert "0 s of" not in text and "~" not in text
