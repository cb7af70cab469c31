"""Charts, written as PNG and/or SVG with matplotlib's Agg canvas (no pyplot, no display).

Metadata that changes between runs (dates, versions) is left out and the SVG ids are salted
with a constant, so regenerating a report from the same inputs gives the same files.

Each chart is laid out once and then written in every format asked for; the charts of a report
are drawn in parallel worker processes (:func:`draw`), one per core. Point labels are placed by
adjustText and then checked: a label that still overlaps another is moved to the nearest free
spot around its point (:func:`place_labels`), so labels in a dense cluster never overlap.
Points are labelled by model name where the entry has one (:func:`chart_labels`); entries
measured on different machines get their own colour and their own rank correlations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from esrprof.errors import UsageError
from esrprof.extras import require
from esrprof.report.ranking import METRICS
from esrprof.report.summary import (
    Findings,
    correlations,
    fit_trend,
    hardware_groups,
    positive_pairs,
    trend_rows,
)

RC = {"svg.hashsalt": "esrprof", "font.size": 8, "axes.titlesize": 10, "savefig.dpi": 110}
RANKED_COLOR, UNRANKED_COLOR = "#1f77b4", "#999999"
SLOWER_COLOR, FASTER_COLOR = "#d62728", "#2ca02c"
# Colours of the second, third, ... hardware group in a scatter (the first is RANKED_COLOR).
GROUP_COLORS = ("#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
FORMATS = ("png", "svg")
LABEL_GID = "esrprof-label"
# adjustText's rounds of repulsion: a fixed count (not a time limit) keeps the charts the same
# from run to run; what overlap is left, place_labels resolves itself.
ADJUST_ITERATIONS = 25


def parse_formats(text: str) -> tuple[str, ...]:
    """``"png,svg"`` -> ("png", "svg"); an unknown or empty list is a UsageError."""
    asked = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in asked if f not in FORMATS]
    if not asked or bad:
        raise UsageError(f"--charts takes a comma-separated list of {', '.join(FORMATS)}; "
                         f"got {text!r}")
    return asked


@dataclass(frozen=True)
class Chart:
    """One chart; ``png`` and ``svg`` are file names relative to the charts folder."""

    key: str
    title: str
    png: str  # "" when PNG was not asked for
    svg: str  # "" when SVG was not asked for
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _figure(width: float, height: float, margins: tuple[float, float, float, float] | None = None,
            ) -> Any:
    """A figure on the Agg canvas: laid out by matplotlib's constrained layout, or, with
    ``margins`` (left, bottom, right, top as fractions), at fixed margins: a log-log scatter's
    many tick labels make the constrained layout cost more than the drawing."""
    what = "the report's charts"
    FigureCanvasAgg = require("matplotlib.backends.backend_agg", what).FigureCanvasAgg
    Figure = require("matplotlib.figure", what).Figure

    fig = Figure(figsize=(width, height), layout=None if margins else "constrained")
    if margins:
        left, bottom, right, top = margins
        fig.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
    FigureCanvasAgg(fig)
    return fig


def _lay_out(fig: Any) -> None:
    """Run the layout engine once and freeze it: later draws (label placement, every format
    written) reuse the positions instead of laying the figure out again."""
    if fig.get_layout_engine() is None:
        return
    fig.draw_without_rendering()
    fig.set_layout_engine("none")


def _save(fig: Any, out_dir: Path, stem: str,
          formats: Sequence[str] = FORMATS) -> tuple[str, str]:
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ != "PlaceHolderLayoutEngine":
        _lay_out(fig)
    names = {"png": "", "svg": ""}
    for fmt in formats:
        meta = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
        fig.savefig(out_dir / f"{stem}.{fmt}", metadata=meta)
        names[fmt] = f"{stem}.{fmt}"
    return names["png"], names["svg"]


# ------------------------------------------------------------------------------ point labels


def place_labels(ax: Any, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str],
                 obstacles: Sequence[Any] = ()) -> list[Any]:
    """Label every point so that no two labels overlap (nor a label and an ``obstacles``
    artist, such as a legend or a text box): adjustText first, then any label still in
    conflict moves to the nearest free spot around its point; a label away from its point gets
    a thin leader line.

    The figure must be laid out already (:func:`_lay_out`). Returns the text artists."""
    adjust_text = require("adjustText", "the report's charts").adjust_text

    points = list(zip(map(float, xs), map(float, ys)))
    ax.autoscale(False)  # labels and leader lines must not move the view
    texts = []
    for (x, y), label in zip(points, labels):
        t = ax.text(x, y, _literal(label), fontsize=6, color="#333333", zorder=4,
                    ha="left", va="bottom")
        t.set_gid(LABEL_GID)
        t.set_in_layout(False)
        texts.append(t)
    if not texts:
        return texts
    adjust_text(texts, x=[p[0] for p in points], y=[p[1] for p in points], ax=ax,
                objects=list(obstacles) or None, iter_lim=ADJUST_ITERATIONS,
                prevent_crossings=False, ensure_inside_axes=True)
    _resolve_overlaps(ax, texts, points, obstacles)
    for t, point in zip(texts, points):
        _leader(ax, t, point)
    return texts


def _resolve_overlaps(ax: Any, texts: Sequence[Any], points: Sequence[tuple[float, float]],
                      obstacles: Sequence[Any]) -> None:
    """Greedy, deterministic: a label stays where it is if it is free; otherwise it tries
    spots around its point at growing radii until one is free and inside the axes."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    Bbox = require("matplotlib.transforms", "the report's charts").Bbox

    axes_box = ax.get_window_extent(renderer)
    taken = [o.get_window_extent(renderer) for o in obstacles]
    step = fig.dpi / 72.0 * 2  # 2 points
    r = fig.dpi / 72.0 * 2.5  # a marker's half width
    pad = fig.dpi / 72.0 * 3
    for px, py in ax.transData.transform(points):
        taken.append(Bbox([[px - r, py - r], [px + r, py + r]]))

    def free(box: Any) -> bool:
        inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1
                  and box.y0 >= axes_box.y0 and box.y1 <= axes_box.y1)
        box = box.padded(pad)  # a gap, so that two names never read as one
        return inside and not any(box.overlaps(other) for other in taken)

    to_data = ax.transData.inverted()
    for t, point in zip(texts, points):
        box = t.get_window_extent(renderer)
        if not free(box):
            # the box's offset from the text's anchor, so candidates cost arithmetic only
            ax0, ay0 = ax.transData.transform(t.get_position())
            ox, oy, w, h = box.x0 - ax0, box.y0 - ay0, box.width, box.height
            px, py = ax.transData.transform(point)
            best = None
            for ring in range(1, 200):
                d = ring * step
                for dx, dy in ((1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (-1, 0), (0, 1),
                               (0, -1)):
                    x0 = px + dx * d - (w if dx < 0 else w / 2 if dx == 0 else 0)
                    y0 = py + dy * d - (h if dy < 0 else h / 2 if dy == 0 else 0)
                    if free(Bbox([[x0, y0], [x0 + w, y0 + h]])):
                        best = (x0, y0)
                        break
                if best is not None:
                    break
            if best is not None:  # else nowhere free inside the axes: adjustText's spot stays
                t.set_position(to_data.transform((best[0] - ox, best[1] - oy)))
        taken.append(t.get_window_extent(renderer))


def _leader(ax: Any, text: Any, point: tuple[float, float]) -> None:
    """A thin line from the point to its label, when the label sits away from the point."""
    renderer = ax.figure.canvas.get_renderer()
    box = text.get_window_extent(renderer)
    px, py = ax.transData.transform(point)
    cx, cy = min(max(px, box.x0), box.x1), min(max(py, box.y0), box.y1)
    if (cx - px) ** 2 + (cy - py) ** 2 < (6 * ax.figure.dpi / 72) ** 2:
        return
    inv = ax.transData.inverted()
    (x0, y0), (x1, y1) = inv.transform((px, py)), inv.transform((cx, cy))
    line = ax.plot([x0, x1], [y0, y1], color="#aaaaaa", lw=0.5, zorder=2, scalex=False,
                   scaley=False)[0]
    line.set_in_layout(False)


def label_overlaps(fig: Any) -> list[tuple[str, str]]:
    """Pairs of point labels of ``fig`` whose boxes overlap (none, by :func:`place_labels`)."""
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_gid() == LABEL_GID]
        boxes = [t.get_window_extent(renderer) for t in texts]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i].overlaps(boxes[j]):
                    found.append((texts[i].get_text(), texts[j].get_text()))
    return found


def _group_text(corr: Any, grouped: bool) -> str:
    where = f"{_short(corr.hardware)}: " if grouped else ""
    sep = ", " if grouped else "\n"
    return (f"{where}Spearman ρ = {corr.spearman:.3f}{sep}Kendall τ = {corr.kendall:.3f}"
            f"{sep}n = {corr.n}")


def _short(hardware: str, width: int = 40) -> str:
    return hardware if len(hardware) <= width else hardware[: width - 1] + "…"


def scatter_figure(table: Any, x: str, y: str, title: str, with_trend: bool = False,
                   labels: Mapping[str, str] | None = None) -> Any:
    """The figure of :func:`scatter_chart` (None below two points), laid out and labelled."""
    sub = positive_pairs(table, x, y)
    if len(sub) < 2:
        return None
    labels = labels or {}
    groups = [(hw, positive_pairs(rows, x, y)) for hw, rows in hardware_groups(table, x, y)]
    groups = [(hw, rows) for hw, rows in groups if len(rows)]
    grouped = len(groups) > 1
    fig = _figure(8.5, 6.2, margins=(0.08, 0.08, 0.98, 0.95))
    ax = fig.add_subplot()
    for i, (hw, rows) in enumerate(groups):
        if i == 0:
            ranked = _ranked_mask(table).reindex(rows.index)
            for mask, color, label in ((ranked, RANKED_COLOR, "ranked"),
                                       (~ranked, UNRANKED_COLOR, "not ranked")):
                if mask.any():
                    name = f"{_short(hw)} ({label})" if grouped else label
                    ax.scatter(rows.loc[mask, x], rows.loc[mask, y], s=22, color=color,
                               label=_literal(name), zorder=3)
        else:
            ax.scatter(rows[x], rows[y], s=26, marker="D",
                       color=GROUP_COLORS[(i - 1) % len(GROUP_COLORS)],
                       label=_literal(_short(hw)), zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(METRICS[x].label)
    ax.set_ylabel(METRICS[y].label)
    ax.grid(True, which="both", alpha=0.25)
    lines = [_group_text(c, grouped) for c in correlations(table, x, y)]
    if grouped:
        lines.append("(rank correlations per machine, never pooled)")
    if with_trend:
        trend = fit_trend(table, x, y)
        if trend is not None:
            rows = trend_rows(table, x, y)
            xs = np.geomspace(rows[x].min(), rows[x].max(), 50)
            on = f" on {_short(groups[0][0])}" if grouped else ""
            ax.plot(xs, [trend.predict(v) for v in xs], color="#ff7f0e", lw=1.2, zorder=2,
                    label=f"trend{on}: y ∝ x^{trend.slope:.2f} (R² = {trend.r2:.2f})")
    obstacles = []
    if lines:
        obstacles.append(ax.text(0.02, 0.98, _literal("\n".join(lines)), transform=ax.transAxes,
                                 va="top", ha="left", fontsize=8, zorder=5,
                                 bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"}))
    obstacles.append(ax.legend(loc="lower right", fontsize=7))
    ax.set_title(title)
    _lay_out(fig)
    place_labels(ax, sub[x], sub[y], [labels.get(m, m) for m in sub["model"]], obstacles)
    return fig


def scatter_chart(table: Any, x: str, y: str, out_dir: Path, stem: str, title: str,
                  with_trend: bool = False, formats: Sequence[str] = FORMATS,
                  labels: Mapping[str, str] | None = None) -> Chart | None:
    """Log-log scatter of y against x, every point labelled (``labels``: model -> the name to
    draw), rank correlations in a corner: one set per machine when the entries' y was measured
    on several."""
    fig = scatter_figure(table, x, y, title, with_trend, labels)
    if fig is None:
        return None
    png, svg = _save(fig, out_dir, stem, formats)
    found = correlations(table, x, y)
    grouped = len(found) > 1 or bool(found and found[0].hardware)
    caption = f"{title}; " + (
        "; ".join(_group_text(c, grouped).replace("\n", ", ") for c in found)
        if found else f"n = {len(positive_pairs(table, x, y))}")
    return Chart(stem, title, png, svg, caption)


def rank_shift_chart(findings: Findings, out_dir: Path, stem: str = "rank_shift",
                     formats: Sequence[str] = FORMATS,
                     labels: Mapping[str, str] | None = None) -> Chart | None:
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
    labels = labels or {}
    ax.set_yticks(range(len(devs)), [_literal(labels.get(d.model, d.model)) for d in devs],
                  fontsize=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("runtime rank − FLOPs rank  (> 0: slower than its FLOPs rank)")
    ax.grid(True, axis="x", alpha=0.25)
    title = "Runtime rank minus FLOPs rank"
    ax.set_title(title)
    png, svg = _save(fig, out_dir, stem, formats)
    return Chart(stem, title, png, svg,
                 f"{title} per model, among the {len(devs)} entries with both figures")


def layers_chart(model: str, layers: Sequence[Mapping[str, Any]], out_dir: Path, stem: str,
                 top: int = 10, formats: Sequence[str] = FORMATS) -> Chart | None:
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
    png, svg = _save(fig, out_dir, stem, formats)
    return Chart(stem, title, png, svg,
                 f"{title} (of {total / 1e9:.2f} G complete MACs in {len(layers)} modules)")


# One chart to draw: a module-level function of this package, its positional and keyword
# arguments (plain data, so a worker process can receive it).
Job = tuple[Callable[..., "Chart | None"], tuple[Any, ...], dict[str, Any]]


def chart_labels(entries: Any) -> dict[str, str]:
    """model -> the name its points are labelled with: a published table's row whose team
    entered a reference model is labelled by that model's name (ByteESR -> RLFN); every other
    entry by its own name (a result's model name)."""
    rows = entries.reference_rows() if entries.references else []
    if not rows:
        return {}
    from esrprof.zoo.registry import REGISTRY

    by_team = {ref.team: ref.name for ref in REGISTRY.values() if ref.team}
    return {m: by_team[m] for m in rows if m in by_team}


def chart_jobs(entries: Any, findings: Findings, out_dir: Path, top_layers: int = 10,
               formats: Sequence[str] = FORMATS,
               labels: Mapping[str, str] | None = None) -> list[Job]:
    """The charts the entries allow, as jobs for :func:`draw`, in the page's order."""
    table = entries.table
    fmt = {"formats": tuple(formats)}
    named = {**fmt, "labels": dict(labels or {})}
    jobs: list[Job] = [
        (scatter_chart, (table, "flops_g", "runtime_ms", out_dir, "flops_vs_runtime",
                         "FLOPs vs runtime"), {"with_trend": True, **named}),
        (rank_shift_chart, (findings, out_dir), named),
        (scatter_chart, (table, "params_m", "runtime_ms", out_dir, "params_vs_runtime",
                         "#Params vs runtime"), named),
        (scatter_chart, (table, "acts_m", "memory_mib", out_dir, "acts_vs_memory",
                         "#Acts vs memory"), named),
    ]
    for i, (model, layers) in enumerate(sorted(entries.layers.items())):
        stem = f"layers_{i + 1:02d}_{_slug(model)}"
        jobs.append((layers_chart, (model, layers, out_dir, stem, top_layers), fmt))
    return jobs


def _run_job(job: Job) -> Chart | None:
    matplotlib = require("matplotlib", "the report's charts")

    func, args, kwargs = job
    with matplotlib.rc_context(RC):
        return func(*args, **kwargs)


def draw(jobs: Sequence[Job], workers: int | None = None) -> list[Chart | None]:
    """Run the jobs, in order of the list, on ``workers`` processes (default: one per core
    this process may use, at most one per job); results in the jobs' order. One worker, or
    a platform without ``fork``, draws them here one after another."""
    import multiprocessing

    # Loaded before the workers fork, so each starts with them imported.
    for module in ("adjustText", "matplotlib.backends.backend_agg",
                   "matplotlib.backends.backend_svg", "matplotlib.figure"):
        require(module, "the report's charts")

    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (os.cpu_count() or 1)
        workers = min(cores, len(jobs))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_run_job(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_run_job, jobs))


def write_charts(entries: Any, findings: Findings, out_dir: Path, top_layers: int = 10,
                 formats: Sequence[str] = FORMATS, workers: int | None = None,
                 ) -> tuple[Chart, ...]:
    """Every chart the entries allow, in ``formats``; a chart whose metrics are missing is
    left out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = chart_jobs(entries, findings, out_dir, top_layers, formats, chart_labels(entries))
    return tuple(c for c in draw(jobs, workers) if c is not None)


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


__all__ = ["FORMATS", "Chart", "chart_jobs", "chart_labels", "draw", "label_overlaps",
           "layers_chart", "parse_formats", "place_labels", "rank_shift_chart", "scatter_chart",
           "scatter_figure", "write_charts"]
