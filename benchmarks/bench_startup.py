"""How long the fast doors take: `esrprof --help` and usage errors against `python -c pass` and
`python -c "import torch"`.

Every command runs in a fresh process, round by round interleaved (machine noise hits each
alike); the median of ``--repeats`` rounds is printed, wall-clock and CPU (user + system, which
a loaded machine inflates less), with the difference over `python -c pass` (target for the
doors: at most 0.3 s) and against the torch import they no longer pay.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def _commands() -> list[tuple[str, list[str], bool]]:
    """(label, argv, is a door) in the order printed."""
    exe = shutil.which("esrprof")
    cli = [exe] if exe else [sys.executable, "-m", "esrprof"]
    py = sys.executable
    return [
        ("python -c pass", [py, "-c", "pass"], False),
        ("esrprof --help", [*cli, "--help"], True),
        ("esrprof profile --help", [*cli, "profile", "--help"], True),
        ("esrprof profile nope.py:Net (missing file)", [*cli, "profile", "nope.py:Net"], True),
        ("esrprof profile --input-shape 1,a (bad shape)",
         [*cli, "profile", "--input-shape", "1,a"], True),
        ("esrprof zoo NOPE (unknown model)", [*cli, "zoo", "NOPE"], True),
        ('python -c "import torch"', [py, "-c", "import torch"], False),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    commands = _commands()
    wall: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    for _ in range(args.repeats):
        for label, argv, _ in commands:
            w, c = _run(argv)
            wall[label].append(w)
            cpu[label].append(c)
    print(f"Start-up, median of {args.repeats} fresh processes each (interleaved)")
    print(f"{'':46s} {'wall':>7s} {'over pass':>9s}   {'cpu':>7s} {'over pass':>9s}")
    worst = {}
    for name, samples in (("wall", wall), ("cpu", cpu)):
        median = {label: statistics.median(s) for label, s in samples.items()}
        samples.update({label: [v] for label, v in median.items()})
        worst[name] = max(median[label] - median["python -c pass"]
                          for label, _, door in commands if door)
    for label, _, _ in commands:
        w, c = wall[label][0], cpu[label][0]
        print(f"{label:46s} {w:6.3f}s {w - wall['python -c pass'][0]:+8.3f}s   "
              f"{c:6.3f}s {c - cpu['python -c pass'][0]:+8.3f}s")
    for name in ("wall", "cpu"):
        verdict = "met" if worst[name] <= TARGET_S else "MISSED"
        print(f"slowest door, {name:4s}: +{worst[name]:.3f} s over `python -c pass` "
              f"(target <= {TARGET_S} s: {verdict})")


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = 0  # reaped by wait4
    return wall, usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
