"""The latency gate: statistics, sampling order, verdicts, and the CLI's exit codes."""

from __future__ import annotations

import json
import random
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from esrprof import gate
from esrprof.baseline import make_baseline, save_baseline
from esrprof.cli import main
from esrprof.errors import ResultFileError, UsageError

# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("text", "value"), [("5%", 0.05), (" 12.5% ", 0.125), ("0.05", 0.05), (0.1, 0.1), ("0", 0.0)]
)
def test_parse_fraction(text, value):
    assert gate.parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5", "abc", "-1%", "nan%", "", None, True])
def test_parse_fraction_rejects(text):
    with pytest.raises(UsageError):
        gate.parse_fraction(text)


def test_check_spec_parse():
    assert gate.CheckSpec.parse("ratio:5%") == gate.CheckSpec("ratio", 0.05)
    assert gate.CheckSpec.parse("ABS:0.2") == gate.CheckSpec("abs", 0.2)
    for bad in ("median:5%", "ratio", "ratio:x", "abs:150"):
        with pytest.raises(UsageError):
            gate.CheckSpec.parse(bad)


def test_bootstrap_is_seeded_and_covers_the_median():
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 0.1, size=300)
    a = gate.bootstrap_median_ci(x, seed=3)
    assert a == gate.bootstrap_median_ci(x, seed=3)
    assert a[0] < np.median(x) < a[1]
    wide = gate.bootstrap_median_ci(x[:30], seed=3)
    assert wide[1] - wide[0] > a[1] - a[0]


def test_estimate_ratio_of_paired_samples():
    base = [2.0, 4.0, 3.0, 5.0, 2.5] * 10
    cand = [b * 1.2 for b in base]
    est = gate.estimate_ratio(cand, base)
    assert est.ratio == pytest.approx(1.2)
    assert est.low == pytest.approx(1.2) and est.high == pytest.approx(1.2)
    assert est.pairs == 50
    assert est.slowdown == pytest.approx(0.2)
    with pytest.raises(ValueError):
        gate.estimate_ratio([1.0], [1.0, 2.0])


def _estimate(ratio, low, high):
    return gate.RatioEstimate(ratio, low, high, 0.95, 100, ratio, ratio, ratio, 1.0)


def test_block_ratios_resist_additive_delays():
    rng = np.random.default_rng(0)
    base = np.full(400, 2.0)
    cand = np.full(400, 2.2)  # 10 % slower
    # another process preempts most calls, both of a pair alike, adding 1-6 ms
    hit = rng.random(400) < 0.7
    delay = rng.uniform(1, 6, 400) * hit
    est = gate.estimate_ratio(cand + delay, base + delay)
    assert est.median_call_ratio < 1.06  # the plain per-call ratio is pulled towards 1
    assert est.ratio == pytest.approx(1.1, abs=0.01) and est.low > 1.05


def test_decide_ratio_uses_the_interval():
    assert not gate.decide_ratio(_estimate(1.10, 1.07, 1.13), 0.05).passed
    assert gate.decide_ratio(_estimate(1.01, 0.99, 1.03), 0.05).passed
    close = gate.decide_ratio(_estimate(1.06, 1.03, 1.09), 0.05)
    assert not close.passed and "close call" in close.note
    assert gate.decide_ratio(_estimate(1.04, 1.01, 1.07), 0.05).passed


# -------------------------------------------------------------------------------- sampling

CALLS: list[str] = []


class FakeClock:
    """Calls fn, then reports the cost of whichever model ran, with seeded noise."""

    def __init__(self, costs: dict[str, float], noise: float = 0.02, seed: int = 0):
        self.costs = costs
        self.noise = noise
        self.rng = random.Random(seed)
        self.name = "fake"

    def time_ms(self, fn):
        fn()
        return self.costs[CALLS[-1]] * (1 + self.rng.uniform(-self.noise, self.noise))


def test_interleaved_pairs_alternate_order_and_stop_early():
    order: list[str] = []

    def cand():
        order.append("c")
        CALLS.append("c")

    def base():
        order.append("b")
        CALLS.append("b")

    clock = FakeClock({"c": 1.3, "b": 1.0})
    c, b = gate.interleaved_pairs(
        clock, cand, base, limit=0.05, budget=gate.Budget(min_pairs=10, max_pairs=80, warmup=0)
    )
    assert order[:8] == ["c", "b", "b", "c", "c", "b", "b", "c"]
    assert len(c) == len(b) == 10  # the interval cleared the limit at the first look
    assert all(x > y for x, y in zip(c, b))


def test_interleaved_pairs_take_more_pairs_on_a_close_call():
    cand_times = iter(([1.0] * 4 + [1.1] * 4) * 100)

    class Alternating:
        def time_ms(self, fn):
            return fn()

    # per-block ratios alternate 1.0 and 1.1: the interval always straddles the 5 % limit
    c, _ = gate.interleaved_pairs(
        Alternating(),
        lambda: next(cand_times),
        lambda: 1.0,
        limit=0.05,
        budget=gate.Budget(min_pairs=10, max_pairs=80, warmup=0),
    )
    assert len(c) == 80


def test_budget_validation():
    with pytest.raises(UsageError):
        gate.Budget(min_pairs=6)
    with pytest.raises(UsageError):
        gate.Budget(min_pairs=50, max_pairs=10)


# ------------------------------------------------------------------------ gate on models

MODEL_SOURCE = """
from torch import nn

import gate_calls


class Net(nn.Module):
    COST = {cost}

    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        gate_calls.CALLS.append(self.COST)
        return self.conv(x)
"""


ENV = {"hardware": "t"}


class CostClock:
    """A fake clock reading the ``COST`` the called model declared (base and candidate may be
    different copies of the class, so the cost travels through a shared module)."""

    name = "fake"

    def __init__(self, noise: float = 0.03, seed: int = 0):
        self.rng = random.Random(seed)
        self.noise = noise

    def time_ms(self, fn):
        import gate_calls

        fn()
        return gate_calls.CALLS[-1] * (1 + self.rng.uniform(-self.noise, self.noise))


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    (tmp_path / "gate_calls.py").write_text("CALLS = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _load(path, name="Net", **kwargs):
    from esrprof.loading import build

    return build(f"{path}:{name}", kwargs)


def _write(model_dir, name, cost):
    path = model_dir / name
    path.write_text(MODEL_SOURCE.format(cost=cost))
    return path


def test_run_gate_passes_unchanged_and_fails_slower_with_fake_clock(model_dir):
    v1 = _write(model_dir, "net_v1.py", 2.0)
    env = {"hardware": "test-cpu"}
    base = make_baseline(_load(v1), (1, 3, 8, 8), clock=CostClock(), environment=env)
    same = gate.run_gate(_load(v1), base, clock=CostClock(seed=1), hardware="test-cpu")
    assert same.passed and same.exit_code == 0
    assert [c.name for c in same.checks] == ["ratio", "abs"]
    v2 = _write(model_dir, "net_v2.py", 2.3)  # the same class, 15 % slower
    slow = gate.run_gate(_load(v2), base, clock=CostClock(seed=2), hardware="test-cpu")
    assert not slow.passed and slow.exit_code == 1
    assert slow.estimate.ratio == pytest.approx(1.15, abs=0.02)
    assert "REGRESSION" in slow.message() and "+15" in slow.message()
    json.dumps(slow.to_dict())


def test_run_gate_rebuilds_the_base_from_the_stored_source(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    _write(model_dir, "net.py", 3.0)  # the file changes after the baseline was taken
    assert base.build_base().COST == 2.0
    # (a fresh file name: this process has the first net.py imported already)
    changed = _write(model_dir, "net_changed.py", 3.0)
    verdict = gate.run_gate(_load(changed), base, clock=CostClock(), hardware="t")
    assert verdict.estimate.ratio == pytest.approx(1.5, abs=0.05)


def test_run_gate_on_other_hardware_is_an_error_unless_allowed(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment={
        "hardware": "cpu A"})
    with pytest.raises(ResultFileError, match="taken on 'cpu A'"):
        gate.run_gate(_load(path), base, clock=CostClock(), hardware="cpu B")
    verdict = gate.run_gate(
        _load(path), base, clock=CostClock(), hardware="cpu B", allow_other_hardware=True
    )
    assert [c.name for c in verdict.checks] == ["ratio"]
    assert any("absolute check skipped" in n for n in verdict.notes)


def test_run_gate_leaves_models_and_threads_as_they_were(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    model = _load(path).train()
    threads = torch.get_num_threads()
    base = make_baseline(model, (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    gate.run_gate(model, base, clock=CostClock(), hardware="t")
    assert model.training and all(m.training for m in model.modules())
    assert torch.get_num_threads() == threads
    assert torch.is_grad_enabled()


def test_real_clock_gate_detects_a_large_slowdown():
    class Small(nn.Module):
        def __init__(self, depth=1):
            super().__init__()
            self.body = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])

        def forward(self, x):
            return self.body(x)

    base = Small(1)
    cand = Small(6)
    x = gate.probe_input((1, 8, 16, 16), "cpu")
    with torch.inference_mode():
        c, b = gate.interleaved_pairs(
            gate.default_clock("cpu"),
            gate.forward_of(cand, x),
            gate.forward_of(base, x),
            limit=0.05,
            budget=gate.Budget(min_pairs=20, max_pairs=100, warmup=2),
        )
    assert gate.estimate_ratio(c, b).ratio > 2


# --------------------------------------------------------------------------- the commands

NET_FILE = """
from torch import nn


class Net(nn.Module):
    def __init__(self, width=8, depth={depth}):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])

    def forward(self, x):
        return self.body(self.head(x))
"""


@pytest.fixture
def saved(tmp_path):
    net = tmp_path / "net.py"
    net.write_text(NET_FILE.format(depth=1))
    out = tmp_path / "base.json"
    code = main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape",
                 "1,3,16,16", "--samples", "10"])
    assert code == 0 and out.exists()
    return net, out


def _gate(net, baseline, *extra):
    return main(["gate", f"{net}:Net", "--baseline", str(baseline), "--min-pairs", "20",
                 "--max-pairs", "80", *extra])


def test_cli_gate_exit_codes(saved, capsys):
    net, out = saved
    capsys.readouterr()
    assert _gate(net, out, "--max-slowdown", "60%", "--no-absolute") == 0
    assert "PASS" in capsys.readouterr().out
    slow = net.parent / "net_slow.py"  # the same class with eight times the body
    slow.write_text(NET_FILE.format(depth=8))
    verdict = net.parent / "verdict.json"
    assert _gate(slow, out, "--json", str(verdict)) == 1
    text = capsys.readouterr().out
    assert "REGRESSION" in text and "95% CI" in text
    assert json.loads(verdict.read_text())["exit_code"] == 1


def test_cli_baseline_never_overwrites_without_force(saved, capsys):
    net, out = saved
    before = out.read_text()
    args = ["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape", "1,3,16,16",
            "--samples", "10"]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == before
    assert main([*args, "--force"]) == 0


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _other_model(d):
    d["model"]["class_name"] = "OtherNet"


def _other_hardware(d):
    d["environment"]["hardware"] = "a machine that is not this one"


def _bad_hash(d):
    d["base"]["source"] += "\n# edited\n"


def _no_samples(d):
    del d["latency"]


def _newer(d):
    d["schema_version"] = 99


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_other_model, "is for model OtherNet"),
        (_other_hardware, "pass --allow-other-hardware"),
        (_bad_hash, "does not match its sha256"),
        (_no_samples, "corrupt baseline"),
        (_newer, "newer than this esrprof reads"),
    ],
)
def test_cli_gate_bad_baselines_exit_2(saved, capsys, edit, message):
    net, out = saved
    _edit(out, edit)
    capsys.readouterr()
    assert _gate(net, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("esrprof: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_gate_other_input_shape_and_unreadable_files(saved, capsys, tmp_path):
    net, out = saved
    assert _gate(net, out, "--input-shape", "1,3,32,32") == 2
    assert "taken at input shape 1x3x16x16, not 1x3x32x32" in capsys.readouterr().err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert _gate(net, garbage) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert _gate(net, tmp_path / "missing.json") == 2
    assert "no such file" in capsys.readouterr().err
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"schema_version": 1, "counts": {}}))
    assert _gate(net, result) == 2
    assert "not an esrprof baseline" in capsys.readouterr().err
    assert _gate(net, out, "--max-slowdown", "5") == 2
    assert "ambiguous" in capsys.readouterr().err


def test_cli_gate_allows_other_hardware_when_asked(saved, capsys):
    net, out = saved
    _edit(out, _other_hardware)
    assert _gate(net, out, "--allow-other-hardware", "--max-slowdown", "60%") == 0
    assert "absolute check skipped" in capsys.readouterr().out


def test_save_baseline_refuses_to_overwrite(tmp_path, model_dir):
    path = _write(model_dir, "net.py", 1.0)
    b = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    target = tmp_path / "sub" / "b.json"
    save_baseline(b, target)
    with pytest.raises(UsageError, match="--force"):
        save_baseline(b, target)
    save_baseline(b, target, force=True)
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_make_baseline_checks_that_the_source_rebuilds_the_model(model_dir):
    path = model_dir / "wide.py"
    path.write_text(textwrap.dedent(MODEL_SOURCE.format(cost=1.0)))
    model = _load(path, width=16)
    with pytest.raises(UsageError, match="constructor kwargs"):
        make_baseline(model, (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    ok = make_baseline(model, (1, 3, 8, 8), kwargs={"width": 16}, clock=CostClock(),
                       environment=ENV)
    assert ok.kwargs == {"width": 16}


@pytest.mark.gpu
def test_gate_on_cuda_times_with_events(tmp_path):
    net = tmp_path / "cuda_net.py"
    net.write_text(NET_FILE.format(depth=1))
    model = _load(net).cuda()
    base = make_baseline(model, (1, 3, 64, 64), samples=10)
    assert base.device.startswith("cuda") and base.hardware
    verdict = gate.run_gate(model, base, max_slowdown=0.5, abs_max_slowdown=1.0)
    assert verdict.passed, verdict.message()


def test_interleaved_pairs_stop_at_the_time_budget():
    ticks = iter(range(10_000))

    class Alternating:
        def time_ms(self, fn):
            return fn()

    values = iter(([1.0] * 4 + [1.1] * 4) * 1000)
    c, _ = gate.interleaved_pairs(
        Alternating(),
        lambda: next(values),
        lambda: 1.0,
        limit=0.05,
        budget=gate.Budget(min_pairs=10, max_pairs=1000, max_seconds=15, warmup=0),
        now=lambda: float(next(ticks)),  # one "second" per look at the clock
    )
    assert 10 <= len(c) < 40


def test_cli_gate_base_spec_overrides_the_stored_source(saved, capsys):
    net, out = saved
    slow = net.parent / "net_slow_base.py"
    slow.write_text(NET_FILE.format(depth=8))
    capsys.readouterr()
    assert _gate(net, out, "--base", f"{slow}:Net", "--no-absolute") == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "slow-down -" in text  # faster than that base


def test_cli_gate_against_a_named_reference(tmp_path, capsys):
    net = tmp_path / "ref_net.py"
    net.write_text(NET_FILE.format(depth=1))
    ref = tmp_path / "calib.py"
    ref.write_text(NET_FILE.format(depth=2))
    out = tmp_path / "base.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape", "1,3,16,16",
                 "--samples", "40", "--reference", f"{ref}:Net"]) == 0
    stored = json.loads(out.read_text())["reference"]
    assert stored["spec"] == f"{ref}:Net" and len(stored["ratios"]) == 10
    capsys.readouterr()
    assert _gate(net, out, "--against-reference", "--max-slowdown", "60%", "--no-absolute") == 0
    assert "timed against the reference" in capsys.readouterr().out
    slow = tmp_path / "ref_net_slow.py"
    slow.write_text(NET_FILE.format(depth=8))
    assert _gate(slow, out, "--against-reference", "--no-absolute") == 1
    # a baseline without a reference cannot be used that way
    plain = tmp_path / "plain.json"
    main(["baseline", "save", f"{net}:Net", "-o", str(plain), "--input-shape", "1,3,16,16",
          "--samples", "10"])
    capsys.readouterr()
    assert _gate(net, plain, "--against-reference") == 2
    assert "--reference NAME" in capsys.readouterr().err
    assert main(["baseline", "save", f"{net}:Net", "-o", str(tmp_path / "x.json"),
                 "--reference", "no-such-model"]) == 2


def test_estimate_against_reference():
    base = [2.0] * 40
    ref = [4.0] * 40
    stored = gate.block_ratios(base, ref)  # base was half the reference
    est = gate.estimate_against_reference([2.4] * 40, [4.0] * 40, stored)
    assert est.ratio == pytest.approx(1.2) and est.low == pytest.approx(1.2)
