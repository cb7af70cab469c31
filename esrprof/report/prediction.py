"""Why runtime diverges from FLOPs: the report's view of esrprof's runtime predictions.

Pure functions over the report table (one row per entry, ``model`` and ``runtime_ms`` /
``flops_g`` columns) and a ``model -> Prediction`` mapping: predicted columns to add to the
table, the rank correlations of runtime with predicted runtime and with FLOPs, each model's
predicted time by op kind, one summary sentence, the report section that shows them
(Markdown) and two charts (PNG + SVG, like charts.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esrprof.extras import require
from esrprof.prediction.kinds import KINDS
from esrprof.report.charts import RC, Chart, _figure, _literal, _save
from esrprof.report.inputs import PREDICTED_COLUMNS, add_prediction_columns, prediction_columns
from esrprof.report.markup import md_text
from esrprof.report.summary import Correlation, correlate, positive_pairs

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.prediction.api import Prediction

KIND_LABELS = {
    "convolution": "convolution",
    "matmul": "attention / matmul",
    "elementwise": "element-wise",
    "data_movement": "data movement (cat, copies, pixel-shuffle)",
    "normalization": "normalization",
    "kernel_floor": "kernel floor",
}
# The order the report's table shows the kinds in.
TABLE_KINDS = ("convolution", "elementwise", "data_movement", "matmul", "normalization",
               "kernel_floor")
SECTION_TITLE = "Why runtime diverges from FLOPs"
PREDICTED_LABEL = "from the shape trace, not measured"
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
    """One model's predicted runtime split by op kind (ms, in KINDS order), and the GPU and
    input the prediction is for."""

    model: str
    ms: float
    kinds: tuple[tuple[str, float], ...]
    memory_bound_share: float
    gpu: str = ""  # the GPU's label ("NVIDIA TITAN Xp")
    input_shape: tuple[int, ...] = ()  # of the runtime prediction

    def share(self, kind: str) -> float:
        return dict(self.kinds).get(kind, 0.0) / self.ms if self.ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ms": self.ms, "kinds": dict(self.kinds),
                "memory_bound_share": self.memory_bound_share, "gpu": self.gpu,
                "input_shape": list(self.input_shape)}


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


def time_by_kind(predictions: Mapping[str, Prediction]) -> tuple[ModelKinds, ...]:
    """Each model's predicted time by op kind, fastest model first."""
    rows = [
        ModelKinds(model, p.runtime.ms,
                   tuple((k, p.runtime.by_kind_ms.get(k, 0.0)) for k in KINDS),
                   p.runtime.memory_bound_share, p.gpu.label, tuple(p.runtime.input_shape))
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


# ----------------------------------------------------------------------------------- section


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def same_gpu(prediction: Prediction, hardware: Any) -> bool:
    """Whether a measured entry's hardware looks like the GPU its prediction is for (the spec's
    short name in the hardware text: "titan-xp" in "Titan Xp (NTIRE 2022 published table)",
    "h100" in "NVIDIA H100 80GB HBM3")."""
    return isinstance(hardware, str) and _norm(prediction.gpu.name) in _norm(hardware)


def _counted(items: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return "; ".join(f"{md_text(k)} ({n} {'entry' if n == 1 else 'entries'})"
                     for k, n in counts.items())


def prediction_markdown(findings: PredictionFindings, table: Any,
                        predictions: Mapping[str, Prediction],
                        sources: Mapping[str, str] | None = None) -> str:
    """The body of the report's section "Why runtime diverges from FLOPs" (no heading, no
    charts), in the Markdown subset the HTML page converts: paragraphs, bullets, pipe tables,
    **bold**. Every name is escaped; every figure is computed from ``findings``."""
    sources = sources or {}
    rows = {str(r["model"]): r for r in table.to_dict(orient="records")}
    models = [k.model for k in findings.by_kind]
    lines = [
        f"**Predicted runtimes are {PREDICTED_LABEL}.** For {findings.n_entries} "
        f"{'entry' if findings.n_entries == 1 else 'entries'} esrprof predicted the GPU runtime "
        "and peak memory from one forward traced on meta tensors (esrprof.prediction, see "
        "docs/prediction.md): each kernel costs the larger of its arithmetic and its memory "
        "traffic at calibrated efficiencies, plus a per-kernel floor; nothing ran on a GPU.",
        "",
        "Predicted for: " + _counted([
            f"{p.gpu.label}, {p.dtype}, runtime at {_shape(p.runtime.input_shape)}, peak "
            f"memory at {_shape(p.memory.input_shape)}"
            + (f", {p.preset} protocol" if p.preset else "")
            for p in (predictions[m] for m in models)]) + ".",
    ]
    measured = [str(rows[m]["hardware"]) for m in models
                if m in rows and _present(rows[m].get("runtime_ms"))]
    if measured:
        lines[-1] += " Runtimes measured on: " + _counted(measured) + "."
    kinds_of_source = [
        "reference models of esrprof's zoo (rows of the published table)"
        if sources.get(m, "").startswith("reference model") else "result files"
        for m in models if m in sources
    ]
    if kinds_of_source:
        lines[-1] += " Predictions from: " + _counted(kinds_of_source) + "."
    pairs = (
        ("measured runtime vs predicted runtime", findings.runtime_vs_predicted),
        ("measured runtime vs FLOPs", findings.runtime_vs_flops),
        ("measured peak memory vs predicted peak memory", findings.memory_vs_predicted),
    )
    shown = [(label, c) for label, c in pairs if c is not None]
    if shown:
        lines += ["", "| pair, over the entries with a prediction | n | Spearman ρ | Kendall τ |",
                  "|---|---|---|---|"]
        lines += [f"| {label} | {c.n} | {c.spearman:.3f} | {c.kendall:.3f} |"
                  for label, c in shown]
    lines += ["", md_text(findings.summary)]
    notes = _notes(findings, rows, predictions)
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    if findings.by_kind:
        head = ["Model", "Predicted for", "Measured runtime [ms]", "Predicted runtime [ms]",
                *(KIND_LABELS[k] for k in TABLE_KINDS), "Memory-bound share"]
        lines += [
            "",
            f"**Predicted time by op kind** ({PREDICTED_LABEL}): milliseconds and share of each "
            "model's predicted runtime; memory-bound share: of its predicted time, the part in "
            "kernels limited by bandwidth.",
            "",
            "| " + " | ".join(md_text(h) for h in head) + " |",
            "|" + "|".join([":---", ":---"] + ["---:"] * (len(head) - 2)) + "|",
        ]
        for k in findings.by_kind:
            runtime = rows.get(k.model, {}).get("runtime_ms")
            cells = [
                md_text(k.model),
                md_text(k.gpu),
                f"{float(runtime):.2f}" if _present(runtime) else "",
                f"{k.ms:.2f}",
                *(f"{dict(k.kinds).get(kind, 0.0):.2f} ({100 * k.share(kind):.0f} %)"
                  for kind in TABLE_KINDS),
                f"{100 * k.memory_bound_share:.0f} %",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines).rstrip() + "\n"


def _present(value: Any) -> bool:
    return value is not None and isinstance(value, (int, float)) and value == value


def _notes(findings: PredictionFindings, rows: Mapping[str, Mapping[str, Any]],
           predictions: Mapping[str, Prediction]) -> list[str]:
    """What a reader must know about comparing predicted and measured figures."""
    models = [k.model for k in findings.by_kind]
    notes = []
    gpus = sorted({predictions[m].gpu.label for m in models})
    if len(gpus) > 1:
        notes.append("The predictions are for more than one GPU (" + ", ".join(
            md_text(g) for g in gpus) + "): ρ compares predicted times of different GPUs.")
    elsewhere: dict[tuple[str, str], int] = {}
    for m in models:
        row = rows.get(m, {})
        if _present(row.get("runtime_ms")) and not same_gpu(predictions[m], row.get("hardware")):
            key = (str(row.get("hardware")), predictions[m].gpu.label)
            elsewhere[key] = elsewhere.get(key, 0) + 1
    for (hardware, gpu), n in elsewhere.items():
        notes.append(
            f"{n} {'entry was' if n == 1 else 'entries were'} measured on {md_text(hardware)} "
            f"but predicted for {md_text(gpu)}: compare their ranks, not their milliseconds."
        )
    unmeasured = [m for m in models if not _present(rows.get(m, {}).get("runtime_ms"))]
    if unmeasured:
        notes.append(
            f"{len(unmeasured)} {'entry has' if len(unmeasured) == 1 else 'entries have'} a "
            "prediction but no measured runtime: in the table below, not in ρ."
        )
    return notes


# ------------------------------------------------------------------------------------ charts


def prediction_chart(table: Any, findings: PredictionFindings, out_dir: Path,
                     stem: str = "runtime_vs_predicted") -> Chart | None:
    """Two panels, same y: runtime against predicted runtime, and against FLOPs, each with ρ."""
    matplotlib = require("matplotlib", "the report's charts")

    # Both panels over the same entries: those with a prediction (as the two ρ are)
    t = table[table["predicted_runtime_ms"].notna()] if "predicted_runtime_ms" in table \
        else table.iloc[0:0]
    left = positive_pairs(t, "predicted_runtime_ms", "runtime_ms")
    right = positive_pairs(t, "flops_g", "runtime_ms")
    if len(left) < 2:
        return None
    gpus = sorted({k.gpu for k in findings.by_kind if k.gpu})
    on = f" on {gpus[0]}" if len(gpus) == 1 else ""
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = _figure(11.0, 5.0)
        axes = fig.subplots(1, 2, sharey=True)
        panels = (
            (axes[0], left, "predicted_runtime_ms",
             _literal(f"predicted runtime{on} [ms] ({PREDICTED_LABEL})"),
             findings.runtime_vs_predicted),
            (axes[1], right, "flops_g", "FLOPs [G]", findings.runtime_vs_flops),
        )
        for ax, sub, x, label, corr in panels:
            ax.scatter(sub[x], sub["runtime_ms"], s=22, color="#1f77b4", zorder=3)
            for _, row in sub.iterrows():
                ax.annotate(_literal(row["model"]), (row[x], row["runtime_ms"]), xytext=(3, 3),
                            textcoords="offset points", fontsize=6, color="#333333")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.grid(True, which="both", alpha=0.25)
            text = f"Spearman ρ = {corr.spearman:.3f}\nn = {corr.n}" if corr else f"n = {len(sub)}"
            ax.text(0.98, 0.02, text, transform=ax.transAxes, va="bottom", ha="right", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"})
        lo = min(left["predicted_runtime_ms"].min(), left["runtime_ms"].min())
        hi = max(left["predicted_runtime_ms"].max(), left["runtime_ms"].max())
        axes[0].plot([lo, hi], [lo, hi], color="#999999", lw=0.8, ls="--", zorder=1)
        axes[0].set_ylabel("measured runtime [ms]")
        title = "Measured runtime against predicted runtime and against FLOPs"
        fig.suptitle(title)
        png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg,
                 f"{findings.summary} Predicted runtime{on}: {PREDICTED_LABEL}.")


def kinds_chart(findings: PredictionFindings, out_dir: Path,
                stem: str = "predicted_time_by_kind") -> Chart | None:
    """Stacked bars: each model's predicted time split by op kind."""
    matplotlib = require("matplotlib", "the report's charts")

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
        ax.set_yticks(range(len(rows)), [_literal(r.model) for r in rows], fontsize=7)
        gpus = sorted({r.gpu for r in rows if r.gpu})
        on = f" on {gpus[0]}" if len(gpus) == 1 else ""
        ax.set_xlabel(_literal(f"predicted runtime{on} [ms] ({PREDICTED_LABEL})"))
        ax.grid(True, axis="x", alpha=0.25)
        ax.legend(loc="lower right", fontsize=7)
        title = "Predicted runtime by op kind"
        ax.set_title(title)
        png, svg = _save(fig, out_dir, stem)
    return Chart(stem, title, png, svg,
                 f"{title}{on}, {len(rows)} models ({PREDICTED_LABEL})")


def write_prediction_charts(table: Any, predictions: Mapping[str, Prediction], out_dir: Path,
                            findings: PredictionFindings | None = None,
                            ) -> tuple[PredictionFindings, tuple[Chart, ...]]:
    """Findings (``findings``, or computed) and every prediction chart the inputs allow."""
    findings = findings or analyse(table, predictions)
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
    "prediction_markdown",
    "same_gpu",
    "summary_sentence",
    "time_by_kind",
    "write_prediction_charts",
]
