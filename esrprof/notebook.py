"""How Counts, Prediction and Result read: ``__str__`` (a short card), ``_repr_markdown_`` and
``_repr_html_`` (Jupyter) and ``to_dataframe()`` (pandas, imported here only when asked).

The records keep thin methods that call these, so rendering lives apart from the data. Nothing
here imports the records (they import this), so the functions are duck-typed.
"""

from __future__ import annotations

import html
from typing import Any

from esrprof import tables
from esrprof.extras import require


def _shape(shape: Any) -> str:
    return "x".join(str(int(d)) for d in shape)


# ---------------------------------------------------------------------------------- Counts


def counts_lines(counts: Any) -> list[tuple[str, str]]:
    """(label, value) pairs of a Counts, in the challenge's units."""
    n, c = counts.ntire2022, counts.complete
    pairs = [
        ("input", _shape(counts.input_shape)),
        ("#Params", f"{counts.params / 1e6:.3f} M ({counts.params:,})"),
        ("FLOPs (ntire2022 MACs)", f"{n.macs / 1e9:.2f} G"),
        *([("FLOPs (ntire2024 = fvcore)", f"{counts.ntire2024.macs / 1e9:.2f} G")]
          if getattr(counts, "ntire2024", None) is not None else []),
        ("#Acts", f"{n.activations / 1e6:.2f} M"),
        ("#Conv", f"{n.convs}"),
        ("complete MACs", f"{c.macs / 1e9:.2f} G"),
    ]
    if counts.divergences:
        diff = sum(d.difference for d in counts.divergences)
        pairs.append(("ntire2022 - complete", f"{diff / 1e9:+.2f} G over "
                      f"{len(counts.divergences)} layer(s)"))
    later = getattr(counts, "ntire2024_divergences", ())
    if later:
        diff = sum(d.difference for d in later)
        pairs.append(("ntire2024 - complete", f"{diff / 1e9:+.2f} G over {len(later)} "
                      "layer(s)"))
    if counts.fallback_reason:
        pairs.append(("note", f"counted with backend {counts.backend}: "
                      f"{counts.fallback_reason}"))
    return pairs


def counts_str(counts: Any) -> str:
    pairs = counts_lines(counts)
    w = max(len(k) for k, _ in pairs)
    return "Counts\n" + "\n".join(f"  {k:<{w}}  {v}" for k, v in pairs)


def _md(pairs: list[tuple[str, str]], title: str) -> str:
    rows = "\n".join(f"| {k} | {tables._md_escape(v)} |" for k, v in pairs)
    return f"**{title}**\n\n| | |\n|---|---|\n{rows}\n"


def _html(pairs: list[tuple[str, str]], title: str) -> str:
    rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                   f"<td style='text-align:right'>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f"<b>{html.escape(title)}</b><table>{rows}</table>"


def counts_markdown(counts: Any) -> str:
    return _md(counts_lines(counts), "Counts")


def counts_html(counts: Any) -> str:
    return _html(counts_lines(counts), "Counts")


def counts_dataframe(counts: Any) -> Any:
    """One row per (module, op) record of the complete count, with the module's ntire2022
    figures beside it (the raw records every total is derived from)."""
    pd = require("pandas", "to_dataframe()")

    ntire = {r.module: r for r in counts.ntire2022_layers}
    rows = []
    for r in counts.ops:
        n = ntire.get(r.module)
        rows.append({"module": r.module, "module_type": r.module_type, "op": r.op,
                     "kind": r.kind, "calls": r.calls, "macs": r.macs,
                     "output_elements": r.output_elements,
                     "ntire2022_macs": n.macs if n else 0,
                     "ntire2022_activations": n.activations if n else 0})
    columns = ["module", "module_type", "op", "kind", "calls", "macs", "output_elements",
               "ntire2022_macs", "ntire2022_activations"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------ Prediction


def prediction_lines(p: Any) -> list[tuple[str, str]]:
    m, r = p.memory, p.runtime
    return [
        ("GPU", f"{p.gpu.label}, {p.dtype}" + (f" ({p.preset} protocol)" if p.preset else "")),
        ("peak memory", f"{m.peak_allocated_mib:.1f} MiB at {_shape(m.input_shape)}"),
        ("weights", f"{m.weights_mib:.1f} MiB"),
        ("runtime", f"{r.ms:.2f} ms at {_shape(r.input_shape)}, {r.kernels} kernels"),
        ("bandwidth-bound", f"{100 * r.memory_bound_share:.0f} % of the time"),
        ("note", "predicted from the shape trace, not measured"),
    ]


def prediction_str(p: Any) -> str:
    pairs = prediction_lines(p)
    w = max(len(k) for k, _ in pairs)
    return "Prediction\n" + "\n".join(f"  {k:<{w}}  {v}" for k, v in pairs)


def prediction_markdown(p: Any) -> str:
    return _md(prediction_lines(p), "Prediction")


def prediction_html(p: Any) -> str:
    return _html(prediction_lines(p), "Prediction")


def prediction_dataframe(p: Any) -> Any:
    """One row: the predicted figures (see :func:`esrprof.tables.prediction_figures`)."""
    return tables.dataframe([tables.prediction_figures(p)])


# ---------------------------------------------------------------------------------- Result


def result_lines(result: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = [("model", str(result.model.name))]
    if result.counts is not None:
        pairs += counts_lines(result.counts)
    if getattr(result, "prediction", None) is not None:
        p = result.prediction
        pairs += [("predicted memory", f"{p.memory.peak_allocated_mib:.1f} MiB "
                   f"({p.gpu.label})"),
                  ("predicted runtime", f"{p.runtime.ms:.2f} ms ({p.gpu.label})")]
    run = tables.run_figures(result.run_blocks())
    if "runtime_ms" in run:
        pairs.append(("runtime", f"{run['runtime_ms']:.2f} ms"))
    if "memory_mib" in run:
        pairs.append(("memory", f"{run['memory_mib']:.1f} MiB"))
    for k, v in run.items():
        if k.startswith("psnr_"):
            pairs.append((f"PSNR {k[5:]}", f"{v:.2f} dB"))
    hardware = (result.environment or {}).get("hardware")
    if hardware and ("runtime_ms" in run or "memory_mib" in run):
        pairs.append(("measured on", str(hardware)))
    return pairs


def result_str(result: Any) -> str:
    pairs = result_lines(result)
    w = max(len(k) for k, _ in pairs)
    return "Result\n" + "\n".join(f"  {k:<{w}}  {v}" for k, v in pairs)


def result_markdown(result: Any) -> str:
    return _md(result_lines(result), f"Result: {result.model.name}")


def result_html(result: Any) -> str:
    return _html(result_lines(result), f"Result: {result.model.name}")


__all__ = [
    "counts_dataframe", "counts_html", "counts_markdown", "counts_str",
    "prediction_dataframe", "prediction_html", "prediction_markdown", "prediction_str",
    "result_html", "result_markdown", "result_str",
]
