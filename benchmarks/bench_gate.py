"""How often does `esrprof gate` fail an unchanged model, and does it catch a 20 % slower one,
with other processes busy on the same cores?

    python benchmarks/bench_gate.py --runs 20 --busy 2

Writes a small SR network (9 conv blocks, 32 channels, x4 pixel-shuffle) to a temporary folder
and saves its baseline with `esrprof baseline save` on the quiet machine. Then it starts
``--busy`` processes that spin forever (``python -c "while True: pass"``), and runs
`esrprof gate` with **its default decision** (only ``--max-slowdown`` and ``--json`` given, as
the README's example) ``--runs`` times on each version: the unchanged model, one with 2 extra
blocks (~19 % more MACs, the "20 %" slow-down) and, with ``--versions``, one with 1 extra block
(~9 %). Every run is a fresh process, as in CI, and the versions take turns so that the load
falls on all of them alike. The pytest fixture and plugin decide with the same defaults
(``esrprof.latency.gate.GateConfig()``; tests/test_gate.py checks that every door's default
is it).

Prints, per version, how often the gate failed, through which check, the slow-down it measured
(and the plain per-call ratio and the absolute comparison, which is information by default),
then the two rates the gate must meet: false alarms <= 1 in 20 on the unchanged model and the
20 % slow-down caught 20 in 20.
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

    def __init__(self, nf=32, blocks=9):
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

VARIANTS = {"unchanged": 0, "+1 block (~9%)": 1, "+2 blocks (~20%)": 2, "+3 blocks (~28%)": 3}
DEFAULT_VERSIONS = ["unchanged", "+2 blocks (~20%)"]


def esrprof(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "esrprof", *args], capture_output=True, text=True, check=False
    )


def start_busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for proc in procs:  # only the processes this script started, each by its own handle
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def gate_once(net: Path, baseline: Path, folder: Path, args: argparse.Namespace) -> dict:
    verdict_file = folder / "verdict.json"
    started = time.perf_counter()
    done = esrprof("gate", f"{net}:Net", "--baseline", str(baseline), "--max-slowdown",
                   args.max_slowdown, "--json", str(verdict_file), *args.extra)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"gate exited {done.returncode}: {done.stderr.strip()}")
    verdict = json.loads(verdict_file.read_text())
    verdict_file.unlink()
    absolute = next((c for c in verdict["checks"] if c["name"] == "abs"), None)
    return {
        "exit": done.returncode,
        "wall_s": wall,
        "sampling_s": verdict["seconds"],
        "ratio": verdict["estimate"]["ratio"],
        "call_ratio": verdict["estimate"]["median_call_ratio"],
        "pairs": verdict["estimate"]["pairs"],
        "failed": [c["name"] for c in verdict["checks"] if c["enforced"] and not c["passed"]],
        "abs": absolute["observed"] if absolute else None,
        "abs_over": bool(absolute and not absolute["passed"]),
    }


TEST_FILE = """
from net import Net


def test_latency(esrprof_latency):
    esrprof_latency(Net(), ({shape}), max_slowdown={limit}, baseline="baseline_pytest.json")
"""


def pytest_door(folder: Path, args: argparse.Namespace) -> None:
    """The README's pytest example in ``folder`` (net.py is written per version)."""
    limit = float(args.max_slowdown.rstrip("%")) / 100 if args.max_slowdown.endswith("%") \
        else float(args.max_slowdown)
    (folder / "test_gate_net.py").write_text(TEST_FILE.format(shape=args.input_shape,
                                                              limit=limit))


def run_pytest(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    # -B: net.py is rewritten per version, possibly within the second a .pyc would keep
    return subprocess.run([sys.executable, "-B", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_gate_net.py", *extra], cwd=folder, capture_output=True,
                          text=True, check=False)


def pytest_once(folder: Path, source: Path) -> dict:
    (folder / "net.py").write_text(source.read_text())
    started = time.perf_counter()
    done = run_pytest(folder)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"pytest exited {done.returncode}: {done.stdout[-500:]}")
    line = next(ln for ln in done.stdout.splitlines() if "test_latency:" in ln)
    slowdown = float(line.split("test_latency: ")[1].split("%")[0]) / 100
    return {"exit": done.returncode, "wall_s": wall, "sampling_s": float("nan"),
            "ratio": 1 + slowdown, "call_ratio": float("nan"), "pairs": 0,
            "failed": ["ratio"] if done.returncode else [], "abs": None, "abs_over": False}


def report(outcomes: dict[str, list[dict]], args: argparse.Namespace) -> None:
    door = "esrprof gate" if args.door == "cli" else "pytest esrprof_latency"
    print(f"\n{door} --max-slowdown {args.max_slowdown} (default decision), input "
          f"{args.input_shape}, {args.runs} runs per version, {args.busy} busy process(es)")
    print(f"{'version':18} {'failed':>7} {'by ratio':>8} {'slow-down':>9} {'range':>17} "
          f"{'pairs':>5} {'per-call':>8} {'abs (info)':>10} {'abs over 25%':>12}")
    for label, rows in outcomes.items():
        ratios = [r["ratio"] - 1 for r in rows]
        absolute = [r["abs"] - 1 for r in rows if r["abs"] is not None]
        print(f"{label:18} {sum(r['exit'] == 1 for r in rows):>3}/{len(rows):<3} "
              f"{sum('ratio' in r['failed'] for r in rows):>8} "
              f"{statistics.median(ratios):>+9.1%} "
              f"{min(ratios):>+8.1%}..{max(ratios):<+7.1%} "
              f"{statistics.median(r['pairs'] for r in rows):>5.0f} "
              f"{statistics.median(r['call_ratio'] - 1 for r in rows):>+8.1%} "
              f"{statistics.median(absolute) if absolute else float('nan'):>+10.1%} "
              f"{sum(r['abs_over'] for r in rows):>12}")
    every = [r for rows in outcomes.values() for r in rows]
    print(f"one gate run: median {statistics.median(r['wall_s'] for r in every):.2f} s wall "
          f"(process start and model load included), sampling median "
          f"{statistics.median(r['sampling_s'] for r in every):.2f} s")
    if "unchanged" in outcomes:
        rows = outcomes["unchanged"]
        alarms = sum(r["exit"] == 1 for r in rows)
        verdict = "OK" if alarms * 20 <= len(rows) else "FAIL"
        print(f"false alarms on the unchanged model: {alarms}/{len(rows)} "
              f"(target <= {max(1, len(rows) // 20)}): {verdict}")
    if "+2 blocks (~20%)" in outcomes:
        rows = outcomes["+2 blocks (~20%)"]
        caught = sum(r["exit"] == 1 for r in rows)
        print(f"20 % slow-down caught: {caught}/{len(rows)} (target {len(rows)}/{len(rows)}): "
              f"{'OK' if caught == len(rows) else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="gate runs per version")
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the gate")
    parser.add_argument("--input-shape", default="1,3,64,64")
    parser.add_argument("--max-slowdown", default="5%")
    parser.add_argument("--save-under-load", action="store_true",
                        help="save the baseline with the busy processes already running")
    parser.add_argument("--door", choices=("cli", "pytest"), default="cli",
                        help="gate through `esrprof gate` (default) or the README's pytest "
                        "example (the esrprof_latency fixture)")
    parser.add_argument("--extra", nargs="*", default=[], help="more `esrprof gate` options")
    parser.add_argument("--versions", nargs="*", default=DEFAULT_VERSIONS,
                        choices=list(VARIANTS), help="which versions to gate")
    args = parser.parse_args()

    busy: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="esrprof-bench-gate-") as tmp:
        folder = Path(tmp)
        files = {}
        for label, extra in VARIANTS.items():
            files[label] = folder / f"net_{extra}.py"
            files[label].write_text(NET.format(extra=extra))
        baseline = folder / "baseline.json"
        try:
            if args.save_under_load:
                busy = start_busy(args.busy)
            if args.door == "pytest":
                pytest_door(folder, args)
                (folder / "net.py").write_text(files["unchanged"].read_text())
                saved = run_pytest(folder, "--esrprof-save-baselines")
            else:
                saved = esrprof("baseline", "save", f"{files['unchanged']}:Net", "-o",
                                str(baseline), "--input-shape", args.input_shape)
            if saved.returncode != 0:
                print(saved.stdout, saved.stderr, file=sys.stderr)
                return 2
            print(saved.stdout.strip().splitlines()[-1])
            if not busy:
                busy = start_busy(args.busy)
            outcomes: dict[str, list[dict]] = {label: [] for label in args.versions}
            for run in range(args.runs):
                shift = run % len(args.versions)
                for label in args.versions[shift:] + args.versions[:shift]:  # take turns
                    outcomes[label].append(
                        pytest_once(folder, files[label]) if args.door == "pytest"
                        else gate_once(files[label], baseline, folder, args))
                print(f"run {run + 1}/{args.runs}: " + ", ".join(
                    f"{label} exit {rows[-1]['exit']} ({rows[-1]['ratio'] - 1:+.1%})"
                    for label, rows in outcomes.items()), flush=True)
        finally:
            stop_busy(busy)
    report(outcomes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
