"""``esrprof profile SPEC``: the efficiency card of one model class."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from esrprof.challenges import challenge
from esrprof.cli import run_options
from esrprof.cli._common import (
    add_challenge_argument,
    add_command,
    add_force,
    add_model_arguments,
    add_optional_int,
    parse_shape,
    warn,
)
from esrprof.counting.counters import parse_counters
from esrprof.errors import UsageError
from esrprof.files import check_target
from esrprof.prediction.gpus import gpu_spec
from esrprof.render_text import fit, width
from esrprof.specs import check_spec, check_weights, parse_kwargs

OUTPUT_FORMATS = ("text", "json", "csv", "md")


def add_output_arguments(p: Any) -> None:
    """--quiet and --format, shared by profile and zoo."""
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the figures, one per line")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="text",
                   help="text (the card, default) or the figures as json, csv or md on stdout "
                   "(counts as integers: MACs, parameters)")

# What `esrprof profile` profiles when no model is named: the challenge's IMDN baseline, by its
# module name so that it works from an installed wheel as from a checkout.
DEFAULT_SPEC = "esrprof.reference_models.imdn:IMDN"


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "profile",
        help="efficiency card of a model: params, FLOPs, activations, convs (and --run)",
        description="Count (and with --run, time) a model given as FILE.py:Class or "
        "package.module:Class.",
    )
    add_model_arguments(p, input_shape_help="input to count on (default 1,3,256,256, the "
                        "challenge's)", spec_default=DEFAULT_SPEC)
    p.add_argument("--counters", default=None, metavar="NAMES",
                   help="peer counters to run beside ours: fvcore,thop or all")
    add_optional_int(p, "--per-layer", const=15, metavar="N",
                     help="show every module nested by depth (type, output shape, params, "
                     "MACs, activations) and the top N layers by MACs (default 15)")
    p.add_argument("--depth", type=int, default=3, metavar="D",
                   help="deepest module level of the --per-layer table (default 3)")
    add_output_arguments(p)
    p.add_argument("--backend", choices=("auto", "fake", "real"), default="auto",
                   help="auto: shapes only, one real forward if the model needs values")
    add_challenge_argument(p)
    p.add_argument("--gpu", default=None, metavar="NAME|custom:...",
                   help="GPU for the predicted memory and runtime (default: the challenge "
                   "year's, an RTX A6000 for ntire2026; e.g. rtx-3090, a100, h100, or "
                   "custom:fp32_tflops=30,bandwidth_gbs=900)")
    p.add_argument("--no-predict", action="store_true",
                   help="skip the predicted GPU memory and runtime")
    p.add_argument("--name", default=None, help="name to record (default: the class name)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the full result here")
    add_force(p, "the --json file")
    run_options.add_run_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # every usage error first, without torch: a typo answers in milliseconds
    rules = challenge(args.challenge)
    if args.depth < 0:
        raise UsageError(f"--depth takes 0 or more, got {args.depth}")
    shape = parse_shape(args.input_shape)
    check_spec(args.spec)
    check_weights(args.weights)
    kwargs = parse_kwargs(args.kwargs)
    counters = parse_counters(args.counters) if args.counters else ()
    gpu = None
    if not args.no_predict and (args.gpu is not None or rules.preset.gpu):
        # a bad name ('' included) is a usage error before any work
        gpu = gpu_spec(rules.preset.gpu if args.gpu is None else args.gpu)
    elif args.no_predict and args.gpu is not None:
        warn(f"--gpu {args.gpu} is unused: --no-predict predicts nothing")
    if args.json:
        check_target(args.json, force=args.force)  # before the work, not after minutes of it
    run_config = run_options.run_config_from_args(args)
    # the work
    from esrprof import api, card, tables
    from esrprof.loading import load_model

    loaded = load_model(
        args.spec,
        kwargs,
        args.weights,
        allow_pickle=args.allow_pickle,
        name=args.name,
    )
    for note in loaded.notes:
        print(f"esrprof: note: {note}", file=sys.stderr)
    if run_config is not None:
        run_config = dataclasses.replace(run_config, trained=args.weights is not None)
    result = api.profile(
        loaded.model,
        shape,
        counters=counters,
        run=run_config,
        info=loaded.info,
        backend=args.backend,
        challenge=rules.name,
    )
    counts = result.counts
    cols = width()
    out = [card.counts_card(result.model, counts, rules, cols), "",
           card.divergence_summary(counts, cols=cols, convention=rules.counting.convention)]
    if counts.peers:
        out += ["", card.peers_table(counts, cols)]
    if gpu is not None:
        prediction, note = api.try_predict(loaded.model, gpu, rules.name)
        result = dataclasses.replace(result, prediction=prediction)
        out += ["", card.prediction_block(prediction, cols=cols) if prediction is not None else
                fit(f"Predicted GPU memory and runtime: not available ({note})", cols)]
    elif not args.no_predict:
        out += ["", fit(f"Predicted GPU memory and runtime: {rules.title} names no GPU; "
                        "choose one with --gpu", cols)]
    if args.per_layer and args.format == "text" and not args.quiet:
        from esrprof.counting.layers import layer_rows

        rows = layer_rows(loaded.model, counts, depth=args.depth)
        out += ["", card.layer_tree(rows, cols),
                "", card.layers_table(counts, top=args.per_layer, cols=cols)]
    if result.run is not None:
        out += ["", fit(run_options.render_run(result.run_blocks()), cols)]
    if args.json:
        path = result.save(args.json, force=args.force)
        out += ["", f"result written to {path}"]
    if args.format != "text":
        sys.stdout.write(tables.write([tables.result_figures(result)], args.format, single=True))
    elif args.quiet:
        print(tables.vertical(tables.result_figures(result)))
    else:
        print("\n".join(out), file=sys.stdout)
    return 0
