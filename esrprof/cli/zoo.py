"""``esrprof zoo``: the reference models, published figures beside ours (both conventions)."""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from typing import Any

from esrprof.cli._common import add_command
from esrprof.errors import UsageError

_NOTE_MARK = "*"
# Footnote a model whose complete count departs from its ntire2022 count by more than this.
_DIVERGENCE = 0.05


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "zoo",
        help="list the challenge's reference models with published and measured figures",
        description="Count every reference model (shapes only, no arithmetic) and show the "
        "NTIRE 2022 table's figures beside ours, in the ntire2022 convention and as complete "
        "MACs.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows here")
    p.add_argument("--no-predict", action="store_true",
                   help="skip the predicted GPU memory and runtime (Titan Xp, NTIRE 2022)")
    from esrprof.cli.profile import add_output_arguments

    add_output_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from esrprof.zoo.compare import measure_all
    from esrprof.zoo.registry import REGISTRY, get

    for name in args.names:
        try:
            get(name)
        except KeyError:
            raise UsageError(
                f"no reference model named {name!r}; known: {', '.join(REGISTRY)}"
            ) from None
    from esrprof import tables
    from esrprof.render_text import width

    rows = measure_all(args.names or None, predict=not args.no_predict)
    if args.format != "text":
        sys.stdout.write(tables.write([figures(r) for r in rows], args.format))
    elif args.quiet:
        print(tables.vertical({r.name: f"{r.measured.params_m:.3f} M params, "
                                       f"{r.measured.flops_g:.2f} G FLOPs, "
                                       f"{r.measured.acts_m:.2f} M acts, {r.measured.convs} convs"
                               for r in rows}))
    else:
        cols = width()
        print(render(rows, cols))
        if not args.no_predict:
            print()
            print(render_predictions(rows, cols))
    if args.json:
        from esrprof.files import write_text
        from esrprof.jsonio import dumps

        payload = {"input_shape": [1, 3, 256, 256], "models": [r.to_dict() for r in rows]}
        write_text(args.json, dumps(payload) + "\n")
        print(f"wrote {args.json}")
    return 0


def _pair(published: Any, ours: Any, fmt: str) -> list[str]:
    return ["-" if published is None else format(published, fmt), format(ours, fmt)]


def figures(r: Any) -> dict[str, Any]:
    """One model's row for --format: counts as integers, published figures in the table's
    units, the prediction where there is one."""
    from esrprof import tables

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


def render(rows: list[Any], cols: int | None = None) -> str:
    """The side-by-side table, then a footnote for every model with a documented difference.
    Within ``cols`` (default: the terminal's width, 80 when unknown)."""
    from esrprof.render_text import fit, simple, width

    cols = cols or width()
    full = cols >= _FULL_WIDTH

    table = []
    footnotes = []
    for r in rows:
        p, m = r.published, r.measured
        mark = ""
        diverges = abs(r.complete_macs_g - m.flops_g) > _DIVERGENCE * r.complete_macs_g
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
    lines = [
        "Reference models on 1x3x256x256. pub: the NTIRE 2022 report's Table 1.",
        "ours: esrprof's ntire2022 count (FLOPs = MACs, counted as the challenge did).",
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


def render_predictions(rows: list[Any], cols: int | None = None) -> str:
    """Predicted against published GPU memory and runtime (Titan Xp), with rank agreement."""
    from esrprof.render_text import fit, simple
    from esrprof.zoo.compare import spearman

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
    lines = [
        "Predicted on the NTIRE 2022 protocol (Titan Xp, fp32; memory at the largest validation "
        "image, 510x510, runtime at a typical one, 339x510) from the shape trace, not measured "
        "(bw-bound: the share of the time in bandwidth-limited kernels). "
        "See docs/prediction.md.",
        "",
        simple(table, headers),
    ]
    if rho is not None:
        lines += ["", f"Spearman ρ of predicted against published runtime: {rho:.3f} "
                      f"over {len(pub_rt)} models"]
    return fit("\n".join(lines), cols)
