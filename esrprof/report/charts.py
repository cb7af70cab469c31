"""Charts, each written as PNG and SVG with matplotlib's Agg canvas (no pyplot, no display).

Metadata that changes between runs (dates, versions) is left out and the SVG ids are salted
with a constant, so regenerating a report from the same inputs gives the same files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from esrprof.extras import require
from esrprof.report.ranking import METRICS
from esrprof.report.summary import Findings, correlate, fit_trend, positive_pairs

RC = {"svg.hashsalt": "esrprof", "font.size": 8, "axes.titlesize": 10, "savefig.dpi": 110}
RANKED_COLOR, UNRANKED_COLOR = "#1f77b4", "#999999"
SLOWER_COLOR, FASTER_COLOR = "#d62728", "#2ca02c"


@dataclass(frozen=True)
class Chart:
    """One chart; ``png`` and ``svg`` are file names relative to the charts folder."""

    key: str
    title: str
    png: str
    svg: str
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _figure(width: float, height: float) -> Any:
    what = "the report's charts"
    FigureCanvasAgg = require("matplotlib.backends.backend_agg", what).FigureCanvasAgg
    Figure = require("matplotlib.figure", what).Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out_dir: Path, stem: str) -> tuple[str, str]:
    fig.savefig(out_dir / f"{stem}.png", metadata={"Software": None})
    fig.savefig(out_dir / f"{stem}.svg", metadata={"Date": None, "Creator": None})
    return f"{stem}.png", f"{stem}.svg"


def scatter_chart(table: Any, x: str, y: str, out_dir: Path, stem: str, title: str,
                  with_trend: bool = False) -> Chart | None:
    """Log-log scatter of y against x, every point labelled, rank correlations in a corner."""
    sub = positive_pairs(table, x, y)
    if len(sub) < 2:
        return None
    ranked = _ranked_mask(table).reindex(sub.index)
    fig = _figure(8.5, 6.2)
    ax = fig.add_subplot()
    for mask, color, label in ((ranked, RANKED_COLOR, "ranked"),
                               (~ranked, UNRANKED_COLOR, "not ranked")):
        if mask.any():
            ax.scatter(sub.loc[mask, x], sub.loc[mask, y], s=22, color=color, label=label,
                       zorder=3)
    for _, row in sub.iterrows():
        ax.annotate(_literal(row["model"]), (row[x], row[y]), xytext=(3, 3),
                    textcoords="offset points", fontsize=6, color="#333333")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(METRICS[x].label)
    ax.set_ylabel(METRICS[y].label)
    ax.grid(True, which="both", alpha=0.25)
    lines = []
    corr = correlate(table, x, y)
    if corr is not None:
        lines.append(f"Spearman ρ = {corr.spearman:.3f}\nKendall τ = {corr.kendall:.3f}\n"
                     f"n = {corr.n}")
    if with_trend:
        trend = fit_trend(table, x, y)
        if trend is not None:
            xs = np.geomspace(sub[x].min(), sub[x].max(), 50)
            ax.plot(xs, [trend.predict(v) for v in xs], color="#ff7f0e", lw=1.2, zorder=2,
                    label=f"trend: y ∝ x^{trend.slope:.2f} (R² = {trend.r2:.2f})")
    if lines:
        ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, va="top", ha="left",
                fontsize=8, bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"})
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title)
    png, svg = _save(fig, out_dir, stem)
    caption = (
        f"{title}; "
        + (f"Spearman ρ = {corr.spearman:.3f}, Kendall τ = {corr.kendall:.3f}, n = {corr.n}"
           if corr else f"n = {len(sub)}")
    )
    return Chart(stem, title, png, svg, caption)


def rank_shift_chart(findings: Findings, out_dir: Path, stem: str = "rank_shift") -> Chart | None:
    """Runtime rank minus FLOPs rank per model, sorted: bars right of zero run slower than
    their FLOPs rank says."""
    devs = sorted(findings.deviations, key=lambda d: (d.rank_shift, d.model))
    if len(devs) < 2:
        return None
    fig = _figure(7.5, max(3.0, 0.17 * len(devs) + 1.2))
    ax = fig.add_subplot()
    shifts = [d.rank_shift for d in devs]
    colors = [SLOWER_COLOR if s > 0 else FASTER_COLOR if s < 0 else UNRANKED_COLOR
              for s in shifts]
    ax.barh(range(len(devs)), shifts, color=colors)
    ax.set_yticks(range(len(devs)), [_literal(d.model) for d in devs], fontsize=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("runtime rank − FLOPs rank  (> 0: slower than its FLOPs rank)")
    ax.grid(True, axis="x", alpha=0.25)
    title = "Runtime rank minus FLOPs rank"
    ax.set_title(title)
    png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg,
                 f"{title} per model, among the {len(devs)} entries with both figures")


def layers_chart(model: str, layers: Sequence[Mapping[str, Any]], out_dir: Path, stem: str,
                 top: int = 10) -> Chart | None:
    """The ``top`` modules of one model by complete MACs, with their share of the total."""
    total = sum(int(r["macs"]) for r in layers)
    if total <= 0:
        return None
    rows = sorted(layers, key=lambda r: -int(r["macs"]))[:top][::-1]
    fig = _figure(7.5, max(2.5, 0.28 * len(rows) + 1.2))
    ax = fig.add_subplot()
    values = [int(r["macs"]) / 1e9 for r in rows]
    ax.barh(range(len(rows)), values, color=RANKED_COLOR)
    ax.set_yticks(range(len(rows)),
                  [_literal(f"{r['module'] or '(root)'} ({r['module_type']})") for r in rows],
                  fontsize=7)
    for i, r in enumerate(rows):
        ax.annotate(f"{100 * int(r['macs']) / total:.1f}%", (values[i], i), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.set_xlabel("complete MACs [G]")
    ax.set_xlim(0, max(values) * 1.18)
    title = f"{model}: top {len(rows)} layers by MACs"
    ax.set_title(_literal(title))
    png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg,
                 f"{title} (of {total / 1e9:.2f} G complete MACs in {len(layers)} modules)")


def write_charts(entries: Any, findings: Findings, out_dir: Path,
                 top_layers: int = 10) -> tuple[Chart, ...]:
    """Every chart the entries allow; a chart whose metrics are missing is left out."""
    matplotlib = require("matplotlib", "the report's charts")

    out_dir.mkdir(parents=True, exist_ok=True)
    table = entries.table
    charts: list[Chart | None] = []
    with matplotlib.rc_context(RC):
        charts.append(scatter_chart(table, "flops_g", "runtime_ms", out_dir, "flops_vs_runtime",
                                    "FLOPs vs runtime", with_trend=True))
        charts.append(rank_shift_chart(findings, out_dir))
        charts.append(scatter_chart(table, "params_m", "runtime_ms", out_dir,
                                    "params_vs_runtime", "#Params vs runtime"))
        charts.append(scatter_chart(table, "acts_m", "memory_mib", out_dir, "acts_vs_memory",
                                    "#Acts vs memory"))
        for i, (model, layers) in enumerate(sorted(entries.layers.items())):
            stem = f"layers_{i + 1:02d}_{_slug(model)}"
            charts.append(layers_chart(model, layers, out_dir, stem, top_layers))
    return tuple(c for c in charts if c is not None)


def _ranked_mask(table: Any) -> Any:
    """Entries a source table did not rank are drawn grey (a PSNR gate is not applied here)."""
    flag = table.get("printed_ranked")
    if flag is None:
        return table["model"].notna()
    return ~(flag == 0)


def _literal(text: object) -> str:
    """Text drawn as written: a "$" would otherwise start mathtext ("a$b" fails to draw). Only
    names are escaped, since the axes' own tick labels are mathtext on purpose."""
    return str(text).replace("$", r"\$")


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return slug[:40]


__all__ = ["Chart", "layers_chart", "rank_shift_chart", "scatter_chart", "write_charts"]
