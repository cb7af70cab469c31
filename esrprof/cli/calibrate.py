"""``esrprof calibrate``: measure this device's runtime constants with microbenchmarks."""

from __future__ import annotations

import argparse
from typing import Any

from esrprof.cli._common import add_command


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "calibrate",
        help="measure this device's runtime constants (microbenchmarks) for --gpu file:SPEC",
        description="Run one microbenchmark per op cost class (copy, kernel floor, "
        "convolutions by shape class, nn.Linear over channels, pooling, interpolation, "
        "pixel-shuffle, layer-norm, GELU, "
        "softmax, permute copies, SDPA; fp16 convolutions on a GPU) on the device, fit the "
        "runtime constants to them and write a spec that --gpu file:SPEC uses.",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("-o", "--output", required=True, metavar="SPEC.json",
                   help="where to write the spec")
    p.add_argument("--side", type=int, default=96,
                   help="input side of the benchmarks in pixels (default 96)")
    p.add_argument("--repeats", type=int, default=9, help="timed calls per benchmark (the "
                   "fastest counts; default 9)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for the benchmarks (default 1)")
    p.add_argument("--name", default=None, help="a label for the device")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from esrprof.errors import UsageError
    from esrprof.files import check_target, write_text
    from esrprof.jsonio import dumps
    from esrprof.prediction.microbench import calibrate

    if args.repeats < 1 or args.threads < 1:
        raise UsageError("--repeats and --threads must be at least 1")
    check_target(args.output)  # before the benchmarks, not after them
    result = calibrate(args.device, side=args.side, repeats=args.repeats, name=args.name,
                       threads=args.threads)
    cal = result.spec.calibration
    assert cal is not None
    print(f"Calibrated {result.spec.label} ({result.device}, {result.spec.generation}), "
          f"inputs of {args.side}x{args.side}")
    print(f"  peak (best fp32 3x3 conv) {result.spec.fp32_tflops * 1e3:.1f} GFLOP/s, "
          f"bandwidth (copy) {result.spec.bandwidth_gbs:.1f} GB/s")
    print(f"  constants: compute eff. {cal.compute_efficiency:.3f}, bandwidth eff. "
          f"{cal.bandwidth_efficiency:.3f}, floor {cal.kernel_floor_us:.1f} us; RMS log error "
          f"{cal.rms_log_error:.3f} in-sample, {cal.loo_rms_log_error:.3f} leave-one-out")
    print(f"  {'benchmark':<22}{'measured [ms]':>14}{'3 constants':>13}{'ratio':>7}  class")
    for r in result.results:
        print(f"  {r.name:<22}{r.measured_ms:>14.3f}{r.predicted_ms:>13.3f}{r.ratio:>7.2f}  "
              f"{r.cost_class}")
    print("  class factors (measured / roofline): " + ", ".join(
        f"{c} {f:.2f}" for c, f in cal.class_factors))
    write_text(args.output, dumps(result.to_dict()) + "\n")
    print(f"spec written to {args.output}; use it with --gpu file:{args.output}")
    return 0
