"""pytest plugin (entry point ``pytest11``): latency fixtures over the same library calls.

    def test_latency(esrprof_latency):
        esrprof_latency(MyNet(), (1, 3, 64, 64), max_slowdown=0.05,
                        baseline="baselines/mynet.json")

A regression fails *that test*, with its figures (never the session at its end, as
pytest-benchmark's ``--benchmark-compare-fail`` does). ``esrprof_benchmark`` feeds our clock
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
_ARGUMENTS = ("baseline", "input_shape", "max_slowdown", "abs_max_slowdown", "kwargs", "name")


@dataclasses.dataclass(frozen=True)
class PluginOptions:
    """Command-line options, parsed once into typed values (bad text stops the run early)."""

    checks: tuple[Any, ...] = ()  # esrprof.gate.CheckSpec, at most one per kind
    save: bool = False
    force: bool = False
    allow_other_hardware: bool = False
    max_seconds: float = 30.0
    max_pairs: int = 400
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
        help="override a gate limit for every esrprof_latency test: ratio:5%% (per-call ratio "
        "to the base version) or abs:15%% (absolute, same hardware); repeatable, one per kind",
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
        default="30",
        metavar="S",
        help="sampling budget of one gate (default 30)",
    )
    group.addoption(
        "--esrprof-max-pairs", default="400", metavar="N", help="most pairs per gate (400)"
    )


def _parse_options(config: pytest.Config) -> PluginOptions:
    from esrprof.errors import UsageError
    from esrprof.gate import CheckSpec

    try:
        checks = [CheckSpec.parse(text) for text in config.getoption("esrprof_check") or []]
        kinds = [c.kind for c in checks]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            # pytest-benchmark silently keeps the last of repeated flags; say so instead.
            raise UsageError(f"--esrprof-check given twice for {', '.join(twice)}")
        max_seconds = float(config.getoption("esrprof_max_seconds"))
        max_pairs = int(config.getoption("esrprof_max_pairs"))
        if max_seconds <= 0 or max_pairs < 10:
            raise UsageError("--esrprof-max-seconds must be > 0 and --esrprof-max-pairs >= 10")
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
    if config.getoption("esrprof_check", None) or config.getoption(
        "esrprof_save_baselines", False
    ):
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
    from esrprof.errors import InputShapeError, UsageError
    from esrprof.gate import parse_fraction

    out = dict(values)
    for key in ("max_slowdown", "abs_max_slowdown"):
        if out.get(key) is not None:
            out[key] = parse_fraction(out[key], what=key)
    if out.get("input_shape") is not None:
        shape = out["input_shape"]
        if isinstance(shape, (str, bytes)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise InputShapeError(f"input_shape {shape!r} must be a tuple of positive integers")
        out["input_shape"] = tuple(shape)
    if out.get("baseline") is not None and not isinstance(out["baseline"], (str, Path)):
        raise UsageError(f"baseline {out['baseline']!r} must be a path")
    if out.get("kwargs") is not None and not isinstance(out["kwargs"], dict):
        raise UsageError(f"kwargs {out['kwargs']!r} must be a dict")
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
    Returns the :class:`esrprof.gate.Verdict` (or ``None`` when it just wrote the baseline)."""
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
    from esrprof.errors import EsrprofError

    nodeid = request.node.nodeid
    try:
        values = _validate(given)
        options = _options(config)
        if values.get("baseline") is None:
            raise EsrprofError("esrprof_latency needs baseline=PATH (argument or marker)")
        path = Path(values["baseline"])
        if not path.is_absolute():
            path = config.rootpath / path
        if options.save and (options.force or not path.exists()):
            return _save(config, model, values, path, options, clock)
        if not path.exists():
            raise EsrprofError(
                f"no baseline at {path}; run pytest --esrprof-save-baselines to write it"
            )
        verdict = _run(model, values, path, options, clock)
    except EsrprofError as exc:
        pytest.fail(f"esrprof: {nodeid}: {exc}", pytrace=False)
    config.stash[_REPORT_KEY].append((nodeid, verdict))
    if not verdict.passed:
        pytest.fail(f"esrprof latency regression in {nodeid}\n{verdict.message()}", pytrace=False)
    return verdict


def _save(
    config: pytest.Config, model: Any, values: dict, path: Path, options: Any, clock: Any
) -> None:
    from esrprof.baseline import make_baseline, save_baseline
    from esrprof.errors import UsageError

    shape = values.get("input_shape")
    if shape is None:
        raise UsageError("esrprof_latency needs an input_shape to write a baseline")
    baseline = make_baseline(
        model,
        shape,
        kwargs=values.get("kwargs"),
        name=values.get("name"),
        clock=clock,
        threads=options.threads,
    )
    save_baseline(baseline, path, force=options.force)
    config.stash[_REPORT_KEY].append((str(path), None))
    return None


def _run(model: Any, values: dict, path: Path, options: Any, clock: Any) -> Any:
    from esrprof.baseline import load_baseline
    from esrprof.gate import DEFAULT_ABS_MAX_SLOWDOWN, DEFAULT_MAX_SLOWDOWN, Budget, run_gate

    baseline = load_baseline(path)
    ratio = options.limit("ratio")
    if ratio is None:
        ratio = values.get("max_slowdown", DEFAULT_MAX_SLOWDOWN)
    absolute = options.limit("abs")
    if absolute is None:
        absolute = values.get("abs_max_slowdown", DEFAULT_ABS_MAX_SLOWDOWN)
    return run_gate(
        model,
        baseline,
        input_shape=values.get("input_shape"),
        max_slowdown=ratio,
        abs_max_slowdown=absolute,
        allow_other_hardware=options.allow_other_hardware,
        budget=Budget(max_pairs=options.max_pairs, max_seconds=options.max_seconds),
        threads=options.threads,
        clock=clock,
        name=values.get("name"),
    )


@pytest.fixture
def esrprof_benchmark(request: pytest.FixtureRequest, esrprof_clock: Any) -> Callable[..., Any]:
    """``esrprof_benchmark(model, input_shape, rounds=50)``: pytest-benchmark's ``benchmark``
    fixture timing one forward with our clock (CUDA events on a GPU, perf_counter on CPU), so
    ``--benchmark-save``/``--benchmark-compare-fail`` work on the same numbers as esrprof."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.fail("esrprof_benchmark needs the pytest-benchmark plugin", pytrace=False)

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

    from esrprof.gate import default_clock, forward_of, model_device, model_dtype, probe_input
    from esrprof.state import preserved

    if not isinstance(rounds, int) or rounds < 1 or warmup_rounds < 0:
        raise TypeError("rounds must be a positive int and warmup_rounds >= 0")
    values = _validate({"input_shape": input_shape})
    device = model_device(model)
    clock = clock or default_clock(device)
    x = probe_input(values["input_shape"], device, dtype=model_dtype(model))
    fn = forward_of(model, x)
    timer = _VirtualTimer()

    def one_call() -> None:
        timer.seconds += clock.time_ms(fn) / 1e3

    # pytest-benchmark binds its timer when it builds each runner, inside pedantic().
    benchmark._timer = timer
    benchmark.extra_info["esrprof"] = {
        "clock": getattr(clock, "name", type(clock).__name__),
        "input_shape": list(values["input_shape"]),
        "device": device,
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
        e = verdict.estimate
        word = "pass" if verdict.passed else "REGRESSION"
        terminalreporter.write_line(
            f"{word:10} {nodeid}: {e.slowdown:+.1%} (95% CI {e.low - 1:+.1%} to "
            f"{e.high - 1:+.1%}, {e.pairs} pairs)"
        )
