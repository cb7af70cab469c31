"""The figures of a result as one flat row, and rows written as JSON, CSV, Markdown or HTML.

What ``--quiet`` and ``--format json|csv|md`` print, what ``to_dataframe()`` holds and what the
Jupyter reprs show: counts stay integers (MACs, not G; parameters, not M), so a CSV holds
``894192``, never ``0.894``; measured and predicted figures keep their units in the name
(``runtime_ms``, ``memory_mib``). Duck-typed over the records, so the records can call it.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from esrprof.extras import require

FORMATS = ("json", "csv", "md")


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def counts_figures(counts: Any) -> dict[str, Any]:
    """params, buffers, the ntire2022 figures (MACs, activations, convs) and complete MACs."""
    n = counts.ntire2022
    return {
        "input_shape": _shape(counts.input_shape),
        "params": int(counts.params),
        "macs_ntire2022": int(n.macs),
        "activations": int(n.activations),
        "convs": int(n.convs),
        "macs_complete": int(counts.complete.macs),
        "buffers": int(counts.buffers),
    }


def prediction_figures(p: Any) -> dict[str, Any]:
    """The predicted GPU memory and runtime, and what they are predicted for."""
    return {
        "predicted_gpu": p.gpu.label,
        "predicted_memory_mib": round(float(p.memory.peak_allocated_mib), 3),
        "predicted_memory_shape": _shape(p.memory.input_shape),
        "predicted_runtime_ms": round(float(p.runtime.ms), 3),
        "predicted_runtime_shape": _shape(p.runtime.input_shape),
        "predicted_kernels": int(p.runtime.kernels),
    }


def run_figures(blocks: Mapping[str, Any]) -> dict[str, Any]:
    """The run's figures from a result's run blocks (runtime, memory, PSNR), where present."""
    runtime = blocks.get("runtime") or {}
    memory = blocks.get("memory") or {}
    psnr = (blocks.get("quality") or {}).get("psnr_db") or {}
    out: dict[str, Any] = {}
    if runtime.get("runtime_ms") is not None:
        out["runtime_ms"] = runtime["runtime_ms"]
    for name, split in (runtime.get("splits") or {}).items():
        if split.get("runtime_ms") is not None:
            out[f"runtime_ms_{name}"] = split["runtime_ms"]
    if memory.get("memory_mib") is not None:
        out["memory_mib"] = memory["memory_mib"]
    for name, value in psnr.items():
        if value is not None:
            out[f"psnr_{name}"] = value
    return out


def result_figures(result: Any) -> dict[str, Any]:
    """One flat row: model, counts, prediction and run figures, as far as the result has them."""
    row: dict[str, Any] = {"model": result.model.name}
    if result.counts is not None:
        row.update(counts_figures(result.counts))
    if getattr(result, "prediction", None) is not None:
        row.update(prediction_figures(result.prediction))
    row.update(run_figures(result.run_blocks()))
    hardware = (result.environment or {}).get("hardware")
    if hardware and any(k.startswith(("runtime", "memory")) for k in row):
        row["hardware"] = hardware
    return row


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else repr(value)
    return str(value)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = _columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def to_json(rows: Sequence[Mapping[str, Any]], single: bool = False) -> str:
    payload: Any = dict(rows[0]) if single and len(rows) == 1 else [dict(r) for r in rows]
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = _columns(rows)
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_md_escape(_cell(r.get(c))) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_html(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def vertical(row: Mapping[str, Any]) -> str:
    """One row as ``name  value`` lines: what ``--quiet`` prints."""
    width = max((len(k) for k in row), default=0)
    return "\n".join(f"{k:<{width}}  {_cell(v)}" for k, v in row.items())


def write(rows: Sequence[Mapping[str, Any]], fmt: str, single: bool = False) -> str:
    """The rows in ``fmt`` (json, csv or md)."""
    if fmt == "json":
        return to_json(rows, single)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "md":
        return to_markdown(rows)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def dataframe(rows: Sequence[Mapping[str, Any]]) -> Any:
    pd = require("pandas", "to_dataframe()")

    return pd.DataFrame([dict(r) for r in rows])


__all__ = ["FORMATS", "counts_figures", "dataframe", "prediction_figures", "result_figures",
           "run_figures", "to_csv", "to_html", "to_json", "to_markdown", "vertical", "write"]
