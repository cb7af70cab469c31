"""``esrprof baseline save SPEC -o FILE`` / ``show FILE [--source]``: the base version a latency
gate compares with. A baseline is code (the gate executes its stored source); ``show`` says so
and ``show --source`` prints that source, with its diff against the file it came from."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from typing import Any

from esrprof.cli._common import add_command, add_model_arguments, parse_shape
from esrprof.environment import threads_text
from esrprof.errors import UsageError
from esrprof.jsonio import read_json
from esrprof.specs import check_spec, check_weights, parse_kwargs


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
                      help="latency samples to store (default 100)")
    save.add_argument("--threads", type=int, default=1,
                      help="intra-op threads while timing (default 1, as the gate)")
    save.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    save.add_argument("--name", default=None, help="name to record (default: the class name)")
    save.add_argument("--force", action="store_true", help="overwrite an existing baseline")
    save.add_argument("--reference", default=None, metavar="NAME|SPEC",
                      help="also time a reference network (e.g. imdn) beside the model, for "
                      "`esrprof gate --against-reference` (noisier than the default)")
    save.set_defaults(func=run_save)
    show = add_command(actions, "show", help="print what a baseline holds (it is code: review "
                       "it like code)")
    show.add_argument("file", help="baseline file")
    show.add_argument("--source", action="store_true",
                      help="print the stored source the gate executes, and its diff against "
                      "the file it came from when that file differs")
    show.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: _missing_action(p))


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def device_model(model: Any, device: str) -> Any:
    """The user's model on ``device``; an unusable device is one usage line."""
    from esrprof.latency.sampling import guarded
    from esrprof.probe import usable_device

    target = usable_device(device)
    return guarded(lambda: model.to(target), f"moving the model to {target}")()


def run_save(args: argparse.Namespace) -> int:
    # the model runs in a child process (esrprof.latency.isolation): os._exit or a signal in
    # it is one line and exit 1, never a silent exit 0 with no baseline written
    return _save(args)


def _save(args: argparse.Namespace) -> int:
    import math

    # usage errors first, without torch
    if args.samples < 8 or args.threads < 1:
        raise UsageError("--samples must be at least 8 and --threads at least 1")
    shape = parse_shape(args.input_shape)
    check_spec(args.spec)
    check_weights(args.weights)
    kwargs = parse_kwargs(args.kwargs)
    from esrprof.latency.baseline import refuse_existing, save_baseline  # the work
    from esrprof.latency.isolation import run_isolated

    refuse_existing(args.output, force=args.force)  # fail before minutes of timing
    baseline = run_isolated(save_in_child, (args, shape, kwargs),
                            what=f"timing {args.spec} for its baseline", bound_s=math.inf,
                            threads=args.threads)
    path = save_baseline(baseline, args.output, force=args.force)
    print(describe(baseline, str(path)))
    return 0


def save_in_child(args: argparse.Namespace, shape: Any, kwargs: dict[str, Any]) -> Any:
    """The part of ``baseline save`` that runs user code: in the child process."""
    from esrprof.latency.baseline import make_baseline
    from esrprof.loading import load_model

    loaded = load_model(args.spec, kwargs, args.weights, allow_pickle=args.allow_pickle,
                        name=args.name)
    model = device_model(loaded.model, args.device)
    return make_baseline(
        model,
        shape,
        kwargs=kwargs,
        spec=args.spec,
        name=loaded.info.name,
        samples=args.samples,
        threads=args.threads,
        reference=args.reference,
    )


def run_show(args: argparse.Namespace) -> int:
    read_json(args.file)  # a missing or broken file answers without torch
    from esrprof.latency.baseline import load_baseline

    baseline = load_baseline(args.file)
    text = describe(baseline, args.file)
    if args.source:
        text += "\n" + source_listing(baseline)
    print(visible(text))
    return 0


def hardware_text(environment: dict[str, Any]) -> str:
    """The machine a baseline was timed on, said the way ``--run`` says it ("1 thread")."""
    if environment.get("gpu_name"):
        return str(environment["gpu_name"])
    cpu, threads = environment.get("cpu_model"), environment.get("threads")
    if cpu and isinstance(threads, int):
        return f"{cpu}, {threads_text(threads)}"
    return str(environment.get("hardware"))


def describe(b: Any, where: str) -> str:
    from esrprof.latency.baseline import REVIEW_NOTE
    from esrprof.probe import shape_text

    base = b.base
    if base.git_revision:
        state = {True: ", with uncommitted changes", False: ""}.get(base.git_dirty, "")
        origin = f"git {base.git_revision[:12]}{state}"
    else:
        origin = "not tracked by git"
    lines = [
        f"baseline {where}: {b.name} ({b.class_name}) at {shape_text(b.input_shape)} "
        f"on {b.device}",
        f"  latency: median {b.median_ms:.3f} ms, fast end {b.fast_end_ms:.3f} ms "
        f"over {len(b.samples_ms)} samples",
        f"  hardware: {hardware_text(b.environment)}",
        f"  base source: {base.file} ({origin})",
        f"  source sha256: {base.sha256} (pin it: `esrprof gate --expect-sha256`)",
    ]
    if b.reference is not None:
        lines.append(f"  reference: {b.reference.spec}")
    lines.append(f"  note: {REVIEW_NOTE} (`esrprof baseline show {where} --source`)")
    return "\n".join(lines)


def visible(text: str) -> str:
    """``text`` with control and invisible format characters (ANSI escapes, carriage returns,
    bidi overrides) written as escapes: a source under review must not be able to hide a
    line from the terminal it is read on."""
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def source_listing(b: Any) -> str:
    """The stored source, then what differs from the file it came from (if anything); hidden
    characters are shown as escapes."""
    base = b.base
    state, diff = base.compare_with_file()
    diff = visible(diff)
    text = visible(base.source if base.source.endswith("\n") else base.source + "\n")
    lines = [f"--- stored source of {base.qualname} (executed by `esrprof gate`) ---", text]
    lines.append({
        "same": f"--- {base.file} is the same as the stored source ---",
        "missing": f"--- {base.file} does not exist here: no diff ---",
        "unreadable": f"--- {base.file} cannot be read: no diff ---",
        "differs": f"--- diff: stored source -> {base.file} now ---\n{diff}".rstrip("\n"),
    }[state])
    return "\n".join(lines)
