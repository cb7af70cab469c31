"""``esrprof baseline save SPEC -o FILE``: record the base version a latency gate compares with."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from esrprof.cli._common import add_command, add_model_arguments, parse_shape


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "baseline",
        help="save or show a latency baseline for `esrprof gate`",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    save = add_command(
        actions,
        "save",
        help="time a model and store it (source, kwargs, input shape, latency, environment)",
    )
    add_model_arguments(save, input_shape_help="input the gate will time on (default "
                        "1,3,256,256)")
    save.add_argument("-o", "--output", required=True, metavar="FILE",
                      help="baseline file to write (refuses to overwrite without --force)")
    save.add_argument("--samples", type=int, default=100,
                      help="absolute latency samples to store (default 100)")
    save.add_argument("--threads", type=int, default=1,
                      help="intra-op threads while timing (default 1, as the gate)")
    save.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    save.add_argument("--name", default=None, help="name to record (default: the class name)")
    save.add_argument("--force", action="store_true", help="overwrite an existing baseline")
    save.add_argument("--reference", default=None, metavar="NAME|SPEC",
                      help="also time a reference network (e.g. imdn) beside the model, for "
                      "`esrprof gate --against-reference` (noisier than the default)")
    save.set_defaults(func=run_save)
    show = add_command(actions, "show", help="print what a baseline holds")
    show.add_argument("file", help="baseline file")
    show.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: _missing_action(p))


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_save(args: argparse.Namespace) -> int:
    from pathlib import Path

    from esrprof.baseline import make_baseline, save_baseline
    from esrprof.errors import UsageError
    from esrprof.loading import load_model, parse_kwargs, resolve

    if args.samples < 8 or args.threads < 1:
        raise UsageError("--samples must be at least 8 and --threads at least 1")
    shape = parse_shape(args.input_shape)
    kwargs = parse_kwargs(args.kwargs)
    if Path(args.output).exists() and not args.force:  # fail before minutes of timing
        raise UsageError(f"{args.output} exists; pass --force to overwrite the baseline")
    loaded = load_model(args.spec, kwargs, args.weights, allow_pickle=args.allow_pickle,
                        name=args.name)
    model = loaded.model.to(args.device)
    baseline = make_baseline(
        model,
        shape,
        factory=resolve(args.spec),
        kwargs=kwargs,
        spec=args.spec,
        name=loaded.info.name,
        samples=args.samples,
        threads=args.threads,
        reference=args.reference,
    )
    path = save_baseline(baseline, args.output, force=args.force)
    print(_describe(baseline, str(path)))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from esrprof.baseline import load_baseline

    print(_describe(load_baseline(args.file), args.file))
    return 0


def _describe(b: Any, where: str) -> str:
    shape = "x".join(map(str, b.input_shape))
    rev = f", git {b.base.git_revision[:12]}" if b.base.git_revision else ""
    return (
        f"baseline {where}: {b.name} ({b.class_name}) at {shape} on {b.device}\n"
        f"  latency: median {b.median_ms:.3f} ms, fast end {b.fast_end_ms:.3f} ms "
        f"over {len(b.samples_ms)} samples\n"
        f"  hardware: {b.hardware}\n"
        f"  base source: {b.base.file} (sha256 {b.base.sha256[:12]}{rev})"
        + (f"\n  reference: {b.reference.spec}" if b.reference is not None else "")
    )
