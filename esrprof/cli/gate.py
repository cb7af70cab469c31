"""``esrprof gate SPEC --baseline FILE``: fail (exit 1) when a model got slower than its base.

Exit codes: 0 pass, 1 regression or a model that fails (``sys.exit`` in it included), 2 usage
error or a bad baseline (corrupt, another model, input shape or hardware), or a time budget that
cannot hold the pairs.

Every line of user code (the candidate's file, its constructor and forward, the baseline's
stored source, a reference spec) runs in a child process (:mod:`esrprof.latency.isolation`):
this process only reads the command line and the baseline, then waits for the child's verdict.
A child that dies (``os._exit``, a signal) or outlives ``--max-seconds`` and its grace gives no
verdict, and no verdict is a failure: exit 1, one line naming the cause.
"""

from __future__ import annotations

import argparse
from typing import Any

from esrprof.cli._common import add_command, add_force, add_model_arguments, parse_shape
from esrprof.cli.baseline import device_model
from esrprof.files import check_target, write_json
from esrprof.jsonio import read_json
from esrprof.specs import check_spec, check_weights, parse_kwargs


def _seconds(text: str) -> float:
    from esrprof.errors import UsageError
    from esrprof.latency.sampling import positive_seconds

    try:
        return positive_seconds(text, what="")
    except UsageError:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a finite number of seconds above 0"
        ) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "gate",
        help="latency gate: time a model beside its baseline's base version, exit 1 if slower",
        description="Time the candidate and the base version stored in the baseline, "
        "interleaved call by call in one process with threads pinned, and fail when the median "
        "slow-down is above --max-slowdown (with a bootstrap confidence interval). The baseline "
        "is code: the gate executes the source stored in it.",
    )
    add_model_arguments(
        p,
        spec_help="candidate model: FILE.py:Class or package.module:Class",
        kwargs_help="candidate constructor arguments (default: the baseline's)",
        input_shape_default=None,
        input_shape_help="must match the baseline's (default: the baseline's)",
    )
    p.add_argument("--baseline", required=True, metavar="FILE",
                   help="baseline written by `esrprof baseline save` (it is code: review it)")
    p.add_argument("--max-slowdown", default="5%", metavar="PCT",
                   help="allowed slow-down of the candidate against its base (default 5%%)")
    p.add_argument("--check-absolute", action="store_true",
                   help="also fail when the candidate is slower than the baseline's stored "
                   "figure by more than --abs-max-slowdown (same hardware only). Off by "
                   "default: a loaded machine moves absolute times, so the figure is printed "
                   "as information")
    p.add_argument("--abs-max-slowdown", default=None, metavar="PCT",
                   help="limit of the absolute comparison (default 25%%); giving it implies "
                   "--check-absolute")
    p.add_argument("--no-absolute", action="store_true",
                   help="do not even print the absolute comparison")
    p.add_argument("--confidence", default="95%", metavar="PCT",
                   help="confidence of the interval the decision uses (default 95%%)")
    p.add_argument("--allow-other-hardware", action="store_true",
                   help="accept a baseline from other hardware (relative check only)")
    p.add_argument("--base", default=None, metavar="SPEC",
                   help="time this spec as the base instead of the baseline's stored source "
                   "(e.g. a checkout of the base revision)")
    p.add_argument("--against-reference", action="store_true",
                   help="time against the reference network stored in the baseline instead "
                   "of the base version (noisier; for a base that cannot be rebuilt)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--threads", type=_count, default=1,
                   help="intra-op threads (default 1: more threads made every method noisier)")
    p.add_argument("--min-pairs", type=_count, default=60, help="pairs before the first look")
    p.add_argument("--max-pairs", type=_count, default=600, help="most pairs to take")
    p.add_argument("--max-seconds", type=_seconds, default=60.0, metavar="S",
                   help="bound on the whole gate, base rebuild and warm-up included (default "
                   "60); a model too slow for the minimum pairs in it is refused at once")
    p.add_argument("--seed", type=int, default=0, help="seed of the input and the bootstrap")
    p.add_argument("--expect-sha256", default=None, metavar="HEX",
                   help="refuse the baseline unless its stored source has this sha256 (keep "
                   "the hash outside the baseline file, e.g. in the CI config: the one inside "
                   "it proves nothing against tampering)")
    p.add_argument("--trust-spec", action="store_true",
                   help="import the baseline's reference spec even when its file cannot be "
                   "checked (outside the baseline's folder and the working folder, or changed "
                   "since the baseline was saved)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the verdict here")
    add_force(p, "the --json file")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Any:
    """The command line as a GateConfig: every option checked before anything loads."""
    from esrprof.errors import UsageError
    from esrprof.latency.gate import (
        DEFAULT_ABS_MAX_SLOWDOWN,
        GateConfig,
        parse_confidence,
        parse_fraction,
    )
    from esrprof.latency.sampling import Budget

    if args.base and args.against_reference:
        raise UsageError("--base and --against-reference exclude each other")
    if args.no_absolute and (args.check_absolute or args.abs_max_slowdown is not None):
        raise UsageError("--no-absolute excludes --check-absolute and --abs-max-slowdown")
    absolute = "off" if args.no_absolute else "info"
    abs_limit = DEFAULT_ABS_MAX_SLOWDOWN
    if args.abs_max_slowdown is not None:
        abs_limit = parse_fraction(args.abs_max_slowdown, what="--abs-max-slowdown")
    if args.check_absolute or args.abs_max_slowdown is not None:
        absolute = "check"
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    return GateConfig(
        max_slowdown=parse_fraction(args.max_slowdown, what="--max-slowdown"),
        absolute=absolute,
        abs_max_slowdown=abs_limit,
        allow_other_hardware=args.allow_other_hardware,
        against_reference=args.against_reference,
        budget=Budget(min_pairs=args.min_pairs, max_pairs=args.max_pairs,
                      max_seconds=args.max_seconds),
        confidence=parse_confidence(args.confidence, what="--confidence"),
        threads=args.threads,
        seed=args.seed,
        trust_spec=args.trust_spec,
    )


def run(args: argparse.Namespace) -> int:
    shape, kwargs = _check(args)
    from esrprof.latency.sampling import Deadline  # the work

    # the bound holds from here, loading included
    return _run(args, shape, kwargs, Deadline(args.max_seconds))


def _check(args: argparse.Namespace) -> tuple[Any, Any]:
    """The usage errors that need no torch: a typo answers at once."""
    shape = parse_shape(args.input_shape) if args.input_shape else None
    check_spec(args.spec)
    if args.base:
        check_spec(args.base)
    check_weights(args.weights)
    kwargs = parse_kwargs(args.kwargs) if args.kwargs is not None else None
    if args.json:
        check_target(args.json, force=args.force)
    read_json(args.baseline)  # a missing or broken baseline answers at once
    return shape, kwargs


def _run(args: argparse.Namespace, shape: Any, kwargs: Any, deadline: Any) -> int:
    import sys

    from esrprof.latency.baseline import check_expected_sha256, load_baseline, source_notice
    from esrprof.latency.isolation import grace_seconds, run_isolated

    config = _config(args)
    baseline = load_baseline(args.baseline)
    if args.expect_sha256 is not None:
        check_expected_sha256(baseline, args.expect_sha256, args.baseline)
    else:
        notice = source_notice(baseline, args.baseline)
        if notice:
            print(f"esrprof: {notice}", file=sys.stderr)
    kwargs = kwargs if kwargs is not None else baseline.kwargs
    verdict = run_isolated(
        gate_in_child,
        (args, baseline, config, shape, kwargs, deadline),
        what=f"the gate timing {args.spec}",
        bound_s=deadline.left() + grace_seconds(args.max_seconds),
        threads=config.threads,
    )
    if args.json:
        write_json(args.json, verdict, kind="gate verdict", force=args.force)
    print(verdict.message())
    return verdict.exit_code


def gate_in_child(args: argparse.Namespace, baseline: Any, config: Any, shape: Any,
                  kwargs: dict[str, Any], deadline: Any) -> Any:
    """The part of the gate that runs user code: in the child process."""
    from esrprof.latency.gate import run_gate
    from esrprof.loading import build, load_model

    loaded = load_model(args.spec, kwargs, args.weights, allow_pickle=args.allow_pickle)
    candidate = device_model(loaded.model, args.device)
    base = build(args.base, baseline.kwargs) if args.base else None
    return run_gate(candidate, baseline, config, base=base, input_shape=shape,
                    name=loaded.info.name, deadline=deadline)
