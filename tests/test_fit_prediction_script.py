"""benchmarks/fit_prediction.py, the script docs/prediction.md quotes, runs to the end: the
leave-one-out table, the where-the-error-sits table and the JSON calibrations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fit_prediction.py"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_table_prints_leave_one_out_the_error_by_kind_and_the_suspects():
    out = _run("--classes")
    assert out.count("LEAVE-ONE-OUT: RMS log error") >= 2  # one line per generation
    assert "IMDN@titan-xp" in out and "SPAN@rtx-a6000" in out
    assert "where the error sits" in out and "kernel_floor" in out
    suspects = out.split("one free factor per suspect op class")[1].splitlines()
    assert sum(1 for line in suspects if "BSRN" in line) == 3


def test_json_gives_one_calibration_per_generation():
    fitted = json.loads(_run("--json"))
    assert {"pascal", "ampere"} <= set(fitted)
    for calibration in fitted.values():
        assert 0 < calibration["bandwidth_efficiency"] <= 1
