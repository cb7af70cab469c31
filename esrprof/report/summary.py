"""What the numbers say: rank correlations of the counts with runtime, and which models run
faster or slower than their FLOPs predict (against a power-law trend fitted in log-log space)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from esrprof.extras import require
from esrprof.report.markup import md_text
from esrprof.report.ranking import METRICS

# Count metrics whose agreement with runtime (and memory) the summary reports.
CORRELATED = (
    ("flops_g", "runtime_ms"),
    ("params_m", "runtime_ms"),
    ("acts_m", "runtime_ms"),
    ("convs", "runtime_ms"),
    ("acts_m", "memory_mib"),
)


@dataclass(frozen=True)
class Correlation:
    x: str
    y: str
    n: int
    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trend:
    """``y = exp(intercept) · x ** slope``, least squares on log x and log y."""

    x: str
    y: str
    n: int
    slope: float
    intercept: float
    r2: float

    def predict(self, x: float) -> float:
        return math.exp(self.intercept) * x**self.slope

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deviation:
    """One model's runtime against the trend: ``factor`` > 1 is slower than its FLOPs predict."""

    model: str
    flops_g: float
    runtime_ms: float
    predicted_ms: float
    factor: float
    runtime_rank: int
    flops_rank: int

    @property
    def rank_shift(self) -> int:
        """Runtime rank minus FLOPs rank: > 0 when it runs slower than its FLOPs rank says."""
        return self.runtime_rank - self.flops_rank

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rank_shift": self.rank_shift}


@dataclass(frozen=True)
class Findings:
    n_entries: int
    correlations: tuple[Correlation, ...]
    trend: Trend | None
    deviations: tuple[Deviation, ...]  # sorted by factor, slowest-for-its-FLOPs first

    def slower(self, k: int = 5) -> list[Deviation]:
        return [d for d in self.deviations if d.factor > 1][:k]

    def faster(self, k: int = 5) -> list[Deviation]:
        return [d for d in reversed(self.deviations) if d.factor < 1][:k]

    def correlation(self, x: str, y: str) -> Correlation | None:
        return next((c for c in self.correlations if (c.x, c.y) == (x, y)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_entries": self.n_entries,
            "correlations": [c.to_dict() for c in self.correlations],
            "trend": self.trend.to_dict() if self.trend else None,
            "deviations": [d.to_dict() for d in self.deviations],
        }


def positive_pairs(table: Any, x: str, y: str) -> Any:
    """Rows with finite, positive x and y (log scales and ratios need them)."""
    if x not in table or y not in table:
        return table.iloc[0:0]
    sub = table[["model", x, y]].dropna()
    return sub[(sub[x] > 0) & (sub[y] > 0)]


def correlate(table: Any, x: str, y: str) -> Correlation | None:
    """Spearman's rho and Kendall's tau-b over entries with both metrics (None below 3)."""
    stats = require("scipy.stats", "the report")

    sub = positive_pairs(table, x, y)
    if len(sub) < 3 or sub[x].nunique() < 2 or sub[y].nunique() < 2:
        return None
    rho, rho_p = stats.spearmanr(sub[x], sub[y])
    tau, tau_p = stats.kendalltau(sub[x], sub[y])
    return Correlation(x, y, len(sub), float(rho), float(rho_p), float(tau), float(tau_p))


def fit_trend(table: Any, x: str = "flops_g", y: str = "runtime_ms") -> Trend | None:
    sub = positive_pairs(table, x, y)
    if len(sub) < 3 or sub[x].nunique() < 2:
        return None
    lx, ly = np.log(sub[x].to_numpy(float)), np.log(sub[y].to_numpy(float))
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    total = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float((resid**2).sum()) / total if total > 0 else float("nan")
    return Trend(x, y, len(sub), float(slope), float(intercept), r2)


def analyse(table: Any) -> Findings:
    """Correlations over all entries that carry each pair (ranked or not: this is about the
    models, not the competition), the FLOPs->runtime trend and every model's deviation from it."""
    correlations = tuple(c for x, y in CORRELATED if (c := correlate(table, x, y)) is not None)
    trend = fit_trend(table)
    deviations: list[Deviation] = []
    if trend is not None:
        sub = positive_pairs(table, "flops_g", "runtime_ms")
        rt_rank = sub["runtime_ms"].rank(method="min")
        fl_rank = sub["flops_g"].rank(method="min")
        for i, row in sub.iterrows():
            predicted = trend.predict(float(row["flops_g"]))
            deviations.append(
                Deviation(
                    model=str(row["model"]),
                    flops_g=float(row["flops_g"]),
                    runtime_ms=float(row["runtime_ms"]),
                    predicted_ms=predicted,
                    factor=float(row["runtime_ms"]) / predicted,
                    runtime_rank=int(rt_rank[i]),
                    flops_rank=int(fl_rank[i]),
                )
            )
        deviations.sort(key=lambda d: (-d.factor, d.model))
    return Findings(len(table), correlations, trend, tuple(deviations))


def _label(column: str) -> str:
    return METRICS[column].label if column in METRICS else column


def summary_markdown(findings: Findings, k: int = 5) -> str:
    """The written summary, in Markdown (the HTML page renders the same text)."""
    lines: list[str] = []
    c = findings.correlation("flops_g", "runtime_ms")
    if c is None:
        lines.append(
            "Too few entries carry both FLOPs and runtime to compare them (at least 3 needed)."
        )
    else:
        verdict = (
            "FLOPs order the models much as runtime does"
            if c.spearman >= 0.9
            else "FLOPs largely predict the runtime order"
            if c.spearman >= 0.7
            else "FLOPs only partly predict the runtime order"
            if c.spearman >= 0.4
            else "FLOPs hardly predict the runtime order"
        )
        text = (
            f"Over {c.n} entries, {verdict}: Spearman ρ = {c.spearman:.3f}, "
            f"Kendall τ = {c.kendall:.3f} between FLOPs and runtime."
        )
        vs_runtime = [x for x in findings.correlations if x.y == "runtime_ms"]
        best = max(vs_runtime, key=lambda x: x.spearman)
        if best.x != "flops_g":
            text += (
                f" Of the counts, {_label(best.x).split(' [')[0]} tracks runtime best "
                f"(ρ = {best.spearman:.3f})."
            )
        lines.append(text)
    others = [x for x in findings.correlations if (x.x, x.y) != ("flops_g", "runtime_ms")]
    if others:
        lines.append("")
        lines.append("| pair | n | Spearman ρ | Kendall τ |")
        lines.append("|---|---|---|---|")
        for x in findings.correlations:
            lines.append(
                f"| {_label(x.x)} vs {_label(x.y)} | {x.n} | {x.spearman:.3f} | {x.kendall:.3f} |"
            )
    t = findings.trend
    if t is not None:
        lines.append("")
        lines.append(
            f"Fitted trend: runtime ≈ {math.exp(t.intercept):.3g} ms · FLOPs[G]^{t.slope:.2f} "
            f"(log-log least squares, R² = {t.r2:.2f}, n = {t.n}). Runtime and FLOPs ranks "
            f"below are among these {t.n} entries, unranked ones included."
        )
        for title, group in (
            ("Slower than their FLOPs predict", findings.slower(k)),
            ("Faster than their FLOPs predict", findings.faster(k)),
        ):
            if not group:
                continue
            lines.append("")
            lines.append(f"{title}:")
            lines.append("")
            for d in group:
                how = (
                    f"{d.factor:.2f}× the trend" if d.factor >= 1 else f"{1 / d.factor:.2f}× faster"
                )
                lines.append(
                    f"- **{md_text(d.model)}**: {d.runtime_ms:.2f} ms for {d.flops_g:.2f} G, "
                    f"trend {d.predicted_ms:.2f} ms ({how}); runtime rank {d.runtime_rank}, "
                    f"FLOPs rank {d.flops_rank} ({d.rank_shift:+d})"
                )
    return "\n".join(lines) + "\n"
