"""esrprof sweep on local workers: every entry in its own fresh process, counts and predictions
only, tiny models (tests/patterns/sweep_entries.py), two workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esrprof.report.inputs import load_entries
from esrprof.results import load_result
from esrprof.sweep import SweepOptions, SweepState, read_entries, run_sweep

PATTERN = Path(__file__).parent / "patterns" / "sweep_entries.py"


def write_entries(folder: Path, modes: dict[str, dict]) -> Path:
    """An ENTRIES file of Tiny models next to a copy of the pattern file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PATTERN, folder / "tiny.py")
    lines = []
    for name, kwargs in modes.items():
        inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in kwargs.items())
        lines += ["[[entry]]", f'name = "{name}"', 'model = "tiny.py:Tiny"',
                  f"kwargs = {{{inline}}}", 'input_shape = [1, 3, 32, 32]', ""]
    path = folder / "entries.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def figures(path: Path) -> dict:
    """What a record says about the model (not when or where it was written)."""
    result = load_result(path)
    row = result.summary()
    row.pop("hardware")
    row["peak_mib"] = result.prediction.memory.peak_allocated_mib
    row["runtime_pred_ms"] = result.prediction.runtime.ms
    return row


def state_of(folder: Path) -> dict:
    return {n: e for n, e in SweepState.load(folder).entries.items()}


def test_misbehaving_entries_are_recorded_and_never_taint_the_others(tmp_path):
    entries = write_entries(tmp_path, {
        "ok": {}, "crash": {"mode": "crash"}, "hang": {"mode": "hang"},
        "exit0": {"mode": "exit0"}, "sysexit": {"mode": "sysexit"}, "hog": {"mode": "hog"},
        "globals": {"mode": "globals"}, "after": {},
    })
    out = tmp_path / "out"
    summary = run_sweep(read_entries(entries), SweepOptions(
        folder=out, workers=2, timeout_s=12, memory_gib=3))
    st = state_of(out)
    assert {n: e.status for n, e in st.items()} == {
        "ok": "done", "crash": "failed", "hang": "timed_out", "exit0": "failed",
        "sysexit": "failed", "hog": "failed", "globals": "done", "after": "done"}
    assert "RuntimeError: boom in the constructor" in st["crash"].why
    assert "timed out after 12 s" in st["hang"].why
    assert "exited with code 0 without writing its record" in st["exit0"].why
    assert "called sys.exit(0)" in st["sysexit"].why
    assert "MemoryError" in st["hog"].why and "memory" in st["hog"].why
    assert sorted(f[0] for f in summary.failures) == ["crash", "exit0", "hang", "hog", "sysexit"]
    for name, e in st.items():
        assert (out / e.log).is_file() and e.log == f"logs/{name}.log"
        assert "\n" not in (e.why or "")
    # the careless entry changed torch's globals in its own process only
    assert figures(out / "after.json") == {**figures(out / "ok.json"), "model": "after"}
    assert not list(out.glob("crash*.json")) and not (out / ".work").exists()
    # the report reads the sweep folder: its done entries, nothing else
    table = load_entries([out]).table
    assert sorted(table["model"]) == ["after", "globals", "ok"]

    # a rerun keeps everything (failures included); --redo runs one entry again
    again = run_sweep(read_entries(entries), SweepOptions(folder=out, workers=2, timeout_s=12,
                                                          memory_gib=3, redo=("ok",)))
    assert (again.ran, again.kept) == (1, 7)
    st2 = state_of(out)
    assert st2["ok"].attempts == 2 and st2["after"].attempts == 1
    assert st2["hang"].status == "timed_out" and st2["hang"].attempts == 1


def _wait_for(predicate, limit_s: float = 90.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the sweep"
        time.sleep(0.1)


def _running(folder: Path, name: str) -> bool:
    try:
        return SweepState.load(folder).get(name).status == "running"
    except Exception:  # not written yet
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_sweep_resumes_redoing_only_the_entry_in_flight(tmp_path, sig):
    entries = write_entries(tmp_path, {"first": {}, "slow": {"mode": "slow"}, "last": {}})
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "esrprof", "sweep", str(entries), "-o", str(out),
           "--workers", "1", "--no-progress", "--timeout", "120"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "ESRPROF_TEST_SLOW": "60"})
    try:
        _wait_for(lambda: _running(out, "slow"))
        first = (out / "first.json").stat().st_mtime_ns
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130), err
    if sig == signal.SIGTERM:
        assert SweepState.load(out).get("slow").status == "pending"
        assert err.strip().splitlines()[-1] == "esrprof: error: interrupted"
    # no child survives its sweep: the slow entry's worker is gone too
    _wait_for(lambda: not _worker_alive(out), 10)

    # resumed with the same ENTRIES (the slow entry quick this time)
    done = subprocess.run(cli, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "ESRPROF_TEST_SLOW"})
    assert done.returncode == 0, done.stderr
    st = state_of(out)
    assert {n: (e.status, e.attempts) for n, e in st.items()} == {
        "first": ("done", 1), "slow": ("done", 2), "last": ("done", 1)}
    assert (out / "first.json").stat().st_mtime_ns == first  # the done entry was not redone
    assert "2 run now, 1 kept" in done.stdout


def _worker_alive(out: Path) -> bool:
    """Whether any esrprof sweep worker of this sweep folder still runs."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "esrprof.sweep.worker" in cmd and str(out) in cmd:
            return True
    return False


def test_repeat_interleaves_fresh_runs_and_the_report_refuses_mixed_gpus(tmp_path):
    from esrprof.errors import UsageError

    entries = write_entries(tmp_path, {"a": {}, "b": {"c": 8}})
    out = tmp_path / "out"
    summary = run_sweep(read_entries(entries), SweepOptions(
        folder=out, workers=1, timeout_s=120, repeat=2,
        rules={"run": True, "max_images": 1, "predict": False, "repeat": 2}))
    st = state_of(out)
    assert all(e.status == "done" and len(e.repeats) == 2 for e in st.values())
    created = sorted((load_result(out / r["result"]).created, f"{n}.{r['k']}")
                     for n, e in st.items() for r in e.repeats)
    assert [c[1] for c in created] == ["a.0", "b.0", "a.1", "b.1"]  # interleaved across entries
    for name, e in st.items():
        figures_ = summary.repeats[name]
        runs = [r["runtime_ms"] for r in e.repeats]
        assert figures_["runtime_ms"] == runs and figures_["mean_ms"] == pytest.approx(
            sum(runs) / 2)
        assert figures_["organisers_average_ms"] is None  # five runs needed
        # DIR/<name>.json is one of the runs, whole: the report's checks accept it
        assert load_result(out / f"{name}.json").summary()["runtime_ms"] in runs
    assert len(load_entries([out]).table) == 2
    # timing fairness: runtimes from two GPU models are not ranked together
    for name, gpu in (("a", "NVIDIA GeForce RTX 3090"), ("b", "NVIDIA RTX A6000")):
        data = json.loads((out / f"{name}.json").read_text())
        data["environment"]["hardware"] = gpu
        (out / f"{name}.json").write_text(json.dumps(data))
    with pytest.raises(UsageError, match="different hardware"):
        load_entries([out])
