"""What the numbers say: rank correlations of the counts with runtime, and which models run
faster or slower than their FLOPs predict (against a power-law trend fitted in log-log space).

Runtime and memory measured on different machines are never pooled: every correlation and the
trend are computed per hardware group (:func:`hardware_groups`); a CPU run beside a table of
Titan Xp rows gets its own figures (or none, below three entries), never one rho over both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

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
    # The machine y was measured on, when the entries come from more than one ("" otherwise).
    hardware: str = ""

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
        """The pair's correlation over its largest hardware group (the only one, usually)."""
        return next((c for c in self.correlations if (c.x, c.y) == (x, y)), None)

    def correlations_of(self, x: str, y: str) -> list[Correlation]:
        """The pair's correlation in every hardware group, largest group first."""
        return [c for c in self.correlations if (c.x, c.y) == (x, y)]

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


# Metrics whose value depends on the machine they were measured on.
MEASURED = ("runtime_ms", "memory_mib", "psnr_val", "psnr_test")


def hardware_groups(table: Any, *columns: str) -> list[tuple[str, Any]]:
    """The rows that carry a measured one of ``columns``, split by the machine it was measured
    on: ``(label, rows)``, the largest group first. One group, labelled "" and holding every
    row, when none of ``columns`` is measured or all of those rows come from one machine."""
    from esrprof.environment import same_hardware

    measured = [c for c in columns if c in MEASURED and c in table]
    if "hardware" not in table or not measured or len(table) == 0:
        return [("", table)]
    present = table[measured].notna().any(axis=1)
    labels: list[str] = []
    keys: list[str | None] = []
    for has, hardware in zip(present, table["hardware"]):
        if not has:
            keys.append(None)
            continue
        name = "" if hardware is None or hardware != hardware else str(hardware)
        known = next((m for m in labels if m == name or (
            name and same_hardware({"hardware": name}, {"hardware": m}))), None)
        if known is None:
            labels.append(name)
            known = name
        keys.append(known)
    if len(labels) <= 1:
        return [("", table)]
    groups = [(label or "unknown hardware", table[[k == label for k in keys]])
              for label in labels]
    groups.sort(key=lambda g: -len(g[1]))  # stable: equal sizes keep the table's order
    return groups


def _correlate_rows(sub: Any, x: str, y: str, hardware: str = "") -> Correlation | None:
    from esrprof.rankstats import kendall, spearman

    if len(sub) < 3 or sub[x].nunique() < 2 or sub[y].nunique() < 2:
        return None
    xs, ys = [float(v) for v in sub[x]], [float(v) for v in sub[y]]
    rho, rho_p = spearman(xs, ys)
    tau, tau_p = kendall(xs, ys)
    return Correlation(x, y, len(sub), rho, rho_p, tau, tau_p, hardware)


def correlations(table: Any, x: str, y: str) -> list[Correlation]:
    """Spearman's rho and Kendall's tau-b per hardware group (see :func:`hardware_groups`),
    over entries with both metrics; a group of fewer than 3 gives none."""
    out = []
    for label, rows in hardware_groups(table, x, y):
        c = _correlate_rows(positive_pairs(rows, x, y), x, y, label)
        if c is not None:
            out.append(c)
    return out


def correlate(table: Any, x: str, y: str) -> Correlation | None:
    """Spearman's rho and Kendall's tau-b over entries with both metrics (None below 3); when
    the entries come from several machines, over the largest hardware group only."""
    found = correlations(table, x, y)
    return found[0] if found else None


def trend_rows(table: Any, x: str = "flops_g", y: str = "runtime_ms") -> Any:
    """The rows a trend of y on x is fitted over: positive pairs of the largest hardware group."""
    return positive_pairs(hardware_groups(table, x, y)[0][1], x, y)


def fit_trend(table: Any, x: str = "flops_g", y: str = "runtime_ms") -> Trend | None:
    sub = trend_rows(table, x, y)
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
    found = tuple(c for x, y in CORRELATED for c in correlations(table, x, y))
    trend = fit_trend(table)
    deviations: list[Deviation] = []
    if trend is not None:
        sub = trend_rows(table, "flops_g", "runtime_ms")
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
    return Findings(len(table), found, trend, tuple(deviations))


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
        on = f" measured on {md_text(c.hardware)}" if c.hardware else ""
        text = (
            f"Over {c.n} entries{on}, {verdict}: Spearman ρ = {c.spearman:.3f}, "
            f"Kendall τ = {c.kendall:.3f} between FLOPs and runtime."
        )
        if c.hardware:
            text += (" Runtime and memory from different machines are never pooled: each "
                     "machine's entries get their own correlations below.")
        vs_runtime = [x for x in findings.correlations
                      if x.y == "runtime_ms" and x.hardware == c.hardware]
        best = max(vs_runtime, key=lambda x: x.spearman)
        if best.x != "flops_g":
            text += (
                f" Of the counts, {_label(best.x).split(' [')[0]} tracks runtime best "
                f"(ρ = {best.spearman:.3f})."
            )
        lines.append(text)
    others = [x for x in findings.correlations if x is not c]
    if others:
        lines.append("")
        grouped = any(x.hardware for x in findings.correlations)
        lines.append("| pair |" + (" hardware |" if grouped else "") + " n | Spearman ρ | "
                     "Kendall τ |")
        lines.append("|---|" + ("---|" if grouped else "") + "---|---|---|")
        for x in findings.correlations:
            where = f" {md_text(x.hardware)} |" if grouped else ""
            lines.append(
                f"| {_label(x.x)} vs {_label(x.y)} |{where} {x.n} | {x.spearman:.3f} | "
                f"{x.kendall:.3f} |"
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
