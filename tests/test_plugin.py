"""The pytest plugin, run through pytester in subprocesses (as a user's test suite would)."""

from __future__ import annotations

import hashlib
import json

import pytest

pytest_plugins = ["pytester"]

# The model lives in its own file, so the test can change it after the baseline was saved.
NET = """
from torch import nn

import fake_costs


class Net(nn.Module):
    COST = {cost}

    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        fake_costs.CALLS.append(self.COST)
        return self.conv(x)
"""

# A deterministic clock: what the called model's COST says, with seeded noise.
# ESRPROF_TEST_SCALE makes the whole machine that much slower (a busy day).
CONFTEST = """
import os
import random

import pytest

import fake_costs


class CostClock:
    name = "fake"

    def __init__(self):
        self.rng = random.Random(0)
        self.scale = float(os.environ.get("ESRPROF_TEST_SCALE", "1"))

    def time_ms(self, fn):
        fn()
        return fake_costs.CALLS[-1] * self.scale * (1 + self.rng.uniform(-0.03, 0.03))


@pytest.fixture
def esrprof_clock():
    return CostClock()
"""

TESTS = """
import pytest

from mynet import Net


def test_latency(esrprof_latency):
    esrprof_latency(Net(), (1, 3, 8, 8), max_slowdown=0.05, baseline="baselines/net.json")


@pytest.mark.esrprof(baseline="baselines/net.json", input_shape=(1, 3, 8, 8))
def test_marker_defaults(esrprof_latency):
    esrprof_latency(Net())


def test_unrelated():
    assert True
"""


@pytest.fixture
def project(pytester):
    pytester.makepyfile(fake_costs="CALLS = []\n", mynet=NET.format(cost=2.0))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_model=TESTS)
    return pytester


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_missing_baseline_fails_the_test_with_a_hint(project):
    result = _run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*no baseline at*--esrprof-save-baselines*"])


def test_save_then_pass_then_regression_fails_only_that_test(project):
    saved = _run(project, "--esrprof-save-baselines")
    saved.assert_outcomes(passed=3)
    saved.stdout.fnmatch_lines(["*baseline written*net.json*"])
    baseline = json.loads((project.path / "baselines" / "net.json").read_text())
    assert baseline["kind"] == "esrprof-baseline" and "COST = 2.0" in baseline["base"]["source"]

    again = _run(project)
    again.assert_outcomes(passed=3)
    again.stdout.fnmatch_lines(["*esrprof latency gate*", "pass*test_latency*"])

    project.makepyfile(mynet=NET.format(cost=2.5))  # the model gets 25 % slower
    slow = _run(project)
    slow.assert_outcomes(passed=1, failed=2)
    slow.stdout.fnmatch_lines(
        [
            "*esrprof latency regression in test_model.py::test_latency*",
            "*REGRESSION*slow-down +25.*95% CI*",
        ]
    )
    assert "Traceback" not in slow.stdout.str()
    assert slow.ret == pytest.ExitCode.TESTS_FAILED

    # a CLI limit overrides the test's own, and is parsed into a typed check
    loose = _run(project, "--esrprof-check", "ratio:40%", "--esrprof-check", "abs:50%")
    loose.assert_outcomes(passed=3)


def test_saving_never_overwrites_without_force(project):
    _run(project, "--esrprof-save-baselines").assert_outcomes(passed=3)
    path = project.path / "baselines" / "net.json"
    before = path.read_text()
    project.makepyfile(mynet=NET.format(cost=9.0))
    _run(project, "--esrprof-save-baselines").assert_outcomes(passed=1, failed=2)
    assert path.read_text() == before
    _run(project, "--esrprof-save-baselines", "--esrprof-force").assert_outcomes(passed=3)
    assert "COST = 9.0" in path.read_text()


def test_bad_marker_arguments_fail_that_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.esrprof(max_slowdow=0.05)
        def test_typo(esrprof_latency):
            pass

        @pytest.mark.esrprof(max_slowdown="5")
        def test_ambiguous():
            pass

        @pytest.mark.esrprof(input_shape="1,3,8,8")
        def test_shape_as_text():
            pass

        def test_fine():
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*unknown argument max_slowdow*",
            "*max_slowdown '5' is ambiguous*",
            "*input shape must be a sequence of integers, got '1,3,8,8'*",
        ]
    )


def test_bad_options_are_usage_errors(pytester):
    pytester.makepyfile("def test_a():\n    pass\n")
    bad = _run(pytester, "--esrprof-check", "median:5%")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*esrprof: check 'median:5%' is not one of the forms*"])
    twice = _run(pytester, "--esrprof-check", "ratio:5%", "--esrprof-check", "ratio:9%")
    assert twice.ret == pytest.ExitCode.USAGE_ERROR
    twice.stderr.fnmatch_lines(["*--esrprof-check given twice for ratio*"])


def test_fixture_rejects_unknown_arguments(project):
    project.makepyfile(
        test_model="""
        from mynet import Net

        def test_x(esrprof_latency):
            esrprof_latency(Net(), (1, 3, 8, 8), baseline="b.json", slowdown=0.1)
        """
    )
    result = _run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown argument slowdown*"])


def test_benchmark_integration_compare_fail_uses_our_clock(project):
    project.makepyfile(
        test_model="""
        from mynet import Net

        def test_forward(esrprof_benchmark):
            stats = esrprof_benchmark(Net(), (1, 3, 8, 8), rounds=20, warmup_rounds=2)
            assert stats is not None
        """
    )
    first = _run(project, "--benchmark-save=base", "--benchmark-storage", "bench")
    first.assert_outcomes(passed=1)
    saved = next((project.path / "bench").rglob("*base.json"))
    data = json.loads(saved.read_text())
    median_ms = data["benchmarks"][0]["stats"]["median"] * 1e3
    assert median_ms == pytest.approx(2.0, rel=0.05)  # the fake clock's figure, not wall time
    assert data["benchmarks"][0]["extra_info"]["esrprof"]["clock"] == "fake"

    project.makepyfile(mynet=NET.format(cost=3.0))
    compared = _run(
        project,
        "--benchmark-storage",
        "bench",
        "--benchmark-compare=0001",
        "--benchmark-compare-fail=median:10%",
    )
    assert compared.ret != 0
    compared.stderr.fnmatch_lines(["*Field 'median' has failed PercentageRegressionCheck: 50.0*"])


def test_a_busy_machine_does_not_fail_the_default_decision(project, monkeypatch):
    # README's example, after --esrprof-save-baselines, on a machine 60 % slower than the day
    # the baseline was saved: the interleaved ratio is ~1, the absolute figure is information
    _run(project, "--esrprof-save-baselines").assert_outcomes(passed=3)
    monkeypatch.setenv("ESRPROF_TEST_SCALE", "1.6")
    busy = _run(project)
    busy.assert_outcomes(passed=3)
    busy.stdout.fnmatch_lines(["pass*test_latency*95% CI*"])
    enforced = _run(project, "--esrprof-check", "abs:25%")
    enforced.assert_outcomes(passed=1, failed=2)
    enforced.stdout.fnmatch_lines(["*abs: +*limit +25.0% -> REGRESSION*"])


EXITS = """
import sys

from torch import nn

import fake_costs


class Net(nn.Module):
    COST = 2.0

    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        fake_costs.CALLS.append(self.COST)
        if {exit}:
            sys.exit({code})
        return self.conv(x)
"""


@pytest.mark.parametrize("code", [0])  # exit 0: the one that read as success
def test_a_model_calling_sys_exit_fails_its_test_with_one_line(project, code):
    _run(project, "--esrprof-save-baselines").assert_outcomes(passed=3)
    project.makepyfile(mynet=EXITS.format(exit="len(fake_costs.CALLS) > 3", code=code))
    result = _run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([f"*esrprof: test_model.py::test_latency: the candidate's "
                                 f"forward called sys.exit({code})*"])
    assert "Traceback" not in result.stdout.str() and result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_stored_source_calling_sys_exit_fails_its_test(project):
    _run(project, "--esrprof-save-baselines").assert_outcomes(passed=3)
    path = project.path / "baselines" / "net.json"
    data = json.loads(path.read_text())
    source = "import sys\nsys.exit(0)\n" + data["base"]["source"]
    data["base"].update(source=source, sha256=hashlib.sha256(source.encode()).hexdigest())
    path.write_text(json.dumps(data))
    result = _run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*importing the baseline's copy of*called sys.exit(0)*"])


@pytest.mark.parametrize("value", ["nan"])  # inf and negatives: test_latency_sampling
def test_max_seconds_that_bound_nothing_are_usage_errors(pytester, value):
    pytester.makepyfile("def test_a():\n    pass\n")
    bad = _run(pytester, "--esrprof-max-seconds", value)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--esrprof-max-seconds*finite number of seconds*"])
