"""What running user code in a child process costs a gate (esrprof.latency.isolation).

    python benchmarks/bench_isolation.py [--repeats 20]

Times ``run_isolated`` around a function that returns at once (the fixed cost: start the child,
write, read and unpickle its answer, reap it) against calling the function in-process, for the
forked child (Linux, the default) and the fresh interpreter (elsewhere, after CUDA was
initialised, or with more than one thread), with torch and esrprof already imported, as in
the gate. Then the same around a call returning a verdict-sized answer (1200 samples). The
fresh interpreter's figure is its start only: a real gate's work imports torch there again.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch  # noqa: F401 - imported in the parent, as in every door

from esrprof.latency.isolation import run_isolated

# builtins: a fresh interpreter finds them by name (this script's functions live in __main__)
nothing = int
verdict_sized = (list, ([1.0] * 1200,))


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows = [
        ("in-process call", nothing, args.repeats),
        ("forked child", lambda: run_isolated(nothing, what="w", bound_s=60, method="fork"),
         args.repeats),
        ("forked child, verdict-sized answer",
         lambda: run_isolated(*verdict_sized, what="w", bound_s=60, method="fork"),
         args.repeats),
        ("fresh interpreter", lambda: run_isolated(nothing, what="w", bound_s=300,
                                                   method="spawn"), max(2, args.repeats // 5)),
    ]
    for name, fn, repeats in rows:
        ms = timed(fn, repeats)
        print(f"{name:36} median {statistics.median(ms):9.1f} ms  min {min(ms):9.1f} ms  "
              f"({repeats} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
