"""How often does `esrprof gate` fail an unchanged model, and how often does it catch a slower one?

    python benchmarks/bench_gate.py --runs 20

Writes a small SR network (7 conv blocks, 32 channels, x4 pixel-shuffle) to a temporary folder,
saves its baseline with `esrprof baseline save`, then makes two slower versions of the same class
by adding conv blocks (+1 block ~ +10 %, +2 blocks ~ +20 %) and runs `esrprof gate` on each
version ``--runs`` times, every run a fresh process as in CI, the three versions taking turns so
that the machine's load falls on all of them alike. Prints the failure rate of each, the
slow-down the gate measured (and, for comparison, the plain median per-call ratio), and the
time one gate run takes (process start included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NET = """
from torch import nn


class Net(nn.Module):
    EXTRA = {extra}

    def __init__(self, nf=32, blocks=7):
        super().__init__()
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.body = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.ReLU())
            for _ in range(blocks + self.EXTRA)
        ])
        self.tail = nn.Conv2d(nf, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        return self.up(self.tail(self.body(self.head(x))))
"""

VARIANTS = {"unchanged": 0, "+1 block (~10%)": 1, "+2 blocks (~20%)": 2}


def esrprof(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "esrprof", *args], capture_output=True, text=True, check=False
    )


def _abs(rows: list[dict]) -> str:
    values = [r["abs"] - 1 for r in rows if r["abs"] is not None]
    if not values:
        return f"{'-':>17}"
    return f"{statistics.median(values):>+8.1%}, {max(values):<+7.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="gate runs per version")
    parser.add_argument("--input-shape", default="1,3,32,32")
    parser.add_argument("--max-slowdown", default="5%")
    parser.add_argument("--extra", nargs="*", default=[], help="more `esrprof gate` options")
    parser.add_argument("--versions", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                        help="which versions to gate (default all three)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="esrprof-bench-gate-") as tmp:
        folder = Path(tmp)
        files = {}
        for label, extra in VARIANTS.items():
            path = folder / f"net_{extra}.py"
            path.write_text(NET.format(extra=extra))
            files[label] = path
        baseline = folder / "baseline.json"
        saved = esrprof("baseline", "save", f"{files['unchanged']}:Net", "-o", str(baseline),
                        "--input-shape", args.input_shape)
        if saved.returncode != 0:
            print(saved.stdout, saved.stderr, file=sys.stderr)
            return 2
        print(saved.stdout.strip())
        outcomes: dict[str, list[dict]] = {label: [] for label in args.versions}
        for run in range(args.runs):
            labels = list(args.versions)
            labels = labels[run % 3:] + labels[:run % 3]  # take turns
            for label in labels:
                verdict_file = folder / "verdict.json"
                started = time.perf_counter()
                done = esrprof("gate", f"{files[label]}:Net", "--baseline", str(baseline),
                               "--max-slowdown", args.max_slowdown, "--json",
                               str(verdict_file), *args.extra)
                wall = time.perf_counter() - started
                if done.returncode not in (0, 1):
                    print(done.stdout, done.stderr, file=sys.stderr)
                    return 2
                verdict = json.loads(verdict_file.read_text())
                failed_checks = [c["name"] for c in verdict["checks"] if not c["passed"]]
                outcomes[label].append({
                    "exit": done.returncode,
                    "wall_s": wall,
                    "sampling_s": verdict["seconds"],
                    "ratio": verdict["estimate"]["ratio"],
                    "call_ratio": verdict["estimate"]["median_call_ratio"],
                    "pairs": verdict["estimate"]["pairs"],
                    "failed": failed_checks,
                    "abs": next((c["observed"] for c in verdict["checks"]
                                 if c["name"] == "abs"), None),
                })
            print(f"run {run + 1}/{args.runs}: " + ", ".join(
                f"{label} exit {outcomes[label][-1]['exit']} "
                f"({outcomes[label][-1]['ratio'] - 1:+.1%})" for label in args.versions
            ), flush=True)

    print(f"\nesrprof gate --max-slowdown {args.max_slowdown}, input {args.input_shape}, "
          f"{args.runs} runs per version")
    header = (f"{'version':18} {'fail rate':>9} {'by ratio':>8} {'by abs':>6} "
              f"{'median slow-down':>16} {'range':>17} {'pairs':>6} {'per-call':>9} "
              f"{'abs: median, max':>17}")
    print(header)
    for label, rows in outcomes.items():
        fails = sum(r["exit"] == 1 for r in rows)
        by_ratio = sum("ratio" in r["failed"] for r in rows)
        by_abs = sum("abs" in r["failed"] for r in rows)
        ratios = [r["ratio"] - 1 for r in rows]
        pairs = statistics.median(r["pairs"] for r in rows)
        print(f"{label:18} {fails:>4}/{len(rows):<4} {by_ratio:>8} {by_abs:>6} "
              f"{statistics.median(ratios):>+16.1%} "
              f"{min(ratios):>+8.1%}..{max(ratios):<+7.1%} {pairs:>6.0f} "
              f"{statistics.median(r['call_ratio'] - 1 for r in rows):>+9.1%} "
              f"{_abs(rows)}")
    every = [r for rows in outcomes.values() for r in rows]
    print(f"one gate run: median {statistics.median(r['wall_s'] for r in every):.2f} s wall "
          f"(process start and model load included), of which sampling median "
          f"{statistics.median(r['sampling_s'] for r in every):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
