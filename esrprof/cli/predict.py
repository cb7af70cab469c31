"""``esrprof predict``: predicted GPU figures for a model, or checked against measured runs."""

from __future__ import annotations

import argparse
from typing import Any

from esrprof.cli._common import add_command


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "predict",
        help="predict a model's GPU memory and runtime for a challenge, or check predictions "
        "against measured runs (--check results/*.json)",
        description="With a model spec: the prediction under a challenge's rules (its GPU and "
        "shapes, the ratio to its baseline and the predicted score). With --check: for every "
        "result record with a measured run, the runtime predicted for the device it ran on "
        "beside the measured one, the ratio, Spearman rho, and the op kinds the error follows.",
    )
    p.add_argument("spec", nargs="?", default=None, help="model spec (file.py:Class)")
    p.add_argument("--kwargs", default=None, help="constructor arguments as JSON")
    p.add_argument("--challenge", default=None,
                   help="the year's rules: ntire2022 ... ntire2026 (default: the latest)")
    p.add_argument("--gpu", default=None,
                   help="predict for this GPU (a name, custom:..., or file:SPEC.json)")
    p.add_argument("--check", nargs="+", default=None, metavar="RESULT.json",
                   help="result records to check predictions against")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the figures here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from esrprof.errors import UsageError

    if (args.spec is None) == (args.check is None):
        raise UsageError("give a model spec or --check RESULT.json ..., not both")
    if args.json:
        from esrprof.files import check_target

        check_target(args.json)
    payload = _check(args) if args.check is not None else _predict(args)
    if args.json:
        from esrprof.files import write_text
        from esrprof.jsonio import dumps

        write_text(args.json, dumps(payload) + "\n")
        print(f"wrote {args.json}")
    return 0


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from esrprof import card
    from esrprof.challenges import challenge
    from esrprof.loading import build, parse_kwargs
    from esrprof.prediction.api import predict_challenge
    from esrprof.prediction.gpus import gpu_spec

    rules = challenge(args.challenge)
    gpu = gpu_spec(args.gpu) if args.gpu else None  # a bad name fails before any work
    model = build(args.spec, parse_kwargs(args.kwargs))
    p = predict_challenge(model, rules.name, gpu)
    print(card.prediction_block(p))
    return p.to_dict()


def _check(args: argparse.Namespace) -> dict[str, Any]:
    from esrprof.prediction.check import check

    report = check(args.check, args.gpu)
    if not report.rows:
        from esrprof.errors import UsageError

        f, why = report.skipped[0]
        raise UsageError(f"none of the {len(report.skipped)} record(s) could be checked; "
                         f"{f}: {why}")
    if report.rows:
        print(f"{'record':<28}{'device':<26}{'measured':>10}{'predicted':>11}{'ratio':>7}"
              f"{'images':>8}")
        for r in report.rows:
            print(f"{r.model[:27]:<28}{r.device[:25]:<26}{r.measured_ms:>10.2f}"
                  f"{r.predicted_ms:>11.2f}{r.ratio:>7.2f}{r.images:>8}")
        med = report.median_ratio
        rho = report.spearman
        print(f"\n{len(report.rows)} record(s): median ratio predicted/measured {med:.2f}"
              + (f", Spearman rho {rho:.3f}" if rho is not None else
                 " (rho needs three records)"))
        kinds = report.error_by_kind()
        if kinds:
            print("the error follows (correlation of each kind's share of the predicted time "
                  "with log ratio; + over-, - under-predicted):")
            print("  " + ", ".join(f"{k} {c:+.2f}" for k, c in kinds[:4]))
    for f, why in report.skipped:
        print(f"skipped {f}: {why}")
    return report.to_dict()
