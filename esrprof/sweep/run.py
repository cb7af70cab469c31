"""The sweep: plan from the state, hand tasks to an executor, write results back, keep state.

Executors (local worker threads, Ray tasks) only run a task and say how it ended; this module,
in the driver, is the one place that writes ``DIR/<name>.json``, ``DIR/logs`` and
``DIR/sweep.json``. A result record reaches ``DIR/<name>.json`` by an atomic rename, so an
interrupted sweep leaves every earlier entry whole and loses at most the ones in flight.
"""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esrprof._version import __version__
from esrprof.errors import EsrprofError, OutputError, UsageError
from esrprof.sweep.child import Outcome, new_task
from esrprof.sweep.entries import Entry, entry_key
from esrprof.sweep.state import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STATE_FILE,
    TIMED_OUT,
    SweepState,
    plan,
)

WORK = ".work"  # records being written, task files: never read by a report
LOGS = "logs"
REPEATS = "repeats"
ORGANISERS_RUNS = 5  # 2024-2026: the organisers averaged 5 runs of the runtime


@dataclass(frozen=True)
class SweepOptions:
    folder: Path
    workers: int | None = None  # None: one per local GPU, else 1
    timeout_s: float | None = 600.0
    memory_gib: float | None = None  # None: a share of RAM per CPU worker, none on a GPU
    repeat: int = 1
    redo: tuple[str, ...] = ()
    retry_failed: bool = False
    ray: str | None = None  # None: local workers; "" or "auto": Ray from the environment
    rules: dict[str, Any] = field(default_factory=dict)  # run, device, predict, gpu, challenge


@dataclass(frozen=True)
class Task:
    name: str
    k: int  # which repeat, 0-based
    entry: Entry


@dataclass
class Summary:
    ran: int = 0
    kept: int = 0
    failures: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    repeats: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def check_folder(folder: Path) -> None:
    """The output folder: new, empty, or an earlier sweep's. Anything else is the user's."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"-o {folder}: it is a file, not a folder")
    if folder.is_dir() and not (folder / STATE_FILE).is_file() and any(folder.iterdir()):
        raise OutputError(f"-o {folder}: folder holds files and no {STATE_FILE}; give a new "
                          "or empty folder, or an earlier sweep's")
    try:
        (folder / LOGS).mkdir(parents=True, exist_ok=True)
        (folder / WORK).mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"-o {folder}: cannot create it: {exc.strerror or exc}") from None


def run_sweep(entries: Sequence[Entry], options: SweepOptions,
              progress: Callable[[SweepState, int, int], None] | None = None,
              stop: threading.Event | None = None) -> Summary:
    """Run every entry that is not done; ``progress(state, finished, total)`` is called from
    this thread a few times a second. KeyboardInterrupt stops the workers, puts the entries in
    flight back to pending, saves the state and propagates."""
    folder = options.folder
    if options.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    check_folder(folder)
    state = SweepState.load(folder)
    rules = dict(options.rules)
    keys = {e.name: entry_key(e, rules, __version__) for e in entries}
    by_name = {e.name: e for e in entries}
    todo = plan(state, keys, {e.name: e.team for e in entries}, redo=options.redo,
                retry_failed=options.retry_failed)
    state.meta.update(version=__version__, rules=rules, repeat=options.repeat,
                      executor="ray" if options.ray is not None else "local")
    summary = Summary(kept=len(entries) - len(todo))
    # interleaved: every entry's first run, then every entry's second, ...
    tasks = [Task(n, k, by_name[n]) for k in range(options.repeat) for n in todo]
    start = time.perf_counter()
    if tasks:
        writer = _Writer(state, options, summary)
        stop = stop or threading.Event()
        if options.ray is not None:
            from esrprof.sweep.ray_executor import run_ray

            run_ray(tasks, writer, options, progress, stop)
        else:
            from esrprof.sweep.local import run_local

            run_local(tasks, writer, options, progress, stop)
    summary.seconds = time.perf_counter() - start
    for name in keys:
        e = state.entries[name]
        if e.status in (FAILED, TIMED_OUT):
            summary.failures.append((name, e.status, e.why or "", e.log))
        if options.repeat > 1 and e.repeats:
            summary.repeats[name] = repeat_figures(e.repeats)
    shutil.rmtree(folder / WORK, ignore_errors=True)
    return summary


class _Writer:
    """The driver's side of every task: state changes, records and logs written into DIR."""

    def __init__(self, state: SweepState, options: SweepOptions, summary: Summary) -> None:
        self.state = state
        self.options = options
        self.summary = summary
        self.folder = options.folder
        self._lock = threading.Lock()
        self.finished = 0

    def work_path(self, task: Task) -> Path:
        return self.folder / WORK / f"{task.name}.{task.k}.json"

    def log_path(self, task: Task) -> Path:
        return self.folder / LOGS / f"{task.name}.log"

    def new_task(self, task: Task, out: Path) -> dict[str, Any]:
        return new_task(task.entry.to_dict(), self.options.rules, out)

    def started(self, task: Task, worker: str) -> None:
        with self._lock:
            old = self.state.get(task.name)
            self.state.set(task.name, status=RUNNING, worker=worker, why=None,
                           log=f"{LOGS}/{task.name}.log", attempts=old.attempts + 1)

    def finished_task(self, task: Task, outcome: Outcome, record: Path | None,
                      worker: str) -> None:
        """Record how a task ended; ``record`` is the child's result file when it succeeded."""
        with self._lock:
            old = self.state.get(task.name)
            common = dict(seconds=round(outcome.seconds, 3), worker=worker,
                          log=f"{LOGS}/{task.name}.log")
            if outcome.status == PENDING:
                self.state.set(task.name, status=PENDING, why=outcome.why, **common)
                return
            self.finished += 1
            if outcome.status != DONE or record is None:
                self.state.set(task.name, status=outcome.status, why=outcome.why, **common)
                self.summary.ran += 1
                return
            try:
                figures = _run_figures(record, task.k, outcome, worker)
            except EsrprofError as exc:  # a record the report could not read is no result
                self.state.set(task.name, status=FAILED, why=f"its record is unusable: {exc}",
                               **common)
                self.summary.ran += 1
                return
            if self.options.repeat == 1:
                final = self.folder / f"{task.name}.json"
                os.replace(record, final)
                figures["result"] = final.name
                self.state.set(task.name, status=DONE, why=None, result=final.name,
                               repeats=[figures], **common)
                self.summary.ran += 1
                return
            target = self.folder / REPEATS / f"{task.name}.{task.k}.json"
            target.parent.mkdir(exist_ok=True)
            os.replace(record, target)
            figures["result"] = f"{REPEATS}/{target.name}"
            runs = [r for r in old.repeats if r["k"] != task.k]
            runs.append(figures)
            runs.sort(key=lambda r: r["k"])
            if len(runs) < self.options.repeat:
                self.state.set(task.name, status=RUNNING if old.status == RUNNING else PENDING,
                               repeats=runs, **common)
                return
            chosen = _median_run(runs)
            final = self.folder / f"{task.name}.json"
            tmp = final.with_name(f".{final.name}.tmp")
            shutil.copyfile(self.folder / chosen["result"], tmp)
            os.replace(tmp, final)
            self.state.set(task.name, status=DONE, why=None, result=final.name, repeats=runs,
                           **common)
            self.summary.ran += 1

    def failed_task(self, task: Task, why: str, worker: str) -> None:
        self.finished_task(task, Outcome(FAILED, why, 0.0, None), None, worker)


def _run_figures(path: Path, k: int, outcome: Outcome, worker: str) -> dict[str, Any]:
    from esrprof.results import load_result

    row = load_result(path).summary()
    return {"k": k, "result": path.name, "runtime_ms": row.get("runtime_ms"),
            "memory_mib": row.get("memory_mib"), "seconds": round(outcome.seconds, 3),
            "worker": worker}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose runtime is the (lower) median: the record DIR/<name>.json stands for.
    Without runtimes (counts only), the first run."""
    timed = sorted((r for r in runs if r.get("runtime_ms") is not None),
                   key=lambda r: r["runtime_ms"])
    return timed[(len(timed) - 1) // 2] if timed else runs[0]


def repeat_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, spread and the organisers' 5-run average of an entry's repeated runtimes."""
    values = [r["runtime_ms"] for r in runs if r.get("runtime_ms") is not None]
    out: dict[str, Any] = {"runs": len(runs), "runtime_ms": values}
    if values:
        out.update(
            mean_ms=statistics.fmean(values),
            stdev_ms=statistics.stdev(values) if len(values) > 1 else 0.0,
            min_ms=min(values), max_ms=max(values),
            spread_pct=100 * (max(values) - min(values)) / min(values),
            organisers_average_ms=(statistics.fmean(values[:ORGANISERS_RUNS])
                                   if len(values) >= ORGANISERS_RUNS else None),
        )
    return out
