"""``esrprof zoo``: the reference models, published figures beside ours (both conventions)."""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from typing import Any

from esrprof import tables
from esrprof.challenges import CHALLENGES, challenge
from esrprof.cli._common import add_challenge_argument, add_command, add_force
from esrprof.cli.profile import add_output_arguments
from esrprof.errors import UsageError
from esrprof.files import check_target, write_json
from esrprof.render_text import fit, simple, width
from esrprof.zoo.fetch import fetch, plan
from esrprof.zoo.registry import REGISTRY, get

_NOTE_MARK = "*"
# Footnote a model whose complete count departs from its ntire2022 count by more than this.
_DIVERGENCE = 0.05


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "zoo",
        help="list the challenge's reference models with published and measured figures",
        description="Count every reference model (shapes only, no arithmetic) as the chosen "
        "challenge year counts, beside what that year published (the NTIRE 2022 table; a later "
        "year's baseline), and as complete MACs; then each year's baseline as published.",
    )
    add_challenge_argument(p)
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows here")
    add_force(p, "the --json file")
    p.add_argument("--no-predict", action="store_true",
                   help="skip the predicted GPU memory and runtime (the year's GPU)")
    g = p.add_argument_group(
        "esrprof zoo fetch NAME", "download NAME's released checkpoint and verify its sha256; "
        "an existing file is never replaced")
    g.add_argument("-o", "--output", default=None, metavar="PATH",
                   help="where to write it (a file, or a folder; default: its released file "
                   "name in the current folder)")
    g.add_argument("--url", default=None, help="download from here instead (a mirror, file://)")
    g.add_argument("--sha256", default=None, metavar="HEX",
                   help="the expected sha256 (needed where the registry knows none)")
    add_output_arguments(p)
    p.set_defaults(func=run)


_FETCH_OPTIONS = {"output": "-o/--output", "url": "--url", "sha256": "--sha256"}


def run(args: argparse.Namespace) -> int:
    if args.names and args.names[0].lower() == "fetch":
        return run_fetch(args)
    rules = challenge(args.challenge)
    given = [flag for dest, flag in _FETCH_OPTIONS.items() if getattr(args, dest) is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: only with `esrprof zoo fetch NAME`")
    for name in args.names:  # without torch: a typo answers at once
        try:
            get(name)
        except KeyError:
            raise UsageError(
                f"no reference model named {name!r}; known: {', '.join(REGISTRY)}"
            ) from None
    if args.json:
        check_target(args.json, force=args.force)  # before the work
    from esrprof.zoo.compare import measure_all  # the work

    rows = measure_all(args.names or None, predict=not args.no_predict, rules=rules)
    if args.format != "text":
        sys.stdout.write(tables.write([figures(r) for r in rows], args.format))
    elif args.quiet:
        print(tables.vertical({r.name: _quiet_line(r) for r in rows}))
    else:
        cols = width()
        print(render(rows, rules, cols))
        if not args.no_predict:
            print()
            print(render_predictions(rows, rules, cols))
        if not args.names:  # the whole zoo: also every year's baseline as published
            print()
            print(render_baselines(cols))
    if args.json:
        payload = {"challenge": rules.name, "input_shape": list(rules.counting.input_shape),
                   "models": [r.to_dict() for r in rows],
                   "baselines": {c.name: c.baseline.to_dict() for c in CHALLENGES.values()}}
        write_json(args.json, payload, kind="zoo", force=args.force)
        print(f"wrote {args.json}")
    return 0


def _pair(published: Any, ours: Any, fmt: str) -> list[str]:
    return ["-" if published is None else format(published, fmt),
            "n/a" if ours is None else format(ours, fmt)]


def _quiet_line(r: Any) -> str:
    m = r.measured
    flops = "n/a" if m.flops_g is None else f"{m.flops_g:.2f}"
    return (f"{m.params_m:.3f} M params, {flops} G FLOPs, {m.acts_m:.2f} M acts, "
            f"{m.convs} convs")


def figures(r: Any) -> dict[str, Any]:
    """One model's row for --format: counts as integers, published figures in the table's
    units, the prediction where there is one."""
    row: dict[str, Any] = {"model": r.name, "team": r.team}
    if r.counts is not None:
        row.update(tables.counts_figures(r.counts))
    else:  # pragma: no cover - measure() always keeps them
        row.update(params_m=r.measured.params_m, flops_g=r.measured.flops_g)
    p = r.published
    row.update(published_params_m=p and p.params_m, published_flops_g=p and p.flops_g,
               published_acts_m=p and p.acts_m, published_convs=p and p.convs,
               reproduced=r.reproduced)
    if r.prediction is not None:
        row.update(published_memory_mib=r.published_memory_mib,
                   published_runtime_ms=r.published_runtime_ms)
        row.update(tables.prediction_figures(r.prediction))
    return row


def _footnote(text: str, cols: int = 100) -> str:
    # Keep "9.43 G" on one line: wrap with the unit glued to its number, then unglue.
    glued = re.sub(r"(\d) ([GM])\b", "\\1\u00a0\\2", text)
    wrapped = textwrap.fill(glued, width=cols, subsequent_indent="  ", break_on_hyphens=False)
    return wrapped.replace("\u00a0", " ")


# Below this width the table leaves out the team and match columns (said under the table).
_FULL_WIDTH = 120


def render(rows: list[Any], rules: Any = None, cols: int | None = None) -> str:
    """The side-by-side table, then a footnote for every model with a documented difference.
    Within ``cols`` (default: the terminal's width, 80 when unknown)."""
    cols = cols or width()
    full = cols >= _FULL_WIDTH
    rules = challenge(rules or "ntire2022")
    table = []
    footnotes = []
    for r in rows:
        p, m = r.published, r.measured
        mark = ""
        diverges = (m.flops_g is not None
                    and abs(r.complete_macs_g - m.flops_g) > _DIVERGENCE * r.complete_macs_g)
        if r.differs_from_published or diverges:
            mark = _NOTE_MARK * (len(footnotes) + 1)
            footnotes.append(_footnote(f"{mark} {r.name}: {r.notes}", cols))
        status = {True: "yes", False: "NO: " + ",".join(r.mismatches()), None: "-"}[r.reproduced]
        if r.reproduced and r.differs_from_published:
            status = "yes" + mark
        cells = [
            r.name + mark,
            r.team,
            *_pair(p and p.params_m, m.params_m, ".3f"),
            *_pair(p and p.flops_g, m.flops_g, ".2f"),
            f"{r.complete_macs_g:.2f}",
            *_pair(p and p.acts_m, m.acts_m, ".2f"),
            *_pair(p and p.convs, m.convs, "d"),
            status,
        ]
        table.append(cells if full else [cells[0], *cells[2:-1]])
    narrow_headers = ["model", "#Params\n[M] pub", "\nours", "FLOPs\n[G] pub", "\nours",
                      "compl.\n[G]", "#Acts\n[M] pub", "\nours", "#Conv\npub", "\nours"]
    headers = [
        "model",
        "team",
        "#Params [M]\npub",
        "\nours",
        "FLOPs [G]\npub",
        "\nours",
        "complete\nMACs [G]",
        "#Acts [M]\npub",
        "\nours",
        "#Conv\npub",
        "\nours",
        "match",
    ]
    text = simple(table, headers if full else narrow_headers)
    if rules.name == "ntire2022":
        head = [
            "Reference models on 1x3x256x256. pub: the NTIRE 2022 report's Table 1.",
            "ours: esrprof's ntire2022 count (FLOPs = MACs, counted as the challenge did).",
        ]
    else:
        b = rules.baseline
        what = (f"its baseline {b.model} only ({b.published.source})" if b.published
                else "no figures")
        head = [
            f"Reference models on 1x3x256x256. pub: what {rules.title} published: {what}.",
            "The NTIRE 2022 table's figures: esrprof zoo --challenge ntire2022.",
            f"ours: esrprof's count under the {rules.rules_line} (MACs).",
        ]
    lines = [
        *head,
        "complete (compl.): every conv, linear, matmul and einsum MAC.",
        "match: ours equals the expected figure at the table's printed precision.",
        "",
        text,
    ]
    if not full:
        missed = [f"{r.name} ({', '.join(r.mismatches())})" for r in rows if r.reproduced is False]
        checked = [r for r in rows if r.reproduced is not None]
        lines += ["", fit("match: " + ("; ".join(f"NO for {m}" for m in missed) if missed else
                                       f"all {len(checked)} reproduce every figure"), cols),
                  fit("teams: " + "; ".join(f"{r.name} {r.team}" for r in rows if r.team), cols)]
    if footnotes:
        lines += ["", *footnotes]
    return fit("\n".join(lines), cols)


def render_predictions(rows: list[Any], rules: Any = None, cols: int | None = None) -> str:
    """Predicted against published GPU memory and runtime (the year's GPU), with rank
    agreement."""
    from esrprof.probe import shape_text
    from esrprof.zoo.compare import spearman

    rules = challenge(rules or "ntire2022")
    if rules.preset.gpu is None:
        return (f"Predicted GPU memory and runtime: {rules.title} names no GPU "
                "(esrprof profile --gpu NAME predicts on one you choose).")
    table, pub_rt, pred_rt = [], [], []
    for r in rows:
        p = r.prediction
        mem_pub, rt_pub = r.published_memory_mib, r.published_runtime_ms
        mem, rt = p.memory.peak_allocated_mib, p.runtime.ms
        table.append([
            r.name,
            "-" if mem_pub is None else f"{mem_pub:.2f}", f"{mem:.2f}",
            "-" if mem_pub is None else f"{100 * (mem - mem_pub) / mem_pub:+.2f} %",
            "-" if rt_pub is None else f"{rt_pub:.2f}", f"{rt:.2f}",
            "-" if rt_pub is None else f"{rt / rt_pub:.2f}",
            f"{100 * p.runtime.memory_bound_share:.0f} %",
        ])
        if rt_pub is not None:
            pub_rt.append(rt_pub)
            pred_rt.append(rt)
    rho = spearman(pub_rt, pred_rt)
    headers = ["model", "memory\n[MiB] pub", "\npredicted", "\nerror",
               "runtime\n[ms] pub", "\npredicted", "\nratio", "bw-\nbound"]
    gpu = rules.hardware.label.removeprefix("NVIDIA ").removeprefix("GeForce ")
    memory, runtime = (shape_text(s[2:]) for s in (rules.preset.memory_shape,
                                                    rules.preset.runtime_shape))
    lines = [
        f"Predicted on the {rules.title} protocol ({gpu}, fp32; memory at the largest "
        f"validation image, {memory},",
        f"runtime at a typical one, {runtime}) from the shape trace, not measured (bw-bound: "
        "the share of the time in bandwidth-limited kernels). "
        "See docs/prediction.md.",
        "",
        simple(table, headers),
    ]
    if rho is not None:
        lines += ["", f"Spearman ρ of predicted against published runtime: {rho:.3f} "
                      f"over {len(pub_rt)} models"]
    return fit("\n".join(lines), cols)


def run_fetch(args: argparse.Namespace) -> int:
    """``esrprof zoo fetch NAME``: download and verify one released checkpoint."""
    names = args.names[1:]
    if len(names) != 1:
        raise UsageError("esrprof zoo fetch takes one model name, e.g. esrprof zoo fetch RLFN")
    if args.json:
        raise UsageError("--json: not with esrprof zoo fetch")
    plan(names[0], args.output, url=args.url, sha256=args.sha256)  # usage errors first
    got = fetch(names[0], args.output, url=args.url, sha256=args.sha256)
    print(f"{got.path}: {got.model.name}'s checkpoint, {got.size} bytes, sha256 {got.sha256} "
          "(verified)")
    print(f"  esrprof profile {got.model.spec} --weights {got.path}")
    return 0


def render_baselines(cols: int | None = None) -> str:
    """Each year's baseline with the figures that year published, one row a year: their GPUs,
    data and FLOPs conventions differ, so the rows are a record, not a ranking."""
    table = []
    for rules in CHALLENGES.values():
        p = rules.baseline.published

        def f(value: Any, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        gpu = rules.hardware.label.removeprefix("NVIDIA ").removeprefix("GeForce ")
        table.append([
            rules.year, rules.baseline.model, gpu if rules.hardware.gpu else "-",
            f(p and p.runtime_ms, ".2f"), f(p and p.flops_g, ".2f"),
            rules.counting.convention, f(p and p.params_m, ".3f"),
            "-" if p is None or p.psnr_val is None else f"{p.psnr_val:.2f}/{p.psnr_test:.2f}",
        ])
    # #Acts and #Conv are scored by no year: they stay in --json, off this 80-column table
    headers = ["NTIRE", "baseline", "GPU", "runtime\n[ms]", "FLOPs\n[G]", "FLOPs\nconvention",
               "#Params\n[M]", "PSNR\nval/test"]
    return fit("\n".join([
        "Each year's baseline as that year published it (docs/challenges.md: sources).",
        "Different GPUs, data and FLOPs conventions: a record per year, not one ranking.",
        "",
        simple(table, headers),
    ]), cols)
