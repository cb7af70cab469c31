"""``esrprof gate SPEC --baseline FILE``: fail (exit 1) when a model got slower than its base.

Exit codes: 0 pass, 1 regression (the message gives the slow-down and its interval), 2 usage
error or a bad baseline (corrupt, another model, input shape or hardware).
"""

from __future__ import annotations

import argparse
from typing import Any

from esrprof.cli._common import add_command, add_model_arguments, parse_shape


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "gate",
        help="latency gate: time a model beside its baseline's base version, exit 1 if slower",
        description="Time the candidate and the base version stored in the baseline, "
        "interleaved call by call in one process with threads pinned, and fail when the median "
        "per-call slow-down is above --max-slowdown (with a bootstrap confidence interval).",
    )
    add_model_arguments(
        p,
        spec_help="candidate model: FILE.py:Class or package.module:Class",
        kwargs_help="candidate constructor arguments (default: the baseline's)",
        input_shape_default=None,
        input_shape_help="must match the baseline's (default: the baseline's)",
    )
    p.add_argument("--baseline", required=True, metavar="FILE",
                   help="baseline written by `esrprof baseline save`")
    p.add_argument("--max-slowdown", default="5%", metavar="PCT",
                   help="allowed slow-down of the candidate against its base (default 5%%)")
    p.add_argument("--abs-max-slowdown", default="25%", metavar="PCT",
                   help="allowed slow-down against the stored absolute latency, checked only on "
                   "the baseline's hardware (default 25%%)")
    p.add_argument("--no-absolute", action="store_true", help="skip the absolute check")
    p.add_argument("--allow-other-hardware", action="store_true",
                   help="accept a baseline from other hardware (relative check only)")
    p.add_argument("--base", default=None, metavar="SPEC",
                   help="time this spec as the base instead of the baseline's stored source "
                   "(e.g. a checkout of the base revision)")
    p.add_argument("--against-reference", action="store_true",
                   help="time against the reference network stored in the baseline instead "
                   "of the base version (noisier; for a base that cannot be rebuilt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads (default 1: more threads made every method noisier)")
    p.add_argument("--min-pairs", type=int, default=60, help="pairs before the first look")
    p.add_argument("--max-pairs", type=int, default=600, help="most pairs to take")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time budget for sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and the bootstrap")
    p.add_argument("--json", default=None, metavar="PATH", help="write the verdict here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from esrprof.baseline import load_baseline
    from esrprof.errors import UsageError
    from esrprof.gate import Budget, parse_fraction, run_gate
    from esrprof.loading import build, load_model, parse_kwargs
    from esrprof.results import atomic_write_text

    max_slow = parse_fraction(args.max_slowdown, what="--max-slowdown")
    abs_slow = None if args.no_absolute else parse_fraction(
        args.abs_max_slowdown, what="--abs-max-slowdown"
    )
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    budget = Budget(min_pairs=args.min_pairs, max_pairs=args.max_pairs,
                    max_seconds=args.max_seconds)
    baseline = load_baseline(args.baseline)
    shape = parse_shape(args.input_shape) if args.input_shape else None
    kwargs = parse_kwargs(args.kwargs) if args.kwargs is not None else baseline.kwargs
    loaded = load_model(args.spec, kwargs, args.weights, allow_pickle=args.allow_pickle)
    candidate = loaded.model.to(args.device)
    if args.base and args.against_reference:
        raise UsageError("--base and --against-reference exclude each other")
    base = build(args.base, baseline.kwargs) if args.base else None
    verdict = run_gate(
        candidate,
        baseline,
        base=base,
        input_shape=shape,
        max_slowdown=max_slow,
        abs_max_slowdown=abs_slow,
        allow_other_hardware=args.allow_other_hardware,
        budget=budget,
        threads=args.threads,
        seed=args.seed,
        name=loaded.info.name,
        against_reference=args.against_reference,
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(verdict.to_dict(), indent=2) + "\n")
    print(verdict.message())
    return verdict.exit_code
