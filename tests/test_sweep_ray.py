"""esrprof sweep --ray against a local Ray started inside the test: the same records as local
workers, the same state file, failures recorded the same way, a lost worker back to pending."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from esrprof.sweep import SweepOptions, SweepState, read_entries, run_sweep
from esrprof.sweep.child import Outcome
from esrprof.sweep.state import PENDING

ray = pytest.importorskip("ray", reason="Ray is the optional extra esrprof[ray]")
pytestmark = pytest.mark.slow  # ~60 s on 2 busy cores: Ray's start (~10 s) and a local sweep

PATTERN = Path(__file__).parent / "patterns" / "sweep_entries.py"
MODES = {"ok": {}, "wide": {"c": 8}, "crash": {"mode": "crash"}, "exit0": {"mode": "exit0"}}


def _entries(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PATTERN, folder / "tiny.py")
    lines = []
    for name, kwargs in MODES.items():
        inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in kwargs.items())
        lines += ["[[entry]]", f'name = "{name}"', 'model = "tiny.py:Tiny"',
                  f"kwargs = {{{inline}}}", "input_shape = [1, 3, 32, 32]", ""]
    (folder / "entries.toml").write_text("\n".join(lines), encoding="utf-8")
    return folder / "entries.toml"


def _record(path: Path) -> dict:
    """The record less when and where it was written, and how long counting took (Ray gives its
    tasks one CPU thread: environment.threads says so), and less esrprof's mark (a hash of the
    whole file, timestamps included)."""
    data = json.loads(path.read_text())
    for key in ("created", "environment", "esrprof_file"):
        data.pop(key)
    data["counts"].pop("seconds")
    data["prediction"].pop("seconds")
    return data


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_records_local_workers_give(tmp_path, local_ray):
    entries = read_entries(_entries(tmp_path))
    run_sweep(entries, SweepOptions(folder=tmp_path / "local", workers=2, timeout_s=60))
    run_sweep(entries, SweepOptions(folder=tmp_path / "ray", ray="auto", timeout_s=60))
    local, remote = (SweepState.load(tmp_path / k).entries for k in ("local", "ray"))
    assert {n: (e.status, e.why) for n, e in remote.items()} == \
        {n: (e.status, e.why) for n, e in local.items()}
    assert {n: e.status for n, e in remote.items()} == {
        "ok": "done", "wide": "done", "crash": "failed", "exit0": "failed"}
    for name in ("ok", "wide"):
        assert _record(tmp_path / "ray" / f"{name}.json") == \
            _record(tmp_path / "local" / f"{name}.json")
        assert remote[name].worker.startswith("ray:")
    assert "boom in the constructor" in (tmp_path / "ray" / "logs" / "crash.log").read_text()
    # resumed through Ray: nothing to redo
    again = run_sweep(entries, SweepOptions(folder=tmp_path / "ray", ray="auto", timeout_s=60))
    assert (again.ran, again.kept) == (0, 4)


def test_a_lost_worker_puts_its_entry_back_to_pending(tmp_path, local_ray, monkeypatch):
    """A task whose Ray worker dies (the node lost) is resubmitted once, then left pending."""
    from esrprof.sweep import ray_executor

    def die(task, timeout_s, memory_bytes):
        import os

        os._exit(1)  # the Ray worker process itself dies, as on a lost node

    monkeypatch.setattr(ray_executor, "run_on_node", die)
    entries = [e for e in read_entries(_entries(tmp_path)) if e.name == "ok"]
    summary = run_sweep(entries, SweepOptions(folder=tmp_path / "out", ray="auto"))
    st = SweepState.load(tmp_path / "out").get("ok")
    assert st.status == PENDING and "lost its Ray worker" in st.why
    assert st.attempts == 2 and summary.failures == []
    assert Outcome(PENDING, None, 0, None).status == "pending"
