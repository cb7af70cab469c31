"""How long ``esrprof report`` takes on the published NTIRE 2022 table (45 entries, the nine
reference models predicted, every chart in PNG and SVG), the README's command:

    esrprof report reference_models/data/ntire2022_table1.csv -o DIR \\
        --title "NTIRE 2022 Efficient SR challenge, Table 1" --score ntire2024 \\
        --score-baseline ByteESR

Each run is a fresh process (imports included), pinned to ``--cores`` CPUs (default 2, the
issue's budget). Printed per version: the median wall time and the median CPU time (user + sys,
worker processes included) over ``--runs``. With ``--before REF`` (a git ref; default the
commit before the report was made parallel) that version's code is exported from git into a
temporary folder and run alternately with this tree's, so both see the same machine load.

    python benchmarks/bench_report.py                  # this tree and the code before
    python benchmarks/bench_report.py --before none    # this tree only
    python benchmarks/bench_report.py --runs 5 --cores 4

On a shared machine the wall time follows the load (printed with each run); the CPU time much
less so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "reference_models" / "data" / "ntire2022_table1.csv"
BEFORE = "6b5ee4c"  # the report before charts were drawn in parallel (issue 18)
ARGS = ["--title", "NTIRE 2022 Efficient SR challenge, Table 1", "--score", "ntire2024",
        "--score-baseline", "ByteESR"]
# Runs the CLI of the esrprof found first on sys.path[0] (an exported old version, or ROOT).
RUNNER = (
    "import sys; sys.path.insert(0, sys.argv[1]); import esrprof; "
    "assert esrprof.__file__.startswith(sys.argv[1]), esrprof.__file__; "
    "from esrprof.cli import main; sys.exit(main(sys.argv[2:]))"
)


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (git archive), without touching the repository's state."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_once(tree: Path, out: Path, cores: list[int]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its workers) of one report."""
    shutil.rmtree(out, ignore_errors=True)

    def pin() -> None:
        if cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)

    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tree), "report", str(TABLE), "-o", str(out), *ARGS],
        preexec_fn=pin, capture_output=True, text=True, cwd=tree,
    )
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"report failed in {tree}:\n{proc.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system
                                                           - before.children_system)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin each run to")
    parser.add_argument("--before", default=BEFORE,
                        help="git ref of the code to compare with, or 'none'")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = available[: args.cores]
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        trees = {"this tree": ROOT}
        if args.before.lower() != "none":
            old = Path(tmp) / "before"
            old.mkdir()
            trees[f"before ({args.before})"] = export(args.before, old)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for i in range(args.runs):
            for name, tree in trees.items():
                wall, cpu = run_once(tree, Path(tmp) / "out", cores)
                times[name].append((wall, cpu))
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                print(f"run {i + 1} {name:<20} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                      f"(load average {load:.1f})", flush=True)
    print(f"\nesrprof report on {TABLE.name}, {len(cores) or 'all'} cores, "
          f"median of {args.runs}:")
    medians = {}
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        medians[name] = wall
        print(f"  {name:<20} wall {wall:6.2f} s   cpu {cpu:6.2f} s")
    if len(medians) == 2:
        new, old = medians.values()
        print(f"  wall-time ratio before / now: {old / new:.2f}")


if __name__ == "__main__":
    main()
