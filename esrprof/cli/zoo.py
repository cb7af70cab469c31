"""``esrprof zoo``: the reference models, published figures beside ours (both conventions)."""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any

from esrprof.cli._common import add_command, add_force
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
    add_force(p, "the --json file")
    p.add_argument("--no-predict", action="store_true",
                   help="skip the predicted GPU memory and runtime (Titan Xp, NTIRE 2022)")
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
    if args.json:
        from esrprof.files import check_target

        check_target(args.json, force=args.force)  # before the work
    rows = measure_all(args.names or None, predict=not args.no_predict)
    print(render(rows))
    if not args.no_predict:
        print()
        print(render_predictions(rows))
    if args.json:
        from esrprof.files import write_json

        payload = {"input_shape": [1, 3, 256, 256], "models": [r.to_dict() for r in rows]}
        write_json(args.json, payload, kind="zoo", force=args.force)
        print(f"wrote {args.json}")
    return 0


def _pair(published: Any, ours: Any, fmt: str) -> list[str]:
    return ["-" if published is None else format(published, fmt), format(ours, fmt)]


def _footnote(text: str) -> str:
    # Keep "9.43 G" on one line: wrap with the unit glued to its number, then unglue.
    glued = re.sub(r"(\d) ([GM])\b", "\\1\u00a0\\2", text)
    wrapped = textwrap.fill(glued, width=100, subsequent_indent="  ", break_on_hyphens=False)
    return wrapped.replace("\u00a0", " ")


def render(rows: list[Any]) -> str:
    """The side-by-side table, then a footnote for every model with a documented difference."""
    from tabulate import tabulate

    table = []
    footnotes = []
    for r in rows:
        p, m = r.published, r.measured
        mark = ""
        diverges = abs(r.complete_macs_g - m.flops_g) > _DIVERGENCE * r.complete_macs_g
        if r.differs_from_published or diverges:
            mark = _NOTE_MARK * (len(footnotes) + 1)
            footnotes.append(_footnote(f"{mark} {r.name}: {r.notes}"))
        status = {True: "yes", False: "NO: " + ",".join(r.mismatches()), None: "-"}[r.reproduced]
        if r.reproduced and r.differs_from_published:
            status = "yes" + mark
        table.append(
            [
                r.name + mark,
                r.team,
                *_pair(p and p.params_m, m.params_m, ".3f"),
                *_pair(p and p.flops_g, m.flops_g, ".2f"),
                f"{r.complete_macs_g:.2f}",
                *_pair(p and p.acts_m, m.acts_m, ".2f"),
                *_pair(p and p.convs, m.convs, "d"),
                status,
            ]
        )
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
    text = tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)
    lines = [
        "Reference models on 1x3x256x256. pub: the NTIRE 2022 report's Table 1.",
        "ours: esrprof's ntire2022 count (FLOPs = MACs, counted as the challenge did).",
        "complete: every conv, linear, matmul and einsum MAC.",
        "match: ours equals the expected figure at the table's printed precision.",
        "",
        text,
    ]
    if footnotes:
        lines += ["", *footnotes]
    return "\n".join(lines)


def render_predictions(rows: list[Any]) -> str:
    """Predicted against published GPU memory and runtime (Titan Xp), with rank agreement."""
    from tabulate import tabulate

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
    headers = ["model", "memory [MiB]\npub", "\npredicted", "\nerror",
               "runtime [ms]\npub", "\npredicted", "\nratio", "bandwidth-\nbound"]
    lines = [
        "Predicted on the NTIRE 2022 protocol (Titan Xp, fp32; memory at the largest validation "
        "image, 510x510,",
        "runtime at a typical one, 339x510) from the shape trace, not measured. "
        "See docs/prediction.md.",
        "",
        tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True),
    ]
    if rho is not None:
        lines += ["", f"Spearman ρ of predicted against published runtime: {rho:.3f} "
                      f"over {len(pub_rt)} models"]
    return "\n".join(lines)
