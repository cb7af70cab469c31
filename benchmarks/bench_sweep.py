"""What a sweep costs per entry beyond the entry's own work: a fresh process (interpreter, torch,
esrprof), the model build, the record's write, and for Ray its scheduling and transfer.

    python benchmarks/bench_sweep.py                       # local workers, counts and predictions
    python benchmarks/bench_sweep.py --ray                 # also through a local Ray (num_cpus=2)
    python benchmarks/bench_sweep.py --models IMDN,RLFN,BSRN --workers 1

The entry's own work is measured in this process (build, count, predict, each model once warm);
the sweep's figures come from each child's log (its phases) and the parent's wall clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from esrprof.sweep import Entry, SweepOptions, SweepState, run_sweep
from esrprof.sweep.worker import TIMINGS_PREFIX


def own_work(spec: str) -> dict[str, float]:
    """Build, count and predict in this (warm) process: what the entry itself costs."""
    from esrprof import api
    from esrprof.loading import load_model

    t0 = time.perf_counter()
    loaded = load_model(spec)
    t1 = time.perf_counter()
    api.profile(loaded.model, (1, 3, 256, 256), info=loaded.info)
    t2 = time.perf_counter()
    api.try_predict(loaded.model)
    t3 = time.perf_counter()
    return {"build": t1 - t0, "count": t2 - t1, "predict": t3 - t2}


def phases(log: Path) -> dict[str, float]:
    line = next(ln for ln in reversed(log.read_text().splitlines())
                if ln.startswith(TIMINGS_PREFIX))
    return {k: float(v) for k, v in
            (item.split("=") for item in line[len(TIMINGS_PREFIX):].split())}


def sweep(entries: list[Entry], folder: Path, **kw) -> tuple[float, dict[str, dict]]:
    t0 = time.perf_counter()
    run_sweep(entries, SweepOptions(folder=folder, timeout_s=300, **kw))
    wall = time.perf_counter() - t0
    state = SweepState.load(folder).entries
    out = {}
    for e in entries:
        s = state[e.name]
        if s.status != "done":
            raise SystemExit(f"{e.name}: {s.status}: {s.why}")
        p = phases(folder / s.log)
        out[e.name] = {"child_s": s.seconds, **p,
                       "start": s.seconds - sum(p.values())}
    return wall, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="IMDN,RLFN,BSRN,MobileSR")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ray", action="store_true", help="also through a local Ray")
    args = parser.parse_args()
    from esrprof.zoo.registry import get

    specs = {name: get(name).spec for name in args.models.split(",")}
    entries = [Entry(name=n.replace("+", "plus"), model=s) for n, s in specs.items()]
    for spec in specs.values():  # warm this process: the first count pays for imports
        own_work(spec)
    own = {n.replace("+", "plus"): own_work(s) for n, s in specs.items()}

    with tempfile.TemporaryDirectory() as tmp:
        wall, local = sweep(entries, Path(tmp) / "local", workers=args.workers)
        print(f"local workers: {len(entries)} entries, --workers {args.workers}, "
              f"{wall:.1f} s wall ({wall / len(entries):.2f} s per entry)")
        print(f"{'entry':10} {'own work':>9} {'child':>7} {'start':>7} {'imports':>8} "
              f"{'build':>7} {'count':>7} {'predict':>8} {'write':>6} {'overhead':>9}")
        for name, c in local.items():
            work = sum(own[name].values())
            print(f"{name:10} {work:9.3f} {c['child_s']:7.2f} {c['start']:7.2f} "
                  f"{c['imports']:8.2f} {c['build']:7.3f} {c['count']:7.3f} "
                  f"{c.get('predict', 0):8.3f} {c['write']:6.3f} {c['child_s'] - work:9.2f}")
        overhead = [c["child_s"] - sum(own[n].values()) for n, c in local.items()]
        share = [(c["child_s"] - sum(own[n].values())) / c["child_s"] for n, c in local.items()]
        print(f"overhead per entry (child wall - own work): median "
              f"{statistics.median(overhead):.2f} s, {100 * statistics.median(share):.0f} % "
              f"of the child's wall time; of it, "
              f"process start (interpreter + torch + esrprof) median "
              f"{statistics.median(c['start'] for c in local.values()):.2f} s")

        if args.ray:
            try:
                import ray
            except ImportError:
                print("ray: not installed (pip install 'esrprof[ray]')")
                return 0
            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            init = time.perf_counter() - t0
            try:
                wall_r, remote = sweep(entries, Path(tmp) / "ray", ray="auto")
            finally:
                ray.shutdown()
            child = statistics.median(c["child_s"] for c in remote.values())
            print(f"ray (local, num_cpus=2): ray.init {init:.1f} s; {len(entries)} entries "
                  f"{wall_r:.1f} s wall ({wall_r / len(entries):.2f} s per entry); child wall "
                  f"median {child:.2f} s (local: "
                  f"{statistics.median(c['child_s'] for c in local.values()):.2f} s); "
                  f"scheduling + transfer per entry ~"
                  f"{max(0.0, wall_r * min(2, len(entries)) / len(entries) - child):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
