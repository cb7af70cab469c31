"""Why runtime diverges from FLOPs: the report's view of esrprof's runtime predictions.

Pure functions over the report table (one row per entry, ``model`` and ``runtime_ms`` /
``flops_g`` columns) and a ``model -> Prediction`` mapping: predicted columns to add to the
table, the rank correlations of runtime with predicted runtime and with FLOPs, each model's
predicted time by op kind, one summary sentence, and two charts (PNG + SVG, like charts.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esrprof.predict.kinds import KINDS
from esrprof.report.charts import RC, Chart, _figure, _save
from esrprof.report.summary import Correlation, correlate, positive_pairs

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.predict.api import Prediction

PREDICTED_COLUMNS = ("predicted_runtime_ms", "predicted_memory_mib", "memory_bound_share")
KIND_LABELS = {
    "convolution": "convolution",
    "matmul": "attention / matmul",
    "elementwise": "element-wise",
    "data_movement": "data movement (cat, copies, pixel-shuffle)",
    "normalization": "normalization",
    "kernel_floor": "kernel floor",
}
KIND_COLORS = {
    "convolution": "#1f77b4",
    "matmul": "#9467bd",
    "elementwise": "#ff7f0e",
    "data_movement": "#2ca02c",
    "normalization": "#8c564b",
    "kernel_floor": "#7f7f7f",
}


@dataclass(frozen=True)
class ModelKinds:
    """One model's predicted runtime split by op kind (ms, in KINDS order)."""

    model: str
    ms: float
    kinds: tuple[tuple[str, float], ...]
    memory_bound_share: float

    def share(self, kind: str) -> float:
        return dict(self.kinds).get(kind, 0.0) / self.ms if self.ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ms": self.ms, "kinds": dict(self.kinds),
                "memory_bound_share": self.memory_bound_share}


@dataclass(frozen=True)
class PredictionFindings:
    n_entries: int  # entries with a prediction
    runtime_vs_predicted: Correlation | None
    runtime_vs_flops: Correlation | None
    memory_vs_predicted: Correlation | None
    by_kind: tuple[ModelKinds, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        def c(x: Correlation | None) -> dict[str, Any] | None:
            return x.to_dict() if x else None

        return {
            "n_entries": self.n_entries,
            "runtime_vs_predicted": c(self.runtime_vs_predicted),
            "runtime_vs_flops": c(self.runtime_vs_flops),
            "memory_vs_predicted": c(self.memory_vs_predicted),
            "by_kind": [k.to_dict() for k in self.by_kind],
            "summary": self.summary,
        }


def prediction_columns(predictions: Mapping[str, Prediction]) -> dict[str, dict[str, float]]:
    """``model -> {predicted_runtime_ms, predicted_memory_mib, memory_bound_share}``."""
    return {
        model: {
            "predicted_runtime_ms": p.runtime.ms,
            "predicted_memory_mib": p.memory.peak_allocated_mib,
            "memory_bound_share": p.runtime.memory_bound_share,
        }
        for model, p in predictions.items()
    }


def add_prediction_columns(table: Any, predictions: Mapping[str, Prediction]) -> Any:
    """A copy of the table with the PREDICTED_COLUMNS (empty where a model has none)."""
    out = table.copy()
    columns = prediction_columns(predictions)
    for col in PREDICTED_COLUMNS:
        out[col] = [columns.get(m, {}).get(col) for m in out["model"]]
        out[col] = out[col].astype("float64")
    return out


def time_by_kind(predictions: Mapping[str, Prediction]) -> tuple[ModelKinds, ...]:
    """Each model's predicted time by op kind, fastest model first."""
    rows = [
        ModelKinds(model, p.runtime.ms,
                   tuple((k, p.runtime.by_kind_ms.get(k, 0.0)) for k in KINDS),
                   p.runtime.memory_bound_share)
        for model, p in predictions.items()
    ]
    return tuple(sorted(rows, key=lambda r: (r.ms, r.model)))


def analyse(table: Any, predictions: Mapping[str, Prediction]) -> PredictionFindings:
    """Correlations, per-model kinds and the summary sentence for the entries with both a
    prediction and the metric in question."""
    t = add_prediction_columns(table, predictions)
    with_pred = t[t["predicted_runtime_ms"].notna()]
    kinds = time_by_kind({m: p for m, p in predictions.items() if m in set(with_pred["model"])})
    findings = PredictionFindings(
        n_entries=len(with_pred),
        runtime_vs_predicted=correlate(with_pred, "predicted_runtime_ms", "runtime_ms"),
        runtime_vs_flops=correlate(with_pred, "flops_g", "runtime_ms"),
        memory_vs_predicted=correlate(with_pred, "predicted_memory_mib", "memory_mib"),
        by_kind=kinds,
        summary="",
    )
    return PredictionFindings(**{**findings.__dict__, "summary": summary_sentence(findings)})


def summary_sentence(f: PredictionFindings) -> str:
    """What the runtime follows, in one sentence (computed, never canned numbers)."""
    if not f.by_kind:
        return "No entry has a runtime prediction."
    n = len(f.by_kind)
    total = sum(k.ms for k in f.by_kind)
    memory = sum(k.memory_bound_share * k.ms for k in f.by_kind) / total if total else 0.0
    floor = sum(dict(k.kinds).get("kernel_floor", 0.0) for k in f.by_kind) / total if total else 0
    cause = (f"{100 * memory:.0f} % of the predicted time is in bandwidth-limited kernels and "
             f"{100 * floor:.0f} % in per-kernel floors")
    p, fl = f.runtime_vs_predicted, f.runtime_vs_flops
    if p is None:
        return (f"Predicted for {n} models (no measured runtimes to compare): {cause}, so bytes "
                "moved and kernel count, more than arithmetic, set their pace.")
    flops_part = f", FLOPs ρ = {fl.spearman:.2f}" if fl else ""
    if fl is None or p.spearman > fl.spearman:
        return (f"Runtime follows the predicted time (Spearman ρ = {p.spearman:.2f} over "
                f"{p.n} entries{flops_part}): {cause}, so bytes moved and kernel count, not "
                "FLOPs, set the pace.")
    return (f"Runtime follows FLOPs (ρ = {fl.spearman:.2f}) at least as well as the predicted "
            f"time (ρ = {p.spearman:.2f} over {p.n} entries): {cause}.")


# ------------------------------------------------------------------------------------ charts


def prediction_chart(table: Any, findings: PredictionFindings, out_dir: Path,
                     stem: str = "runtime_vs_predicted") -> Chart | None:
    """Two panels, same y: runtime against predicted runtime, and against FLOPs, each with ρ."""
    import matplotlib

    t = table if "predicted_runtime_ms" in table else table.iloc[0:0]
    left = positive_pairs(t, "predicted_runtime_ms", "runtime_ms")
    right = positive_pairs(t, "flops_g", "runtime_ms")
    if len(left) < 2:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = _figure(11.0, 5.0)
        axes = fig.subplots(1, 2, sharey=True)
        panels = (
            (axes[0], left, "predicted_runtime_ms", "predicted runtime [ms]",
             findings.runtime_vs_predicted),
            (axes[1], right, "flops_g", "FLOPs [G]", findings.runtime_vs_flops),
        )
        for ax, sub, x, label, corr in panels:
            ax.scatter(sub[x], sub["runtime_ms"], s=22, color="#1f77b4", zorder=3)
            for _, row in sub.iterrows():
                ax.annotate(str(row["model"]), (row[x], row["runtime_ms"]), xytext=(3, 3),
                            textcoords="offset points", fontsize=6, color="#333333")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.grid(True, which="both", alpha=0.25)
            text = f"Spearman ρ = {corr.spearman:.3f}\nn = {corr.n}" if corr else f"n = {len(sub)}"
            ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", ha="left", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"})
        lo = min(left["predicted_runtime_ms"].min(), left["runtime_ms"].min())
        hi = max(left["predicted_runtime_ms"].max(), left["runtime_ms"].max())
        axes[0].plot([lo, hi], [lo, hi], color="#999999", lw=0.8, ls="--", zorder=1)
        axes[0].set_ylabel("runtime [ms]")
        title = "Runtime against predicted runtime and against FLOPs"
        fig.suptitle(title)
        png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg, findings.summary)


def kinds_chart(findings: PredictionFindings, out_dir: Path,
                stem: str = "predicted_time_by_kind") -> Chart | None:
    """Stacked bars: each model's predicted time split by op kind."""
    import matplotlib

    rows: Sequence[ModelKinds] = findings.by_kind
    if not rows:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = _figure(8.5, max(2.5, 0.3 * len(rows) + 1.4))
        ax = fig.add_subplot()
        left = [0.0] * len(rows)
        for kind in KINDS:
            values = [dict(r.kinds).get(kind, 0.0) for r in rows]
            if not any(values):
                continue
            ax.barh(range(len(rows)), values, left=left, color=KIND_COLORS[kind],
                    label=KIND_LABELS[kind])
            left = [a + b for a, b in zip(left, values)]
        ax.set_yticks(range(len(rows)), [r.model for r in rows], fontsize=7)
        ax.set_xlabel("predicted runtime [ms]")
        ax.grid(True, axis="x", alpha=0.25)
        ax.legend(loc="lower right", fontsize=7)
        title = "Predicted runtime by op kind"
        ax.set_title(title)
        png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg,
                 f"{title}, {len(rows)} models (a prediction, not a measurement)")


def write_prediction_charts(table: Any, predictions: Mapping[str, Prediction],
                            out_dir: Path) -> tuple[PredictionFindings, tuple[Chart, ...]]:
    """Findings and every prediction chart the inputs allow."""
    findings = analyse(table, predictions)
    t = add_prediction_columns(table, predictions)
    charts = (prediction_chart(t, findings, out_dir), kinds_chart(findings, out_dir))
    return findings, tuple(c for c in charts if c is not None)


__all__ = [
    "KIND_LABELS",
    "PREDICTED_COLUMNS",
    "ModelKinds",
    "PredictionFindings",
    "add_prediction_columns",
    "analyse",
    "kinds_chart",
    "prediction_chart",
    "prediction_columns",
    "summary_sentence",
    "time_by_kind",
    "write_prediction_charts",
]
