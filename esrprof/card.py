"""The terminal card of ``esrprof profile``: the challenge's figures, the complete count,
divergences, peers, top layers.

Pure functions from result objects to text; nothing here measures anything. Every function
takes ``cols``, the width to fit (default :func:`esrprof.render_text.width`: 80 columns unless
the terminal is wider).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from esrprof.challenges import CHALLENGES, CONVENTIONS, Challenge, challenge
from esrprof.kinds import TIME_WORDS
from esrprof.prediction.kinds import KINDS
from esrprof.probe import shape_text
from esrprof.render_text import fit, table, width

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.prediction.api import Prediction
    from esrprof.results import Counts, ModelInfo


def _g(macs: int) -> str:
    return f"{macs / 1e9:.2f}"


def _m(n: int) -> str:
    return f"{n / 1e6:.2f}"


def _convention(counts: Counts, convention: str) -> Any | None:
    """One convention's macs/activations/convs; None where the counts lack it (an old record)."""
    return getattr(counts, convention, None)


def counts_card(info: ModelInfo, counts: Counts, rules: Challenge | None = None,
                cols: int | None = None) -> str:
    """The header and the challenge's four figures, counted as ``rules`` (a challenge year;
    default NTIRE 2022) counts them, with the other convention's FLOPs where they differ."""
    shape = shape_text(counts.input_shape)
    how = {
        "meta": "on meta tensors (no arithmetic)",
        "fake": "on fake tensors (no arithmetic)",
        "real": "with one real forward",
    }.get(counts.backend, counts.backend)
    lines = [
        f"{info.name}" + (f"  ({info.spec})" if info.spec and info.spec != info.name else ""),
        f"input {shape}, counted {how} in {counts.seconds * 1000:.0f} ms",
    ]
    if counts.fallback_reason:
        lines.append(f"  note: shapes alone were not enough ({counts.fallback_reason})")
    n = counts.ntire2022
    rules = rules or challenge("ntire2022")
    flops = _convention(counts, rules.counting.convention)
    header = (f"{rules.rules_line} (FLOPs = multiply-accumulates)"
              if rules.name != "ntire2022" else
              "NTIRE 2022 convention (FLOPs = multiply-accumulates, as the challenge counted them)")
    lines += [
        "",
        header,
        tabulate(
            [[f"{counts.params / 1e6:.3f}", _g(flops.macs) if flops is not None else "n/a",
              _m(n.activations), n.convs]],
            headers=["#Params [M]", "FLOPs [G]", "#Acts [M]", "#Conv"],
            tablefmt="simple",
            disable_numparse=True,
        ),
        f"buffers: {counts.buffers:,} elements (not counted by the challenge)",
    ]
    lines += _other_conventions(counts, rules)
    lines.append("")
    lines.append(complete_table(counts, cols))
    return fit("\n".join(lines), cols)


def _other_conventions(counts: Counts, rules: Challenge) -> list[str]:
    """One line per other convention whose FLOPs differ at the printed precision (0.01 G)."""
    ours = _convention(counts, rules.counting.convention)
    if ours is None:
        return [f"FLOPs by the {rules.counting.convention} convention: not available in this "
                "build"]
    out = []
    for convention in CONVENTIONS:
        other = _convention(counts, convention)
        if convention == rules.counting.convention or other is None:
            continue
        if _g(other.macs) != _g(ours.macs):
            years = ", ".join(c.title for c in CHALLENGES.values()
                              if c.counting.convention == convention)
            out.append(f"FLOPs by the {convention} convention ({years}): {_g(other.macs)} G")
    return out


def complete_table(counts: Counts, cols: int | None = None) -> str:
    c = counts.complete
    rows = [[kind, _g(macs)] for kind, macs in sorted(c.macs_by_kind.items(),
                                                      key=lambda kv: -kv[1])]
    rows.append(["total", _g(c.macs)])
    out = [
        f"Complete count (every aten op): {_g(c.macs)} G MACs = {_g(c.flops)} G FLOPs",
        tabulate(rows, headers=["MAC kind", "MACs [G]"], tablefmt="simple",
                 disable_numparse=True),
    ]
    if c.elements_by_kind:
        tallies = ", ".join(f"{k.replace('_', ' ')} {_m(v)} M"
                            for k, v in sorted(c.elements_by_kind.items(), key=lambda kv: -kv[1]))
        out.append(f"element tallies (output elements, not MACs): {tallies}")
    if c.uncounted_ops:
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(c.uncounted_ops.items()))
        out.append(f"ops with no cost formula (their cost is missing from the total): {ops}")
    return fit("\n".join(out), cols)


def divergence_summary(counts: Counts, top: int = 5, cols: int | None = None,
                       convention: str = "ntire2022") -> str:
    """Where ``convention`` (the year's: ntire2022, or ntire2024 = fvcore) and the complete
    count part, grouped by reason, then the largest layers."""
    divs = (counts.ntire2024_divergences if convention == "ntire2024"
            else counts.divergences)
    if not divs:
        return (f"Divergences: none — {convention} and the complete count agree on every "
                "layer.")
    total = sum(d.difference for d in divs)
    groups: dict[str, list] = defaultdict(list)
    for d in divs:
        groups[d.reason].append(d)
    lines = [
        f"Divergences: {convention} - complete = {total / 1e9:+.2f} G over {len(divs)} "
        "layer(s)",
    ]
    rows = [
        [len(group), f"{sum(d.difference for d in group) / 1e9:+.3f}", reason]
        for reason, group in sorted(groups.items(), key=lambda kv: -abs(sum(
            d.difference for d in kv[1])))
    ]
    cols = cols or width()
    lines.append(table(rows, ["layers", "diff [G]", "why"], cols=cols, wrap=(2,)))
    biggest = sorted(divs, key=lambda d: -abs(d.difference))[:top]
    lines.append("")
    where = "counts.ntire2024_divergences" if convention == "ntire2024" else "counts.divergences"
    if len(divs) > len(biggest):
        lines.append(f"the {len(biggest)} largest of {len(divs)} layers (all of them: --json, "
                     f"under {where})")
    lines.append(table(
        [[d.module or "(root)", d.module_type, _m(d.difference + d.complete_macs),
          _m(d.complete_macs), f"{d.difference / 1e6:+.2f}"] for d in biggest],
        ["layer", "type", f"{convention} [M]", "complete [M]", "diff [M]"],
        cols=cols, wrap=(0, 1),
    ))
    return fit("\n".join(lines), cols)


def peers_table(counts: Counts, cols: int | None = None) -> str:
    rows = []
    for name, peer in counts.peers.items():
        rel = counts.peer_rel_diff(name)
        rows.append([
            name,
            _g(peer.macs) if peer.macs is not None else "-",
            f"{rel * 100:+.2f} %" if rel is not None else "-",
            f"{peer.seconds:.2f}",
            peer.error or "",
        ])
    return "Peers (same model, same input)\n" + table(
        rows, ["counter", "MACs [G]", "vs complete", "time [s]", "note"], cols=cols, wrap=(4,))


def layers_table(counts: Counts, top: int = 15, cols: int | None = None) -> str:
    """The ``top`` (module, op) records by complete MACs, flat."""
    ntire = {r.module: r.macs for r in counts.ntire2022_layers}
    rows = sorted(counts.ops, key=lambda r: -r.macs)[:top]
    return f"Top {len(rows)} layers by MACs (complete)\n" + table(
        [[r.module or "(root)", r.module_type, r.op.removeprefix("aten."), r.calls,
          _g(r.macs), _m(r.output_elements), _g(ntire.get(r.module, 0))] for r in rows],
        ["layer", "type", "op", "calls", "MACs\n[G]", "out\n[M]", "ntire2022\n[G]"],
        cols=cols, wrap=(0, 2, 1))


_KIND_WORDS = TIME_WORDS


def prediction_block(p: Prediction, top_kinds: int = 4, cols: int | None = None) -> str:
    """The block ``esrprof profile`` prints, plainly labelled as a prediction."""
    m, r = p.memory, p.runtime
    on_protocol = p.preset is not None
    rules = CHALLENGES.get(p.preset or "")
    protocol = (f"the {rules.title if rules else p.preset} protocol on " if on_protocol else "")
    kinds = sorted((k for k in r.by_kind if k.kind in KINDS and k.ms > 0),
                   key=lambda k: -k.ms)[:top_kinds]
    lines = [
        f"Predicted, not measured ({protocol}{p.gpu.label}, {p.dtype}, from the shape trace)",
        f"  peak GPU memory {m.peak_allocated_mib:9.1f} MiB at {shape_text(m.input_shape)}"
        + (", the largest validation image" if on_protocol else "")
        + f" (weights {m.weights_mib:.1f} MiB)",
        f"  {'':16}peak at {m.peak_module or '(root)'} ({m.peak_op})",
        f"  runtime         {r.ms:9.1f} ms  at {shape_text(r.input_shape)}"
        + (", a typical image" if on_protocol else "") + f"; {r.kernels} kernels",
        f"  {'':16}{100 * r.memory_bound_share:.0f} % of the time in bandwidth-limited kernels",
    ]
    if kinds:
        lines.append("  time by kind    " + ", ".join(
            f"{_KIND_WORDS.get(k.kind, k.kind)} {100 * k.share:.0f} %" for k in kinds))
    rel = p.relative
    if rel is not None:
        scaled = (f" (x {rel.baseline_published_ms:g} ms: {rel.runtime_ms_scaled:.2f} ms)"
                  if rel.runtime_ms_scaled is not None else "")
        lines.append(f"  vs {rel.baseline:<12} runtime ratio {rel.runtime_ratio:.2f}, both on "
                     f"this GPU{scaled}")
        if rel.score is not None:
            lines.append(f"  {'':16}predicted score {rel.score:.3f} (baseline "
                         f"{sum(rel.weights) * 7.3891:.3f}; exact FLOPs, params)")
    if p.attention:
        lines.append("  attention       SDPA runs as " + ", ".join(p.attention)
                     + (" (no L x L scores stored)" if set(p.attention) != {"math"} else ""))
    if p.autograd:
        lines.append("  autograd        ON: saved tensors stay alive (in the memory above)")
        if p.preset is not None:
            # the scripts freeze registered parameters only; the forward made the rest
            lines.append(f"  {'':16}the challenge's script has no no_grad: a tensor the "
                         "forward makes requires grad")
    cal = p.calibration
    if cal.assumption and not cal.fitted_on:
        # a generation without published figures borrows a fitted one's (calibration.py)
        lines.append(f"  constants       {cal.generation}: none published, Ampere's used")
    if p.fallback_reason:
        lines.append(f"  note: traced on {p.backend} tensors ({p.fallback_reason})")
    return fit("\n".join(lines), cols)


def layer_tree(rows: Sequence[Any], cols: int | None = None, title: str = "") -> str:
    """The per-layer table, torchinfo-style: one row per module, nested by depth, with its
    type, output shape, parameters, MACs (complete) and activations (ntire2022 #Acts), each
    over the module's subtree (rows of :func:`esrprof.counting.layers.layer_rows`)."""
    table_rows = []
    for r in rows:
        name = r.module.rsplit(".", 1)[-1] if r.module else ""
        label = ("| " * (r.depth - 1) + "+-" if r.depth else "") + r.module_type
        if name:
            label += f" ({name})"
        table_rows.append([
            label,
            shape_text(r.output_shape) if r.output_shape is not None else "--",
            f"{r.params:,}" if r.params else "--",
            f"{r.macs / 1e6:,.2f}" if r.macs else "--",
            f"{r.activations / 1e6:,.2f}" if r.activations else "--",
        ])
    head = title or "Per layer (each module's subtree; MACs: complete count, acts: ntire2022)"
    return fit(head, cols) + "\n" + table(
        table_rows, ["layer (type)", "output shape", "params", "MACs [M]", "acts [M]"],
        cols=cols, wrap=(0,), colalign=("left", "left", "right", "right", "right"))
