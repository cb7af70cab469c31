"""A process that dies is not a pass: every door that runs user code for a verdict runs it in a
child process and fails, with the cause, when no verdict comes back (esrprof.latency.isolation).

The doors are driven from a separate process (a driver script, pytester's subprocess): were the
isolation missing, ``os._exit(0)`` in a model would end *that* process, not this test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from esrprof.errors import ModelError, ResultFileError
from esrprof.latency.isolation import ChildFailed, run_isolated

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------- the mechanism


def _exit_zero():
    os._exit(0)


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def _hang():
    while True:
        time.sleep(0.01)


def _raise_esrprof():
    raise ResultFileError("a bad file")


def _value(x):
    return {"twice": 2 * x}


def _print_and_return():
    print("from the child")
    return 1


@pytest.mark.parametrize(
    ("work", "cause"),
    [(_exit_zero, "exited with code 0 before answering"),
     (_kill_self, "killed by SIGKILL")],
)
def test_a_child_that_dies_gives_no_verdict(work, cause):
    with pytest.raises(ChildFailed, match=cause) as info:
        run_isolated(work, what="the work", bound_s=30)
    assert str(info.value).startswith("the work ended without a verdict")
    assert isinstance(info.value, ModelError) and info.value.exit_code == 1


def test_a_child_that_hangs_is_killed_at_its_bound():
    start = time.monotonic()
    with pytest.raises(ChildFailed, match=r"gave no verdict within 1 s.*killed it"):
        run_isolated(_hang, what="the work", bound_s=1.0)
    assert time.monotonic() - start < 5


def test_a_child_answers_with_its_value_or_its_error():
    assert run_isolated(_value, (21,), what="the work", bound_s=30) == {"twice": 42}
    with pytest.raises(ResultFileError, match="a bad file"):
        run_isolated(_raise_esrprof, what="the work", bound_s=30)


def test_a_fresh_interpreter_child_works_the_same():
    # the path taken off Linux, after CUDA was initialised, or with more than one thread (how
    # a child ends is told the same way whichever way it started)
    assert run_isolated(_value, (2,), what="the work", bound_s=120, method="spawn") == {
        "twice": 4}


def test_a_forked_child_prints_once(capfd):
    print("before", flush=False)
    assert run_isolated(_print_and_return, what="the work", bound_s=30, method="fork") == 1
    out = capfd.readouterr().out
    assert out.count("before") == 1 and out.count("from the child") == 1


# ------------------------------------------------------------------------ the gate CLI

NET = """
import os
import signal
import sys
import time

from torch import nn

{at_import}


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        {at_init}
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        {at_forward}
        return self.conv(x)
"""

DEATHS = {
    "exit0": "os._exit(0)",
    "sigkill": "os.kill(os.getpid(), signal.SIGKILL)",
    "hang": "while True: pass",
    "sysexit": "sys.exit(0)",
}

# One process runs every case through esrprof.cli.main: each case prints one JSON line. A
# case that kills the driver leaves the cases after it without a line.
DRIVER = """
import contextlib
import io
import json
import sys

from esrprof.cli import main

for case, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    print(json.dumps({"case": case, "code": code, "err": err.getvalue()}), flush=True)
"""


def _net(folder, name, at_import="", at_init="pass", at_forward="pass"):
    path = folder / name
    path.write_text(NET.format(at_import=at_import, at_init=at_init, at_forward=at_forward))
    return path


def _drive(folder, cases, timeout=240):
    driver = folder / "driver.py"
    driver.write_text(DRIVER)
    done = subprocess.run([sys.executable, str(driver), json.dumps(cases)], cwd=folder,
                          capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    results = {r["case"]: r for r in lines}
    missing = [case for case, _ in cases if case not in results]
    assert not missing, f"the driver died (rc {done.returncode}) before {missing}: {done.stderr}"
    return results


def _gate_argv(net, baseline, *extra):
    return ["gate", f"{net}:Net", "--baseline", str(baseline), "--min-pairs", "20",
            "--max-pairs", "40", "--no-absolute", *extra]


def test_the_gate_cli_fails_a_model_that_dies_or_hangs(tmp_path):
    good = _net(tmp_path, "good.py")
    baseline = tmp_path / "base.json"
    save = ["baseline", "save", f"{good}:Net", "-o", str(baseline), "--input-shape", "1,3,8,8",
            "--samples", "8"]
    cases = [["save", save], ["pass", _gate_argv(good, baseline)]]
    for death, code in DEATHS.items():
        cases.append([f"forward-{death}", _gate_argv(
            _net(tmp_path, f"f_{death}.py", at_forward=code), baseline, "--max-seconds", "3")])
    cases.append(["init-exit0", _gate_argv(_net(tmp_path, "i.py", at_init="os._exit(0)"),
                                           baseline)])
    cases.append(["import-exit0", _gate_argv(_net(tmp_path, "m.py", at_import="os._exit(0)"),
                                             baseline)])
    cases.append(["save-exit0", ["baseline", "save", f"{tmp_path / 'f_exit0.py'}:Net", "-o",
                                 str(tmp_path / "never.json"), "--samples", "8",
                                 "--input-shape", "1,3,8,8"]])
    results = _drive(tmp_path, cases)
    assert results["save"]["code"] == 0 and results["pass"]["code"] == 0
    expected = {
        "forward-exit0": "exited with code 0 before answering",
        "forward-sigkill": "killed by SIGKILL",
        "forward-hang": "gave no verdict within",
        "forward-sysexit": "candidate's forward called sys.exit(0)",
        "init-exit0": "exited with code 0",
        "import-exit0": "exited with code 0",
        "save-exit0": "exited with code 0",
    }
    for case, words in expected.items():
        result = results[case]
        err = result["err"].strip()
        assert result["code"] == 1, (case, err)
        assert len(err.splitlines()) == 1 and err.startswith("esrprof: error:"), (case, err)
        assert words in err, (case, err)
    assert not (tmp_path / "never.json").exists()


def test_a_baseline_source_that_dies_fails_the_gate(tmp_path):
    good = _net(tmp_path, "good.py")
    baseline = tmp_path / "base.json"
    cases = [["save", ["baseline", "save", f"{good}:Net", "-o", str(baseline), "--input-shape",
                       "1,3,8,8", "--samples", "8"]]]
    assert _drive(tmp_path, cases)["save"]["code"] == 0
    data = json.loads(baseline.read_text())
    tampered = []
    for where, old, new in [
        ("import", "from torch import nn", "from torch import nn\nos._exit(0)"),
        ("init", "super().__init__()", "super().__init__()\n        os._exit(0)"),
        ("forward", "return self.conv(x)", "os.kill(os.getpid(), signal.SIGKILL)"),
    ]:
        source = data["base"]["source"].replace(old, new)
        import hashlib

        copy = json.loads(json.dumps(data))
        copy["base"].update(source=source, sha256=hashlib.sha256(source.encode()).hexdigest())
        path = tmp_path / f"base_{where}.json"
        path.write_text(json.dumps(copy))
        tampered.append([where, _gate_argv(good, path)])
    results = _drive(tmp_path, tampered)
    for where, _ in tampered:
        err = results[where]["err"].strip().splitlines()
        assert results[where]["code"] == 1, err
        # the notice that the executed source is not the file, then the one-line cause
        assert "the baseline is code" in err[0] and "differs from" in err[0]
        assert err[-1].startswith("esrprof: error:") and "without a verdict" in err[-1]


# ----------------------------------------------------------------------- the pytest door

PYTEST_TESTS = """
import os
import signal

from mynet import Net


def test_forward_exit(esrprof_latency):
    esrprof_latency(Net(death="exit"), (1, 3, 8, 8), baseline="base.json")


def test_forward_sigkill(esrprof_latency):
    esrprof_latency(Net(death="kill"), (1, 3, 8, 8), baseline="base.json")


def test_forward_hang(esrprof_latency):
    esrprof_latency(Net(death="hang"), (1, 3, 8, 8), baseline="base.json")


def test_base_source_exits_at_import(esrprof_latency):
    esrprof_latency(Net(), (1, 3, 8, 8), baseline="base_import.json")


def test_base_source_exits_in_init(esrprof_latency):
    esrprof_latency(Net(), (1, 3, 8, 8), baseline="base_init.json")


def test_later_failure_still_runs():
    assert 1 == 2, "a later test ran"


def test_healthy(esrprof_latency):
    esrprof_latency(Net(), (1, 3, 8, 8), max_slowdown="60%", baseline="base.json")
"""

PYTEST_NET = """
import os
import signal

from torch import nn


class Net(nn.Module):
    def __init__(self, width=4, death=None):
        super().__init__()
        self.death = death
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        if self.death == "exit":
            os._exit(0)
        if self.death == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.death == "hang":
            while True:
                pass
        return self.conv(x)
"""


def test_the_pytest_fixture_fails_the_test_that_dies_and_goes_on(pytester, monkeypatch):
    import hashlib

    from esrprof.latency.baseline import make_baseline, save_baseline
    from esrprof.loading import build

    pytester.makepyfile(mynet=PYTEST_NET)
    pytester.makepyfile(test_deaths=PYTEST_TESTS)
    monkeypatch.syspath_prepend(str(pytester.path))
    model = build(f"{pytester.path / 'mynet.py'}:Net")
    baseline = make_baseline(model, (1, 3, 8, 8), samples=8)
    save_baseline(baseline, pytester.path / "base.json")
    data = baseline.to_dict()
    for where, old, new in [
        ("import", "from torch import nn", "from torch import nn\nos._exit(0)"),
        ("init", "super().__init__()", "super().__init__()\n        os._exit(0)"),
    ]:
        source = data["base"]["source"].replace(old, new)
        copy = json.loads(json.dumps(data))
        copy["base"].update(source=source, sha256=hashlib.sha256(source.encode()).hexdigest())
        (pytester.path / f"base_{where}.json").write_text(json.dumps(copy))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--esrprof-max-seconds",
                                           "3")
    result.assert_outcomes(passed=1, failed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    for test, cause in [
        ("test_forward_exit", "exited with code 0 before answering"),
        ("test_forward_sigkill", "killed by SIGKILL"),
        ("test_forward_hang", "gave no verdict within"),
        ("test_base_source_exits_at_import", "exited with code 0"),
        ("test_base_source_exits_in_init", "exited with code 0"),
    ]:
        assert any(f"test_deaths.py::{test}" in line and cause in line
                   for line in text.splitlines()), (test, text)
    assert "a later test ran" in text
