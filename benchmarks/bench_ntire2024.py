"""The ntire2024 count against the challenge's own counter, in one process.

For each reference model: esrprof's ``count(model, (1, 3, S, S)).ntire2024.macs`` (meta
tensors; the median of ``--repeats`` after one warm-up) against
``fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, S, S)).total()`` as the 2024-2026
test_demo.py calls it (model in eval, weights frozen; the median of ``--fvcore-repeats``),
checks the two figures are equal to the integer, and prints the speed-up per model and its
median over the models (target: at least 30x at 256x256). Times are wall-clock and, beside
them, this process's CPU time (``time.process_time``), which a machine shared with other work
disturbs less.

    python benchmarks/bench_ntire2024.py                      # all reference models, 256x256
    python benchmarks/bench_ntire2024.py --size 128 --models IMDN RLFN
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {"IMDN": "imdn", "RFDN": "rfdn", "RLFN": "rlfn", "FMEN": "fmen", "EFDN": "efdn",
          "BSRN": "bsrn", "IMDNPlus": "imdn_plus", "PlainEFDN": "efdn_plain",
          "MobileSR": "mobilesr"}


def fvcore_total(model: torch.nn.Module, size: int) -> int:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, torch.rand(1, 3, size, size))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


def median_time(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``fn()``, and its last value."""
    wall, cpu, value = [], [], None
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        value = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fvcore-repeats", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_num_threads(1)

    import esrprof

    shape = (1, 3, args.size, args.size)
    esrprof.count(importlib.import_module("reference_models.rlfn").RLFN(), shape)
    print(f"ntire2024 count at {args.size}x{args.size}: esrprof (meta) vs fvcore "
          f"FlopCountAnalysis, one thread")
    print(f"{'model':<10} {'FLOPs [G]':>10} {'equal':>6} {'esrprof [ms]':>13} "
          f"{'fvcore [ms]':>12} {'speed-up':>9} {'CPU: esrprof':>13} {'fvcore':>8} "
          f"{'speed-up':>9}")
    ratios, cpu_ratios = [], []
    for name in args.models:
        model = getattr(importlib.import_module(f"reference_models.{MODELS[name]}"), name)()
        model.eval()
        for p in model.parameters():
            p.requires_grad = False
        ours_s, ours_cpu, counts = median_time(lambda m=model: esrprof.count(m, shape),
                                               args.repeats)
        theirs_s, theirs_cpu, total = median_time(lambda m=model: fvcore_total(m, args.size),
                                                  args.fvcore_repeats)
        ours = counts.ntire2024.macs
        ratios.append(theirs_s / ours_s)
        cpu_ratios.append(theirs_cpu / ours_cpu)
        print(f"{name:<10} {ours / 1e9:>10.2f} {ours == total!s:>6} {ours_s * 1e3:>13.1f} "
              f"{theirs_s * 1e3:>12.1f} {theirs_s / ours_s:>8.0f}x {ours_cpu * 1e3:>13.1f} "
              f"{theirs_cpu * 1e3:>8.0f} {theirs_cpu / ours_cpu:>8.0f}x")
    print(f"median speed-up over {len(ratios)} models: {statistics.median(ratios):.0f}x wall, "
          f"{statistics.median(cpu_ratios):.0f}x CPU (target >= 30x)")


if __name__ == "__main__":
    main()
