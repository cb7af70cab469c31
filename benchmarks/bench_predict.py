"""What a prediction costs, and how close it comes to the challenge's published GPU figures.

1. Cost: the median of ``--repeats`` calls of ``esrprof.prediction.predict(IMDN(), 1x3xSxS)`` at
   each size (flat: the trace runs on meta tensors), and, in a fresh subprocess, the peak
   resident-memory growth of one call above the process's level after imports and a warm-up
   (VmHWM reset through /proc/self/clear_refs).
2. Accuracy over the nine reference models, NTIRE 2022 preset (Titan Xp; memory at 510x510
   after 339x510 images, runtime at 339x510): predicted against published memory (% error) and
   runtime (ratio), and the Spearman rank correlation with the published runtimes of the
   predicted runtime, of FLOPs and of #Acts (both as published).

    python benchmarks/bench_predict.py                  # both parts
    python benchmarks/bench_predict.py --skip-cost      # the accuracy table only
    python benchmarks/bench_predict.py --cpu            # calibrate this CPU, check the models

The constants are fitted (and judged leave-one-out) by ``benchmarks/fit_prediction.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _imdn() -> torch.nn.Module:
    from esrprof.zoo.registry import get

    return get("IMDN").build().eval()


def memory_child(size: int) -> None:
    """Runs in a subprocess: peak RSS growth of one prediction after imports and a warm-up."""
    from esrprof.prediction import predict

    model = _imdn()
    predict(model, (1, 3, 16, 16))  # imports and one-time set-up are not per-prediction costs
    base = _rss_kib("VmRSS")
    with contextlib.suppress(OSError):  # reset VmHWM to the current RSS (Linux)
        Path("/proc/self/clear_refs").write_text("5")
    predict(model, (1, 3, size, size))
    peak = _rss_kib("VmHWM")
    print(json.dumps({"base_mib": base / 1024, "peak_growth_mib": (peak - base) / 1024}))


def measure_memory(size: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(size)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_cost(sizes: list[int], repeats: int) -> None:
    from esrprof.prediction import predict

    model = _imdn()
    predict(model, (1, 3, 16, 16))
    print(f"Cost of predict(IMDN, 1x3xSxS), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {repeats}")
    print(f"{'size':>6}{'median [ms]':>13}{'min [ms]':>10}{'predicted peak [MiB]':>22}"
          f"{'peak RSS growth [MiB]':>23}")
    for size in sizes:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = predict(model, (1, 3, size, size))
            samples.append(time.perf_counter() - t0)
        mem = measure_memory(size)
        rss = (f"{mem['peak_growth_mib']:.1f}" if "peak_growth_mib" in mem
               else str(mem.get("error")))
        print(f"{size:>6}{1e3 * statistics.median(samples):>13.1f}{1e3 * min(samples):>10.1f}"
              f"{p.memory.peak_allocated_mib:>22.1f}{rss:>23}")


def bench_accuracy() -> None:
    from scipy.stats import spearmanr

    from esrprof.prediction import CALIBRATION, predict_challenge
    from esrprof.zoo.registry import REGISTRY

    rows = []
    for name, entry in REGISTRY.items():
        pub = entry.published
        if pub is None:  # no NTIRE 2022 Table 1 row (SPAN)
            continue
        rows.append((name, pub, predict_challenge(entry.build())))
    print("\nNTIRE 2022 preset: Titan Xp, fp32; memory at 1x3x510x510 after a 1x3x339x510 "
          "image, runtime at 1x3x339x510")
    print(f"calibration: compute eff. {CALIBRATION.compute_efficiency:.3f}, bandwidth eff. "
          f"{CALIBRATION.bandwidth_efficiency:.3f}, floor {CALIBRATION.kernel_floor_us:.1f} us")
    head = (f"{'model':<11}{'mem pub':>9}{'mem pred':>10}{'err':>8}"
            f"{'rt pub':>9}{'rt pred':>9}{'ratio':>7}{'mem-bound':>10}{'kernels':>8}"
            f"  peak at")
    print(head)
    print("-" * len(head))
    for name, pub, p in rows:
        m, r = p.memory, p.runtime
        err = 100 * (m.peak_allocated_mib / pub.memory_mib - 1)
        print(f"{name:<11}{pub.memory_mib:>9.2f}{m.peak_allocated_mib:>10.2f}{err:>+7.2f}%"
              f"{pub.runtime_ms:>9.2f}{r.ms:>9.2f}{r.ms / pub.runtime_ms:>7.2f}"
              f"{100 * r.memory_bound_share:>9.0f}%{r.kernels:>8}  "
              f"{m.peak_module or '(root)'}:{m.peak_op}")
    published = [pub.runtime_ms for _, pub, _ in rows]
    errors = [abs(p.memory.peak_allocated_mib / pub.memory_mib - 1) for _, pub, p in rows]
    print(f"\nmemory: mean |error| {100 * statistics.mean(errors):.2f} %, "
          f"largest {100 * max(errors):.2f} %")
    print("Spearman rho with the published runtimes:")
    for label, values in (
        ("predicted runtime", [p.runtime.ms for *_, p in rows]),
        ("bytes moved", [p.runtime.bytes_moved for *_, p in rows]),
        ("FLOPs (published)", [pub.flops_g for _, pub, _ in rows]),
        ("#Acts (published)", [pub.acts_m for _, pub, _ in rows]),
    ):
        print(f"  {label:<20}{spearmanr(published, values).statistic:>7.3f}")


def bench_cpu(side: int, repeats: int) -> None:
    """The CPU path end to end: calibrate this CPU (one thread), then predict the nine reference
    models at 1x3xSIDExSIDE with that spec and time them with esrprof's clock (the fastest of
    ``repeats`` forwards after a warm-up, one thread)."""
    from scipy.stats import spearmanr

    from esrprof.prediction import predict
    from esrprof.prediction.microbench import calibrate
    from esrprof.timing import make_clock, pinned_threads
    from esrprof.zoo.registry import REGISTRY

    run = calibrate("cpu", side=96, threads=1)
    spec = run.spec
    cal = spec.calibration
    print(f"\nCPU: {spec.label}; calibrated constants: compute eff. {cal.compute_efficiency:.3f},"
          f" bandwidth eff. {cal.bandwidth_efficiency:.3f}, floor {cal.kernel_floor_us:.1f} us"
          f" (microbenchmarks: LOO RMS log error {cal.loo_rms_log_error:.2f})")
    print(f"{'model':<11}{'measured [ms]':>14}{'predicted':>11}{'ratio':>7}"
          f"{'3 constants':>13}{'ratio':>7}")
    measured, predicted, plain = [], [], []
    from dataclasses import replace

    bare = replace(spec, calibration=replace(cal, class_factors=()))
    clock = make_clock("cpu")
    with pinned_threads(1), torch.no_grad():
        for name, entry in REGISTRY.items():
            if entry.published is None:  # the nine Table 1 models
                continue
            model = entry.build().eval()
            x = torch.rand(1, 3, side, side)
            model(x)
            ms = min(clock.time_ms(lambda m=model, x=x: m(x)) for _ in range(repeats))
            p = predict(model, (1, 3, side, side), spec).runtime.ms
            q = predict(model, (1, 3, side, side), bare).runtime.ms
            measured.append(ms)
            predicted.append(p)
            plain.append(q)
            print(f"{name:<11}{ms:>14.2f}{p:>11.2f}{p / ms:>7.2f}{q:>13.2f}{q / ms:>7.2f}")
    ratios = sorted(p / m for p, m in zip(predicted, measured))
    print(f"with class factors: Spearman rho {spearmanr(measured, predicted).statistic:.3f}, "
          f"median ratio {ratios[len(ratios) // 2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}")
    ratios = sorted(p / m for p, m in zip(plain, measured))
    print(f"three constants:    Spearman rho {spearmanr(measured, plain).statistic:.3f}, "
          f"median ratio {ratios[len(ratios) // 2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--cpu", action="store_true",
                        help="calibrate this CPU and check the reference models on it")
    parser.add_argument("--cpu-side", type=int, default=64)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if args.cpu:
        bench_cpu(args.cpu_side, args.repeats)
        return
    if not args.skip_cost:
        bench_cost(args.sizes, args.repeats)
    if not args.skip_accuracy:
        bench_accuracy()


if __name__ == "__main__":
    main()
