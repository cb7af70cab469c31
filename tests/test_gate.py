"""The latency gate: statistics, sampling order, verdicts, and the CLI's exit codes."""

from __future__ import annotations

import hashlib
import json
import random
import textwrap

import pytest
import torch

from esrprof.cli import main
from esrprof.errors import ResultFileError, UsageError
from esrprof.latency import gate
from esrprof.latency.baseline import make_baseline, save_baseline
from esrprof.latency.gate import GateConfig
from esrprof.latency.sampling import Budget, Deadline
from esrprof.latency.statistics import RatioEstimate

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


def _estimate(ratio, low, high):
    return RatioEstimate(ratio, low, high, 0.95, 100, ratio, ratio, ratio, 1.0)


def test_decide_ratio_uses_the_interval():
    assert not gate.decide_ratio(_estimate(1.10, 1.07, 1.13), 0.05).passed
    assert gate.decide_ratio(_estimate(1.01, 0.99, 1.03), 0.05).passed
    close = gate.decide_ratio(_estimate(1.06, 1.03, 1.09), 0.05)
    assert not close.passed and "close call" in close.note
    assert gate.decide_ratio(_estimate(1.04, 1.01, 1.07), 0.05).passed


# -------------------------------------------------------------------------------- sampling

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
    same = gate.run_gate(_load(v1), base, clock=CostClock(seed=1), environment=env)
    assert same.passed and same.exit_code == 0
    assert [(c.name, c.enforced) for c in same.checks] == [("ratio", True), ("abs", False)]
    v2 = _write(model_dir, "net_v2.py", 2.3)  # the same class, 15 % slower
    slow = gate.run_gate(_load(v2), base, clock=CostClock(seed=2), environment=env)
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
    verdict = gate.run_gate(_load(changed), base, clock=CostClock(), environment=ENV)
    assert verdict.estimate.ratio == pytest.approx(1.5, abs=0.05)


def test_run_gate_on_other_hardware_is_an_error_unless_allowed(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment={
        "hardware": "cpu A"})
    with pytest.raises(ResultFileError, match="taken on 'cpu A'"):
        gate.run_gate(_load(path), base, clock=CostClock(), environment={"hardware": "cpu B"})
    verdict = gate.run_gate(
        _load(path), base, GateConfig(allow_other_hardware=True), clock=CostClock(),
        environment={"hardware": "cpu B"},
    )
    assert [c.name for c in verdict.checks] == ["ratio"]
    assert any("absolute check skipped" in n for n in verdict.notes)


def test_run_gate_leaves_models_and_threads_as_they_were(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    model = _load(path).train()
    threads = torch.get_num_threads()
    base = make_baseline(model, (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    gate.run_gate(model, base, clock=CostClock(), environment=ENV)
    assert model.training and all(m.training for m in model.modules())
    assert torch.get_num_threads() == threads
    assert torch.is_grad_enabled()


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
    verdict = gate.run_gate(model, base, GateConfig(max_slowdown=0.5, absolute="check",
                                                    abs_max_slowdown=1.0))
    assert verdict.passed, verdict.message()


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


# ------------------------------------------------------------- the decision and its budget


def test_parse_confidence():
    assert gate.parse_confidence("90%") == pytest.approx(0.9)
    assert gate.parse_confidence(0.975) == 0.975
    for bad in ("100%", "0", "abc", "150%"):
        with pytest.raises(UsageError):
            gate.parse_confidence(bad)


class ScaledClock(CostClock):
    """The cost clock, every figure scaled: the whole machine is that much slower today."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def time_ms(self, fn):
        return super().time_ms(fn) * self.scale


def test_the_absolute_check_is_information_unless_asked_for(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    # a busy machine: candidate and base both 60 % slower than when the baseline was saved
    default = gate.run_gate(_load(path), base, clock=ScaledClock(1.6, seed=1), environment=ENV)
    assert abs(default.estimate.slowdown) < 0.03
    absolute = default.checks[1]
    assert absolute.name == "abs" and not absolute.passed and not absolute.enforced
    assert absolute.observed == pytest.approx(1.6, abs=0.05)
    assert default.passed and default.exit_code == 0
    text = default.message()
    assert "abs (information, not enforced): +" in text and "the base itself +" in text
    enforced = gate.run_gate(_load(path), base, GateConfig(absolute="check"),
                             clock=ScaledClock(1.6, seed=1), environment=ENV)
    assert not enforced.passed and enforced.exit_code == 1
    assert "  abs: +" in enforced.message() and "REGRESSION" in enforced.message()
    off = gate.run_gate(_load(path), base, GateConfig(absolute="off"),
                        clock=ScaledClock(1.6, seed=1), environment=ENV)
    assert [c.name for c in off.checks] == ["ratio"]


def test_the_printed_interval_follows_the_configured_confidence(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    verdict = gate.run_gate(_load(path), base, GateConfig(confidence=0.9), clock=CostClock(),
                            environment=ENV)
    assert verdict.estimate.confidence == 0.9
    assert "90% CI" in verdict.message() and "95%" not in verdict.message()
    assert "90% CI" in verdict.summary()


class VirtualCostClock(CostClock):
    """Each call takes the time it reports on a virtual wall clock (a 4096x4096 model of
    seconds per call, without the wait)."""

    def __init__(self, scale_ms, **kwargs):
        super().__init__(noise=0.0, **kwargs)
        self.scale = scale_ms
        self.now_s = 0.0

    def time_ms(self, fn):
        ms = super().time_ms(fn) * self.scale
        self.now_s += ms / 1e3
        return ms


def test_max_seconds_bounds_the_whole_gate(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    clock = VirtualCostClock(1250.0)  # 2.5 s per call
    config = GateConfig(budget=Budget(max_seconds=5.0))
    with pytest.raises(UsageError, match="cannot hold 60 pairs of calls"):
        gate.run_gate(_load(path), base, config, clock=clock, environment=ENV,
                      deadline=Deadline(5.0, now=lambda: clock.now_s))
    assert clock.now_s <= 5.0


def test_a_gate_stopped_by_its_deadline_says_so(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    clock = VirtualCostClock(10.0)  # 20 ms per call, 40 ms per pair: 1 s holds 25 pairs
    config = GateConfig(budget=Budget(min_pairs=20, max_seconds=1.0, warmup=0))
    slow_path = _write(model_dir, "net_slow.py", 2.2)
    verdict = gate.run_gate(_load(slow_path), base, config, clock=clock, environment=ENV,
                            deadline=Deadline(1.0, now=lambda: clock.now_s))
    assert clock.now_s <= 1.0 + 0.05
    assert verdict.estimate.pairs < 40 and not verdict.passed  # +10 %, noise-free


# ----------------------------------------------------------------- user code and bad input

EXITING = """
import sys

from torch import nn


class Net(nn.Module):
    def __init__(self, width=8, depth=1):
        super().__init__()
        {init}
        self.head = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        {forward}
        return self.head(x)
"""


def _exiting(tmp_path, name, init="pass", forward="pass"):
    path = tmp_path / name
    path.write_text(EXITING.format(init=init, forward=forward))
    return path


def _one_line_error(capsys, *parts):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("esrprof: error:") and "Traceback" not in err
    for part in parts:
        assert part in err, err
    return captured


@pytest.mark.parametrize("code", [0, 7])
def test_a_candidate_forward_calling_sys_exit_fails_the_gate(saved, capsys, code):
    net, out = saved
    bad = _exiting(net.parent, f"net_exit_{code}.py", forward=f"sys.exit({code})")
    capsys.readouterr()
    assert _gate(bad, out, "--no-absolute") == 1
    captured = _one_line_error(capsys, f"candidate's forward called sys.exit({code})")
    assert "PASS" not in captured.out


@pytest.mark.parametrize("where", ["module", "init", "forward"])
def test_a_baseline_source_calling_sys_exit_fails_the_gate(tmp_path, capsys, where):
    net = tmp_path / f"net_src_{where}.py"
    net.write_text(NET_FILE.format(depth=1))
    out = tmp_path / "base.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape",
                 "1,3,16,16", "--samples", "10"]) == 0
    data = json.loads(out.read_text())
    source = data["base"]["source"]
    if where == "module":
        source = "import sys\nsys.exit(0)\n" + source
    elif where == "init":
        source = source.replace("super().__init__()", "super().__init__()\n        import sys; "
                                "sys.exit(0)")
    else:
        source = source.replace("return self.body", "import sys; sys.exit(0)\n        return "
                                "self.body")
    data["base"]["source"] = source
    data["base"]["sha256"] = hashlib.sha256(source.encode()).hexdigest()  # anyone can do this
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert _gate(net, out, "--no-absolute") == 1
    captured = capsys.readouterr()
    notice, error = captured.err.strip().splitlines()  # the source differs from the file
    assert "the baseline is code" in notice and f"differs from {net}" in notice
    assert error.startswith("esrprof: error:") and "sys.exit(0)" in error
    assert "PASS" not in captured.out


@pytest.mark.parametrize(("init", "forward"), [("sys.exit(0)", "pass"), ("pass", "sys.exit(0)"),
                                               ("pass", "sys.exit(7)")])
def test_baseline_save_of_a_model_calling_sys_exit_is_a_model_error(tmp_path, capsys, init,
                                                                    forward):
    net = _exiting(tmp_path, "net_save_exit.py", init=init, forward=forward)
    out = tmp_path / "b.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape",
                 "1,3,8,8", "--samples", "8"]) == 1
    _one_line_error(capsys, "sys.exit(")
    assert not out.exists()


def test_a_forward_that_raises_in_gate_sampling_is_one_line(saved, capsys):
    net, out = saved
    bad = _exiting(net.parent, "net_raises.py", forward="raise ValueError('shape\\nmismatch')")
    capsys.readouterr()
    assert _gate(bad, out) == 1
    _one_line_error(capsys, "candidate's forward failed: ValueError: shape")


def test_a_reference_spec_that_is_not_a_module_class_never_runs(tmp_path, capsys):
    net = tmp_path / "ref_net.py"
    net.write_text(NET_FILE.format(depth=1))
    ref = tmp_path / "calib.py"
    ref.write_text(NET_FILE.format(depth=2))
    out = tmp_path / "base.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape", "1,3,16,16",
                 "--samples", "8", "--reference", f"{ref}:Net"]) == 0
    marker = tmp_path / "pwned"
    data = json.loads(out.read_text())
    data["reference"]["spec"] = "os:system"
    data["reference"]["kwargs"] = {"command": f"touch {marker}"}
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert _gate(net, out, "--against-reference") == 2
    _one_line_error(capsys, "reference spec os:system", "--trust-spec")
    assert _gate(net, out, "--against-reference", "--trust-spec") == 2
    _one_line_error(capsys, "os:system is not a torch.nn.Module class")
    assert not marker.exists()


def _deep(n):
    return "[" * n + "]" * n


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["latency"].update(samples_ms=[1.0] * 9 + [1e999]), "samples_ms[9] = inf"),
        (lambda d: d["base"].update(source=12345), "base.source must be a string, not int"),
        (lambda d: d["base"].update(file=["x"]), "base.file must be a string, not list"),
        (lambda d: d["model"].update(kwargs="width=8"), "model.kwargs must be an object"),
        (lambda d: d.update(input_shape=[1, 3, True, 16]), "input_shape must be a list of"),
        (lambda d: d.update(reference={"spec": 5, "ratios": [1.0]}), "reference.spec must be"),
    ],
)
def test_cli_gate_wrong_typed_or_non_finite_baseline_fields_exit_2(saved, capsys, edit, message):
    net, out = saved
    data = json.loads(out.read_text())
    edit(data)
    out.write_text(json.dumps(data).replace("Infinity", "1e999"))
    capsys.readouterr()
    assert _gate(net, out) == 2
    _one_line_error(capsys, message)


def test_cli_gate_deeply_nested_baseline_exit_2(saved, capsys):
    net, out = saved
    text = out.read_text()
    out.write_text(text.replace('"environment": {', f'"deep": {_deep(5000)}, "environment": {{'))
    capsys.readouterr()
    assert _gate(net, out) == 2
    _one_line_error(capsys, "nested too deeply")
    assert main(["baseline", "show", str(out)]) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_cli_gate_refuses_max_seconds_that_bound_nothing(saved, capsys, value):
    net, out = saved
    with pytest.raises(SystemExit) as exit_info:
        _gate(net, out, "--max-seconds", value)
    assert exit_info.value.code == 2
    assert "--max-seconds" in capsys.readouterr().err


def test_cli_gate_refuses_a_model_too_slow_for_max_seconds(tmp_path, capsys):
    net = tmp_path / "sleepy.py"
    net.write_text(NET_FILE.format(depth=1))
    out = tmp_path / "base.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(out), "--input-shape",
                 "1,3,16,16", "--samples", "8"]) == 0
    slow = tmp_path / "sleepy_slow.py"
    slow.write_text(NET_FILE.format(depth=1).replace(
        "return self.body", "import time; time.sleep(0.05)\n        return self.body"))
    capsys.readouterr()
    assert main(["gate", f"{slow}:Net", "--baseline", str(out), "--max-seconds", "0.3"]) == 2
    _one_line_error(capsys, "cannot hold 60 pairs of calls")


def test_huge_input_shapes_are_one_line(tmp_path, saved, capsys):
    net, out = saved
    target = tmp_path / "huge.json"
    assert main(["baseline", "save", f"{net}:Net", "-o", str(target), "--input-shape",
                 "1,3,100000,100000", "--samples", "8"]) == 2
    _one_line_error(capsys, "1x3x100000x100000", "GiB")
    assert not target.exists()
    _edit(out, lambda d: d.update(input_shape=[1, 3, 100000, 100000]))
    assert _gate(net, out) == 2
    _one_line_error(capsys, "1x3x100000x100000")


def test_cli_gate_refuses_an_unusable_device(saved, capsys):
    net, out = saved
    assert _gate(net, out, "--device", "nonsense") == 2
    _one_line_error(capsys, "unknown device 'nonsense'")


def test_cli_gate_verdict_json_honours_the_umask_and_refuses_a_folder(saved, capsys, tmp_path):
    import os

    net, out = saved
    verdict = tmp_path / "verdict.json"
    old = os.umask(0o027)
    try:
        assert _gate(net, out, "--max-slowdown", "60%", "--json", str(verdict)) == 0
    finally:
        os.umask(old)
    assert verdict.stat().st_mode & 0o777 == 0o640
    assert json.loads(verdict.read_text())["passed"] is True
    folder = tmp_path / "a_folder"
    folder.mkdir()
    capsys.readouterr()
    assert _gate(net, out, "--max-slowdown", "60%", "--json", str(folder)) == 2
    _one_line_error(capsys, "it is a folder")
    assert folder.is_dir()


# ----------------------------------------------------------------- baseline show and save


def test_baseline_show_says_a_baseline_is_code(saved, capsys):
    _, out = saved
    capsys.readouterr()
    assert main(["baseline", "show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "a baseline is code" in text and "review" in text
    assert "thread" in text and "threads)" not in text.split("hardware:")[1].splitlines()[0]


def test_baseline_show_source_prints_the_source_and_its_diff(saved, capsys):
    net, out = saved
    capsys.readouterr()
    assert main(["baseline", "show", str(out), "--source"]) == 0
    text = capsys.readouterr().out
    assert "class Net(nn.Module):" in text and "is the same as the stored source" in text
    net.write_text(NET_FILE.format(depth=3))
    assert main(["baseline", "show", str(out), "--source"]) == 0
    text = capsys.readouterr().out
    assert "--- diff: stored source" in text
    assert "-    def __init__(self, width=8, depth=1):" in text
    assert "+    def __init__(self, width=8, depth=3):" in text
    net.unlink()
    assert main(["baseline", "show", str(out), "--source"]) == 0
    assert "does not exist here: no diff" in capsys.readouterr().out


def test_baseline_save_refuses_a_folder_before_timing(saved, capsys, tmp_path):
    net, _ = saved
    folder = tmp_path / "out_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["baseline", "save", f"{net}:Net", "-o", str(folder), "--force",
                 "--input-shape", "1,3,16,16", "--samples", "8"]) == 2
    _one_line_error(capsys, "it is a folder")
    assert (folder / "keep.txt").read_text() == "mine"


def test_every_door_decides_with_the_same_defaults():
    from esrprof.cli import build_parser
    from esrprof.cli.gate import _config
    from esrprof.pytest_plugin import PluginOptions, gate_config

    args = build_parser().parse_args(["gate", "net.py:Net", "--baseline", "b.json"])
    assert _config(args) == GateConfig()
    assert gate_config({}, PluginOptions()) == GateConfig()
    assert GateConfig().absolute == "info"  # the stored figure never fails a default gate
    enforced = gate_config({"abs_max_slowdown": 0.1}, PluginOptions())
    assert enforced.absolute == "check" and enforced.abs_max_slowdown == 0.1
    args = build_parser().parse_args(["gate", "n.py:Net", "--baseline", "b.json",
                                      "--abs-max-slowdown", "10%"])
    assert _config(args).absolute == "check"


def test_show_source_cannot_hide_a_line_from_the_reviewer(saved, capsys):
    _, out = saved
    data = json.loads(out.read_text())
    hidden = "\x1b[8mimport os; os.system('x')\x1b[0m\r# harmless\n\u202e"
    source = data["base"]["source"] + hidden
    data["base"].update(source=source, sha256=hashlib.sha256(source.encode()).hexdigest())
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["baseline", "show", str(out), "--source"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "\\x1b[8mimport os; os.system('x')\\x1b[0m\\r# harmless" in text
    assert "\\u202e" in text


def test_baseline_save_refuses_a_path_under_a_file_before_timing(saved, capsys, tmp_path):
    net, _ = saved
    blocker = tmp_path / "blocker"
    blocker.write_text("mine")
    assert main(["baseline", "save", f"{net}:Net", "-o", str(blocker / "b.json"),
                 "--input-shape", "1,3,16,16", "--samples", "8"]) == 2
    _one_line_error(capsys, "a parent of it is a file")
    assert blocker.read_text() == "mine"


def test_the_library_refuses_what_is_not_a_module(saved):
    from esrprof.latency.baseline import load_baseline

    _, out = saved
    with pytest.raises(UsageError, match=r"must be a torch\.nn\.Module, not function"):
        gate.run_gate(lambda x: x, load_baseline(out))
    with pytest.raises(UsageError, match=r"must be a torch\.nn\.Module, not str"):
        make_baseline("Net", (1, 3, 8, 8))


class Burst(CostClock):
    """The cost clock, with the candidate 20 % slower for its first ``calls`` clock calls: a
    burst of load that hit one model during the first batch only."""

    def __init__(self, model, calls, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.calls = calls
        self.n = 0

    def time_ms(self, fn):
        self.n += 1
        if self.n > self.calls:
            self.model.COST = 2.0
        return super().time_ms(fn)


def test_a_regression_must_show_again_in_a_fresh_batch(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    first_batch_calls = 2 * (5 + 60)  # warm-up and minimum pairs
    model = _load(path)
    model.COST = 2.4
    verdict = gate.run_gate(model, base, clock=Burst(model, first_batch_calls), environment=ENV)
    assert verdict.first is not None and verdict.first.slowdown == pytest.approx(0.2, abs=0.02)
    assert verdict.passed and abs(verdict.estimate.slowdown) < 0.03
    assert any("not confirmed by a second, fresh batch" in n for n in verdict.notes)
    assert verdict.to_dict()["first_batch"]["pairs"] == 60
    model.COST = 2.4
    unconfirmed = gate.run_gate(model, base, GateConfig(confirm=False),
                                clock=Burst(model, first_batch_calls), environment=ENV)
    assert not unconfirmed.passed and unconfirmed.first is None


def test_a_real_slowdown_is_confirmed(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    slow = _write(model_dir, "net_slower.py", 2.4)
    verdict = gate.run_gate(_load(slow), base, clock=CostClock(), environment=ENV)
    assert not verdict.passed and verdict.first is not None
    assert verdict.estimate.slowdown == pytest.approx(0.2, abs=0.03)
    assert any("confirmed by a second, fresh batch" in n and "not confirmed" not in n
               for n in verdict.notes)


def test_no_time_left_to_confirm_decides_on_the_first_batch(model_dir):
    path = _write(model_dir, "net.py", 2.0)
    base = make_baseline(_load(path), (1, 3, 8, 8), clock=CostClock(), environment=ENV)
    slow = _write(model_dir, "net_slower.py", 2.4)
    clock = VirtualCostClock(10.0)  # 48 ms per pair: 65 pairs fit in 4 s, 130 do not
    verdict = gate.run_gate(_load(slow), base, GateConfig(budget=Budget(max_seconds=4.0)),
                            clock=clock, environment=ENV,
                            deadline=Deadline(4.0, now=lambda: clock.now_s))
    assert not verdict.passed and verdict.first is None
    assert any("did not fit in the time budget" in n for n in verdict.notes)
    assert clock.now_s <= 4.0
