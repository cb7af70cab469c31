"""pytest plugin (entry point ``pytest11``): latency fixtures over the same library calls.

    def test_latency(esrprof_latency):
        esrprof_latency(MyNet(), (1, 3, 64, 64), max_slowdown=0.05,
                        baseline="baselines/mynet.json")

A regression fails *that test*, with its figures (never the session at its end, as
pytest-benchmark's ``--benchmark-compare-fail`` does). The gate (and a baseline's writing) runs
in a child process (:mod:`esrprof.latency.isolation`): a model that calls ``os._exit``, is
killed by a signal or hangs past ``--esrprof-max-seconds`` fails that test with the cause, and
the session goes on. ``esrprof_benchmark`` feeds our clock
(CUDA events on a GPU) into pytest-benchmark's ``benchmark`` fixture, so its saving, comparing
and ``--benchmark-compare-fail`` work on our numbers.

Every import beyond pytest is deferred: this module loads in every pytest run of every project
that has esrprof installed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

MARKER = "esrprof"
# Arguments the fixture call and the marker accept; the marker supplies defaults.
_ARGUMENTS = ("baseline", "input_shape", "max_slowdown", "abs_max_slowdown", "kwargs", "name",
              "expect_sha256")


@dataclasses.dataclass(frozen=True)
class PluginOptions:
    """Command-line options, parsed once into typed values (bad text stops the run early)."""

    checks: tuple[Any, ...] = ()  # esrprof.latency.gate.CheckSpec, at most one per kind
    save: bool = False
    force: bool = False
    allow_other_hardware: bool = False
    max_seconds: float | None = None  # None: the gate's own default, as every door
    max_pairs: int | None = None
    threads: int = 1

    def limit(self, kind: str) -> float | None:
        return next((c.limit for c in self.checks if c.kind == kind), None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("esrprof", "esrprof latency gate")
    group.addoption(
        "--esrprof-check",
        action="append",
        default=[],
        metavar="KIND:LIMIT",
        help="override a gate limit for every esrprof_latency test: ratio:5%% (interleaved "
        "ratio to the base version) or abs:15%% (enforce the absolute comparison with the "
        "stored figure, same hardware; information only otherwise); one per kind",
    )
    group.addoption(
        "--esrprof-save-baselines",
        action="store_true",
        help="write missing baseline files instead of failing (with --esrprof-force: rewrite)",
    )
    group.addoption("--esrprof-force", action="store_true", help="overwrite existing baselines")
    group.addoption(
        "--esrprof-allow-other-hardware",
        action="store_true",
        help="accept baselines from other hardware (relative check only)",
    )
    group.addoption(
        "--esrprof-max-seconds",
        default=None,
        metavar="S",
        help="bound on one gate, base rebuild and warm-up included (default 60, as the CLI)",
    )
    group.addoption(
        "--esrprof-max-pairs", default=None, metavar="N", help="most pairs per gate (600)"
    )


def _parse_options(config: pytest.Config) -> PluginOptions:
    from esrprof.errors import UsageError
    from esrprof.latency.gate import CheckSpec
    from esrprof.latency.sampling import Budget, positive_seconds

    try:
        checks = [CheckSpec.parse(text) for text in config.getoption("esrprof_check") or []]
        kinds = [c.kind for c in checks]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            # pytest-benchmark silently keeps the last of repeated flags; say so instead.
            raise UsageError(f"--esrprof-check given twice for {', '.join(twice)}")
        seconds = config.getoption("esrprof_max_seconds")
        max_seconds = None if seconds is None else positive_seconds(
            seconds, what="--esrprof-max-seconds")
        pairs = config.getoption("esrprof_max_pairs")
        max_pairs = None if pairs is None else int(pairs)
        if max_pairs is not None and max_pairs < Budget().min_pairs:
            raise UsageError(f"--esrprof-max-pairs must be at least {Budget().min_pairs}")
    except ValueError as exc:
        raise pytest.UsageError(f"esrprof: {exc}") from None
    except UsageError as exc:
        raise pytest.UsageError(f"esrprof: {exc}") from None
    return PluginOptions(
        checks=tuple(checks),
        save=bool(config.getoption("esrprof_save_baselines")),
        force=bool(config.getoption("esrprof_force")),
        allow_other_hardware=bool(config.getoption("esrprof_allow_other_hardware")),
        max_seconds=max_seconds,
        max_pairs=max_pairs,
    )


_OPTIONS_KEY = pytest.StashKey[PluginOptions]()
_REPORT_KEY = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(baseline=..., input_shape=..., max_slowdown=..., abs_max_slowdown=..., "
        "kwargs=..., name=...): defaults for the esrprof_latency fixture",
    )
    # Parse only when asked for: a project that never uses esrprof pays nothing.
    given = ("esrprof_check", "esrprof_save_baselines", "esrprof_max_seconds",
             "esrprof_max_pairs")
    if any(config.getoption(name, None) for name in given):
        config.stash[_OPTIONS_KEY] = _parse_options(config)
    config.stash[_REPORT_KEY] = []


def _options(config: pytest.Config) -> PluginOptions:
    if _OPTIONS_KEY not in config.stash:
        config.stash[_OPTIONS_KEY] = _parse_options(config)
    return config.stash[_OPTIONS_KEY]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(MARKER):
        problem = _marker_problem(mark)
        if problem:
            pytest.fail(f"@pytest.mark.{MARKER} on {item.nodeid}: {problem}", pytrace=False)


def _marker_problem(mark: pytest.Mark) -> str | None:
    if mark.args:
        return f"takes keyword arguments only ({', '.join(_ARGUMENTS)}), got {mark.args!r}"
    unknown = sorted(set(mark.kwargs) - set(_ARGUMENTS))
    if unknown:
        return f"unknown argument {', '.join(unknown)} (known: {', '.join(_ARGUMENTS)})"
    try:
        _validate(mark.kwargs)
    except Exception as exc:  # any malformed value becomes the test's failure
        return str(exc)
    return None


def _validate(values: dict[str, Any]) -> dict[str, Any]:
    """Typed values of fixture/marker arguments; raises UsageError on a malformed one."""
    from esrprof.errors import UsageError
    from esrprof.latency.gate import parse_fraction
    from esrprof.probe import check_shape

    out = dict(values)
    for key in ("max_slowdown", "abs_max_slowdown"):
        if out.get(key) is not None:
            out[key] = parse_fraction(out[key], what=key)
    if out.get("input_shape") is not None:
        out["input_shape"] = check_shape(out["input_shape"])
    if out.get("baseline") is not None and not isinstance(out["baseline"], (str, Path)):
        raise UsageError(f"baseline {out['baseline']!r} must be a path")
    if out.get("kwargs") is not None and not isinstance(out["kwargs"], dict):
        raise UsageError(f"kwargs {out['kwargs']!r} must be a dict")
    if out.get("expect_sha256") is not None and not isinstance(out["expect_sha256"], str):
        raise UsageError(f"expect_sha256 {out['expect_sha256']!r} must be a string")
    return out


@pytest.fixture
def esrprof_clock() -> Any:
    """The clock the esrprof fixtures time with; ``None`` picks CUDA events or perf_counter.
    Override it in a conftest.py to inject a fake clock."""
    return None


@pytest.fixture
def esrprof_latency(request: pytest.FixtureRequest, esrprof_clock: Any) -> Callable[..., Any]:
    """``esrprof_latency(model, input_shape, max_slowdown=0.05, baseline="b.json")``: time the
    model beside the base version stored in the baseline and fail this test on a regression.
    Returns the :class:`esrprof.latency.gate.Verdict` (or ``None`` when it just wrote the
    baseline)."""
    config = request.config
    marker = request.node.get_closest_marker(MARKER)
    defaults = dict(marker.kwargs) if marker is not None else {}

    def check(model: Any, input_shape: Sequence[int] | None = None, **kwargs: Any) -> Any:
        unknown = sorted(set(kwargs) - set(_ARGUMENTS))
        if unknown:
            raise TypeError(
                f"esrprof_latency() got unknown argument {', '.join(unknown)} "
                f"(known: {', '.join(_ARGUMENTS)})"
            )
        given = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
        if input_shape is not None:
            given["input_shape"] = input_shape
        return _gate_in_test(request, config, model, given, esrprof_clock)

    return check


def _gate_in_test(
    request: pytest.FixtureRequest,
    config: pytest.Config,
    model: Any,
    given: dict[str, Any],
    clock: Any,
) -> Any:
    from esrprof.errors import EsrprofError, user_code_failed

    nodeid = request.node.nodeid
    try:
        verdict = _checked_gate(config, model, given, clock)
    except SystemExit as exc:  # from the model's code: never a pass, never the session's end
        pytest.fail(f"esrprof: {nodeid}: {user_code_failed('the model', exc)}", pytrace=False)
    except EsrprofError as exc:
        pytest.fail(f"esrprof: {nodeid}: {exc}", pytrace=False)
    if verdict is None:
        return None
    config.stash[_REPORT_KEY].append((nodeid, verdict))
    if not verdict.passed:
        pytest.fail(f"esrprof latency regression in {nodeid}\n{verdict.message()}", pytrace=False)
    return verdict


def _checked_gate(config: pytest.Config, model: Any, given: dict[str, Any], clock: Any) -> Any:
    """The verdict, or None after writing a baseline; EsrprofError for anything in the way."""
    from esrprof.errors import EsrprofError

    values = _validate(given)
    options = _options(config)
    if values.get("baseline") is None:
        raise EsrprofError("esrprof_latency needs baseline=PATH (argument or marker)")
    path = Path(values["baseline"])
    if not path.is_absolute():
        path = config.rootpath / path
    if options.save and (options.force or not path.exists()):
        _save(model, values, path, options, clock)
        config.stash[_REPORT_KEY].append((str(path), None))
        return None
    if not path.exists():
        raise EsrprofError(
            f"no baseline at {path}; run pytest --esrprof-save-baselines to write it"
        )
    return _run(model, values, path, options, clock)


def _save(model: Any, values: dict, path: Path, options: PluginOptions, clock: Any) -> None:
    import math

    from esrprof.errors import UsageError
    from esrprof.latency.baseline import refuse_existing, save_baseline
    from esrprof.latency.isolation import run_isolated

    shape = values.get("input_shape")
    if shape is None:
        raise UsageError("esrprof_latency needs an input_shape to write a baseline")
    refuse_existing(path, force=options.force)
    baseline = run_isolated(_save_in_child, (model, values, shape, options, clock),
                            what=f"timing the model for the baseline {path}",
                            bound_s=math.inf, threads=options.threads)
    save_baseline(baseline, path, force=options.force)


def _save_in_child(model: Any, values: dict, shape: Any, options: PluginOptions,
                   clock: Any) -> Any:
    from esrprof.latency.baseline import make_baseline

    return make_baseline(model, shape, kwargs=values.get("kwargs"), name=values.get("name"),
                         clock=clock, threads=options.threads)


def gate_config(values: dict[str, Any], options: PluginOptions) -> Any:
    """The fixture's GateConfig: the gate's defaults (every door decides alike), with the
    test's own limits, then the command line's, on top. An absolute limit, given either way,
    enforces the absolute check; without one it is information."""
    import dataclasses as dc

    from esrprof.latency.gate import DEFAULT_ABS_MAX_SLOWDOWN, DEFAULT_MAX_SLOWDOWN, GateConfig
    from esrprof.latency.sampling import Budget

    ratio = options.limit("ratio")
    if ratio is None:
        ratio = values.get("max_slowdown", DEFAULT_MAX_SLOWDOWN)
    absolute = options.limit("abs")
    if absolute is None:
        absolute = values.get("abs_max_slowdown")
    budget = Budget()
    if options.max_seconds is not None:
        budget = dc.replace(budget, max_seconds=options.max_seconds)
    if options.max_pairs is not None:
        budget = dc.replace(budget, max_pairs=options.max_pairs)
    return GateConfig(
        max_slowdown=ratio,
        absolute="info" if absolute is None else "check",
        abs_max_slowdown=DEFAULT_ABS_MAX_SLOWDOWN if absolute is None else absolute,
        allow_other_hardware=options.allow_other_hardware,
        budget=budget,
        threads=options.threads,
    )


def _run(model: Any, values: dict, path: Path, options: PluginOptions, clock: Any) -> Any:
    from esrprof.latency.baseline import check_expected_sha256, load_baseline, source_notice
    from esrprof.latency.isolation import grace_seconds, run_isolated
    from esrprof.latency.sampling import Deadline

    baseline = load_baseline(path)
    notice = None
    if values.get("expect_sha256") is not None:
        check_expected_sha256(baseline, values["expect_sha256"], str(path))
    else:
        notice = source_notice(baseline, str(path))
    config = gate_config(values, options)
    seconds = config.budget.max_seconds
    deadline = Deadline(seconds)
    verdict = run_isolated(_gate_in_child, (model, baseline, config, values, clock, deadline),
                           what=f"the gate timing the model against {path}",
                           bound_s=seconds + grace_seconds(seconds), threads=config.threads)
    if notice:
        verdict = dataclasses.replace(verdict, notes=(*verdict.notes, notice))
    return verdict


def _gate_in_child(model: Any, baseline: Any, config: Any, values: dict, clock: Any,
                   deadline: Any) -> Any:
    from esrprof.latency.gate import run_gate

    return run_gate(model, baseline, config, input_shape=values.get("input_shape"), clock=clock,
                    name=values.get("name"), deadline=deadline)


@pytest.fixture
def esrprof_benchmark(request: pytest.FixtureRequest, esrprof_clock: Any) -> Callable[..., Any]:
    """``esrprof_benchmark(model, input_shape, rounds=50)``: pytest-benchmark's ``benchmark``
    fixture timing one forward with our clock (CUDA events on a GPU, perf_counter on CPU), so
    ``--benchmark-save``/``--benchmark-compare-fail`` work on the same numbers as esrprof."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        from esrprof.extras import available, install_hint

        pytest.fail(install_hint("pytest_benchmark", "esrprof_benchmark")
                    if not available("pytest_benchmark") else
                    "esrprof_benchmark needs the pytest-benchmark plugin, which is installed "
                    "but not active (-p no:benchmark?)", pytrace=False)

    def run(
        model: Any, input_shape: Sequence[int], *, rounds: int = 50, warmup_rounds: int = 5
    ) -> Any:
        return _benchmark(benchmark, model, input_shape, rounds, warmup_rounds, esrprof_clock)

    return run


class _VirtualTimer:
    """A clock for pytest-benchmark that advances by exactly what our clock measured, so its
    statistics are ours (a CUDA event pair per call), not host wall time around the call."""

    __name__ = "esrprof_clock"

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return "esrprof.clock"


def _benchmark(
    benchmark: Any,
    model: Any,
    input_shape: Sequence[int],
    rounds: int,
    warmup_rounds: int,
    clock: Any,
) -> Any:
    import torch

    from esrprof.latency.sampling import guarded, input_for, require_module
    from esrprof.probe import device_dtype, forward_of
    from esrprof.state import preserved
    from esrprof.timing import make_clock

    if not isinstance(rounds, int) or rounds < 1 or warmup_rounds < 0:
        raise TypeError("rounds must be a positive int and warmup_rounds >= 0")
    values = _validate({"input_shape": input_shape})
    device, dtype = device_dtype(require_module(model))
    clock = clock or make_clock(device)
    fn = guarded(forward_of(model, input_for(values["input_shape"], device, dtype)), "the forward")
    timer = _VirtualTimer()

    def one_call() -> None:
        timer.seconds += clock.time_ms(fn) / 1e3

    # pytest-benchmark binds its timer when it builds each runner, inside pedantic().
    benchmark._timer = timer
    benchmark.extra_info["esrprof"] = {
        "clock": getattr(clock, "name", type(clock).__name__),
        "input_shape": list(values["input_shape"]),
        "device": str(device),
    }
    with preserved(model, eval_mode=True), torch.inference_mode():
        benchmark.pedantic(one_call, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
    return benchmark.stats


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(_REPORT_KEY, [])
    if not rows:
        return
    terminalreporter.section("esrprof latency gate")
    for nodeid, verdict in rows:
        if verdict is None:
            terminalreporter.write_line(f"baseline written: {nodeid}")
            continue
        word = "pass" if verdict.passed else "REGRESSION"
        terminalreporter.write_line(f"{word:10} {nodeid}: {verdict.summary()}")
        for note in verdict.notes:
            terminalreporter.write_line(f"{'':10} note: {note}")
