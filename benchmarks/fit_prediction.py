"""Fit the runtime constants of each GPU generation to every published figure, and judge them
out of sample.

For each generation with published runtimes of models esrprof can trace
(esrprof/prediction/published.py: Table 1 on the Titan Xp; the 2024-2026 baselines on the RTX
3090 and RTX A6000), it fits the constants (which ones are free is printed), then refits once
without each figure and predicts it: the LEAVE-ONE-OUT ratio per figure, its RMS log error,
Spearman rho and the share within +-25 %. In-sample figures are printed too, labelled as such.
docs/prediction.md quotes this output.

    python benchmarks/fit_prediction.py            # the table and the constants
    python benchmarks/fit_prediction.py --json     # the fitted calibrations as JSON
    python benchmarks/fit_prediction.py --classes  # + one free factor per suspect op class
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The bandwidth efficiency is the chip's (cache sizes, memory controller, the cuDNN kernels
# it gets): one per generation. The per-kernel floor is host-side work (Python, the
# dispatcher, cuDNN's per-call heuristic) of the same software era, and the compute
# efficiency never binds for these models: both are shared by all generations. One joint
# fit over every figure; with nine Titan Xp figures and two or three Ampere ones, a generation
# with a floor of its own would be fitted on two points.
PER_GENERATION = ("bandwidth_efficiency",)
# One cost class with a factor of its own, shared by all generations: the GEMM of an
# nn.Linear, which in an SR model is tall and skinny (M = H*W, K and N = a few dozen channels)
# and runs far below the bandwidth roofline. BSRN and MobileSR, the only figures with one, fix
# it; --classes shows the alternatives those two figures cannot rule out, and why this one.
CLASS_FACTORS = ("linear",)
# The compute efficiency is held at the datasheet's peak: these networks' arithmetic never
# limits them (cuDNN's Winograd 3x3 kernels do fewer multiplications than the direct count).
# Left free it takes ~0.7 in sample and the leave-one-out error grows (0.157 against 0.123).
HELD = {"compute_efficiency": 1.0}


def points_by_generation() -> dict[str, list]:
    from esrprof.prediction.api import _run_trace
    from esrprof.prediction.fit import Point
    from esrprof.prediction.gpus import gpu_spec
    from esrprof.prediction.published import all_figures
    from esrprof.zoo.registry import REGISTRY

    cache: dict[tuple, list] = {}
    out: dict[str, list] = {}
    for f in all_figures():
        spec = gpu_spec(f.gpu)
        key = (f.model, f.input_shape, spec.generation)
        if key not in cache:
            trace, _ = _run_trace(REGISTRY[f.model].build(), f.input_shape, "auto", None,
                                  cost=True, gpu=spec)
            cache[key] = trace.observers[1].rows
        out.setdefault(spec.generation, []).append(
            Point(f.key, cache[key], spec, f.runtime_ms))
    return out


def spearman(a: list[float], b: list[float]) -> float:
    if len(a) < 3:
        return math.nan
    from esrprof.rankstats import spearman as rho_p

    return rho_p(a, b)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the calibrations as JSON")
    parser.add_argument("--classes", action="store_true",
                        help="also refit with one free cost factor per suspect op class")
    args = parser.parse_args()

    from esrprof.prediction.fit import fit_joint, leave_one_out_joint, rms_log

    groups = points_by_generation()
    joint = fit_joint(groups, PER_GENERATION, HELD, CLASS_FACTORS)
    constants, factors, rms_all = joint.constants, joint.class_factors, joint.rms_log_error
    loo = leave_one_out_joint(groups, PER_GENERATION, HELD, CLASS_FACTORS)
    fitted = {}
    everything = []
    for gen, points in groups.items():
        c, held = constants[gen], loo[gen]
        ins = [p.predicted_ms(c, factors) for p in points]
        rms = math.sqrt(sum(math.log(i / p.runtime_ms) ** 2 for i, p in zip(ins, points))
                        / len(points))
        fitted[gen] = {"compute_efficiency": c[0], "bandwidth_efficiency": c[1],
                       "kernel_floor_us": c[2], "class_factors": factors,
                       "rms_log_error": rms, "loo_rms_log_error": rms_log(held),
                       "fitted_on": [p.key for p in points]}
        everything += held
        if args.json:
            continue
        print(f"\n{gen}: {len(points)} published figures; constants: compute eff. {c[0]:.3f}, "
              f"bandwidth eff. {c[1]:.3f}, floor {c[2]:.1f} us, class factors "
              + ", ".join(f"{k} {v:.2f}" for k, v in factors.items()))
        print(f"  {'figure':<22}{'published':>10}{'in-sample':>11}{'ratio':>7}"
              f"{'LOO pred':>10}{'LOO ratio':>10}")
        for p, i, h in zip(points, ins, held):
            print(f"  {p.key:<22}{p.runtime_ms:>10.2f}{i:>11.2f}{i / p.runtime_ms:>7.2f}"
                  f"{h.predicted_ms:>10.2f}{h.ratio:>10.2f}")
        pub = [p.runtime_ms for p in points]
        within = sum(abs(h.ratio - 1) <= 0.25 for h in held)
        print(f"  in-sample:     RMS log error {rms:.3f}, Spearman rho "
              f"{spearman(pub, ins):.3f}")
        print(f"  LEAVE-ONE-OUT: RMS log error {rms_log(held):.3f}, Spearman rho "
              f"{spearman(pub, [h.predicted_ms for h in held]):.3f}, ratio "
              f"{min(h.ratio for h in held):.2f}-{max(h.ratio for h in held):.2f}, "
              f"{within}/{len(held)} within +-25 %")
    if args.json:
        print(json.dumps(fitted, indent=2))
        return
    print(f"\nall figures: in-sample RMS log error {rms_all:.3f}; LEAVE-ONE-OUT RMS log error "
          f"{rms_log(everything):.3f}, {sum(abs(h.ratio - 1) <= 0.25 for h in everything)}/"
          f"{len(everything)} within +-25 %")
    print("held: " + ", ".join(f"{k} {v}" for k, v in HELD.items())
          + "; shared by all generations: per-kernel floor, class factors ("
          + ", ".join(CLASS_FACTORS) + "); per generation: " + ", ".join(PER_GENERATION))
    by_kind(groups, constants, factors, loo)
    if args.classes:
        suspect_classes(groups)


def by_kind(groups: dict[str, list], constants: dict, factors: dict, loo: dict) -> None:
    """Where the error sits: per op kind, its mean share of the predicted time and the
    correlation of that share with the leave-one-out log ratio (+: the more of that kind, the
    more the model is over-predicted; -: under-predicted), over all figures."""
    from esrprof.kinds import FLOOR, TIME_KINDS
    from esrprof.prediction.runtime import op_times
    from esrprof.rankstats import pearson

    shares: dict[str, list[float]] = {k: [] for k in TIME_KINDS}
    logs: list[float] = []
    for gen, points in groups.items():
        ec, eb, floor = constants[gen]
        for p, h in zip(points, loo[gen]):
            times = op_times(p.rows, peak_flops=p.gpu.peak_flops, bandwidth=p.gpu.bandwidth,
                             compute_efficiency=ec, bandwidth_efficiency=eb,
                             floor_s=floor * 1e-6, class_factors=factors)
            total = sum(t.seconds for t in times)
            per = dict.fromkeys(TIME_KINDS, 0.0)
            for t in times:
                per[t.row.group] += t.roofline_s
                per[FLOOR] += t.floor_s
            for k in TIME_KINDS:
                shares[k].append(per[k] / total)
            logs.append(math.log(h.ratio))
    print("\nwhere the error sits (all figures, leave-one-out):")
    print(f"  {'kind':<16}{'mean share':>11}{'max share':>11}{'corr. with log ratio':>22}")
    for k in TIME_KINDS:
        if max(shares[k]) < 1e-6:
            continue
        print(f"  {k:<16}{100 * sum(shares[k]) / len(logs):>10.0f}%{100 * max(shares[k]):>10.0f}%"
              f"{pearson(shares[k], logs):>+22.2f}")



# Op cost classes BSRN and MobileSR (the two figures the plain roofline under-predicts most)
# share: a free factor on any one of them is a candidate explanation.
SUSPECTS = {"depthwise conv": "conv_depthwise", "Linear (nn.Linear)": "linear", "GELU": "gelu"}


def suspect_classes(groups: dict[str, list]) -> None:
    """Refit the same joint model (bandwidth efficiency per generation, one shared floor,
    compute held) with a factor on one suspect cost class instead of CLASS_FACTORS. Prints
    its leave-one-out figures and which published figures contain the class at all: when
    several classes fit equally well and only the same figures contain them, the figures
    cannot say which class is slow."""
    from esrprof.prediction.fit import fit_joint, leave_one_out_joint, rms_log

    print("\none free factor per suspect op class (leave-one-out over all figures):")
    print(f"  {'class':<20}{'factor':>8}{'LOO RMS':>9}{'within 25 %':>13}  figures with it")
    for name, cls in SUSPECTS.items():
        factor = fit_joint(groups, PER_GENERATION, HELD, (cls,)).class_factors[cls]
        held = [h for hs in leave_one_out_joint(groups, PER_GENERATION, HELD, (cls,)).values()
                for h in hs]
        within = sum(abs(h.ratio - 1) <= 0.25 for h in held)
        having = [p.key.split("@")[0] for ps in groups.values() for p in ps
                  if any(r.cost_class == cls for r in p.rows)]
        print(f"  {name:<20}{factor:>8.1f}{rms_log(held):>9.3f}{within:>9}/{len(held):<3}  "
              + ", ".join(dict.fromkeys(having)))


if __name__ == "__main__":
    main()
