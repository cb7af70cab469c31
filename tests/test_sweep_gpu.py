"""esrprof sweep on a GPU: each entry on the worker's GPU only, timed there, and what one entry
leaves on the GPU gone before the next starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from esrprof.results import load_result
from esrprof.sweep import SweepOptions, SweepState, read_entries, run_sweep

PATTERN = Path(__file__).parent / "patterns" / "sweep_entries.py"


@pytest.mark.gpu
def test_gpu_entries_run_on_their_gpu_and_a_leak_dies_with_its_process(tmp_path):
    shutil.copy(PATTERN, tmp_path / "tiny.py")
    lines = []
    for name, mode in (("leak", "gpuleak"), ("after", "ok")):
        lines += ["[[entry]]", f'name = "{name}"', 'model = "tiny.py:Tiny"',
                  f"kwargs = {json.dumps({'mode': mode}).replace(':', ' =')}", ""]
    (tmp_path / "e.toml").write_text("\n".join(lines))
    out = tmp_path / "out"
    run_sweep(read_entries(tmp_path / "e.toml"), SweepOptions(
        folder=out, workers=1, timeout_s=300,
        rules={"run": True, "device": "cuda", "max_images": 2, "challenge": "ntire2022"}))
    st = SweepState.load(out).entries
    assert {n: e.status for n, e in st.items()} == {"leak": "done", "after": "done"}
    assert all(":cuda" in e.worker for e in st.values())
    leak, after = (load_result(out / f"{n}.json").summary() for n in ("leak", "after"))
    assert leak["hardware"] == after["hardware"] and "cpu" not in after["hardware"].lower()
    assert leak["memory_mib"] > 2000  # the leaked 2 GiB were in its own peak
    assert after["memory_mib"] < 500  # and gone with its process
