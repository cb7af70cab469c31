"""Leaderboards: the 2022 tracks (runtime; rank sums), the 2024/2025 score, plain rankings.

Lower is better everywhere except PSNR. Equal values or sums share the better rank (1, 2, 2, 4:
pandas' ``method="min"``). Entries under the PSNR gate, or not ranked by their source table, are
listed after the ranked ones with an empty rank and the reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from esrprof.challenges import CHALLENGES, Challenge
from esrprof.errors import UsageError
from esrprof.extras import require


class MissingMetricError(UsageError):
    """A leaderboard needs a metric that no entry carries."""


@dataclass(frozen=True)
class Metric:
    column: str
    label: str  # table header, in the challenge's wording and units
    decimals: int
    higher_is_better: bool = False
    printed_rank: str | None = None  # the published table's per-metric rank column


METRICS: dict[str, Metric] = {
    m.column: m
    for m in (
        Metric("runtime_ms", "Runtime [ms]", 2, printed_rank="printed_runtime_rank"),
        Metric("params_m", "#Params [M]", 3, printed_rank="printed_params_rank"),
        Metric("flops_g", "FLOPs [G]", 2, printed_rank="printed_flops_rank"),
        Metric("acts_m", "#Acts [M]", 2, printed_rank="printed_acts_rank"),
        Metric("memory_mib", "Memory [M]", 2, printed_rank="printed_mem_rank"),
        Metric("convs", "#Conv", 0),
        Metric("complete_macs_g", "complete MACs [G]", 2),
        Metric("psnr_val", "PSNR val [dB]", 2, higher_is_better=True),
        Metric("psnr_test", "PSNR test [dB]", 2, higher_is_better=True),
    )
}
# The five metrics of sub-track 2, in the challenge's order; sub-track 1 uses params and FLOPs.
ST1_METRICS = ("params_m", "flops_g")
ST2_METRICS = ("runtime_ms", "params_m", "flops_g", "acts_m", "memory_mib")


@dataclass(frozen=True)
class ScoreDefinition:
    """A year's score and its published reference model (lower score is better)."""

    year: str
    reference: str  # the model the organisers scored against (their "baseline")
    runtime_ms: float
    flops_g: float
    params_m: float
    gpu: str
    weights: tuple[float, float, float] = (0.7, 0.15, 0.15)  # runtime, FLOPs, params


def _score_definition(rules: Challenge) -> ScoreDefinition:
    b = rules.baseline.published
    assert rules.score is not None and b is not None  # a score year publishes its baseline
    return ScoreDefinition(rules.name, rules.baseline.model, b.runtime_ms, b.flops_g, b.params_m,
                           rules.hardware.label.removeprefix("NVIDIA ").removeprefix("GeForce "),
                           rules.score.weights)


# Read from each year's rules (esrprof/challenges/): 2024 RLFN on an RTX 3090, 2025 EFDN and
# 2026 SPAN on an RTX A6000.
SCORES: dict[str, ScoreDefinition] = {
    c.name: _score_definition(c) for c in CHALLENGES.values() if c.score is not None
}


@dataclass(frozen=True)
class ScoreReference:
    """The model a 2024/2025 score is relative to (the challenge's "baseline"; not a latency
    baseline file of ``esrprof baseline``)."""

    name: str
    runtime_ms: float
    flops_g: float
    params_m: float
    source: str  # "entry" (read from the inputs) or "published"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Baseline = ScoreReference  # the former name, kept for a while (docs/changelog.md)


@dataclass(frozen=True)
class PsnrGate:
    """Entries need ``psnr_val >= valid`` (and ``psnr_test >= test`` when given) to be ranked."""

    valid: float
    test: float | None = None

    @classmethod
    def parse(cls, text: str) -> PsnrGate:
        """``"29"`` or ``"28.95/28.65"`` (valid/test)."""
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(?:/\s*([0-9]+(?:\.[0-9]*)?)\s*)?", text)
        if not m:
            raise UsageError(f"--psnr-gate {text!r}: expected DB or VALID_DB/TEST_DB, e.g. 28.95")
        return cls(float(m.group(1)), float(m.group(2)) if m.group(2) else None)

    def __str__(self) -> str:
        return f"{self.valid:.2f} dB" + (f" / {self.test:.2f} dB (test)" if self.test else "")


@dataclass(frozen=True)
class Leaderboard:
    """One ranking. ``frame`` (a DataFrame) has ``rank`` (nullable int), ``model``, the columns
    the ranking used, and ``note``; ranked rows first, in rank order."""

    key: str
    title: str
    description: str
    frame: Any
    notes: tuple[str, ...] = ()
    rank_source: str = "computed"  # per-metric ranks "computed" from values, or "printed"

    def to_dict(self) -> dict[str, Any]:
        from esrprof.report.inputs import _records

        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "rank_source": self.rank_source,
            "notes": list(self.notes),
            "rows": _records(self.frame),
        }


@dataclass(frozen=True)
class RankingOptions:
    psnr_gate: PsnrGate | None = None
    # "auto": use a published table's printed per-metric ranks when the ranked set is exactly
    # the table's; "printed": insist on them; "computed": always recompute from the values.
    per_metric_ranks: str = "auto"


def rank_values(values: Any, higher_is_better: bool = False) -> Any:
    """Competition ranks (1, 2, 2, 4) as a nullable Int64 Series; NaN values stay unranked."""
    ranks = values.rank(method="min", ascending=not higher_is_better, na_option="keep")
    return ranks.astype("Int64")


def challenge_score(runtime_ms: float, flops_g: float, params_m: float,
                    reference: ScoreReference,
                    weights: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> float:
    """The 2024/2025 score, lower is better:
    ``0.7·exp(2·runtime/runtime_B) + 0.15·exp(2·FLOPs/FLOPs_B) + 0.15·exp(2·params/params_B)``
    where B is the reference model."""
    w_rt, w_fl, w_pa = weights
    try:
        return (
            w_rt * math.exp(2 * runtime_ms / reference.runtime_ms)
            + w_fl * math.exp(2 * flops_g / reference.flops_g)
            + w_pa * math.exp(2 * params_m / reference.params_m)
        )
    except OverflowError:  # over ~350x the reference: no finite score, last place
        return math.inf


def eligibility(table: Any, gate: PsnrGate | None, needed: tuple[str, ...] = ()) -> Any:
    """Why each entry is not ranked (a Series of str, "" for a ranked entry)."""
    pd = require("pandas", "the report")

    reasons = pd.Series("", index=table.index, dtype=object)
    for i, row in table.iterrows():
        reasons[i] = _reason(row, gate, needed)
    return reasons


def _reason(row: Any, gate: PsnrGate | None, needed: tuple[str, ...]) -> str:
    if "printed_ranked" in row and row["printed_ranked"] == 0:
        return "not ranked in the source table"
    if gate is not None:
        val, test = row.get("psnr_val"), row.get("psnr_test")
        if _missing(val):
            return "no PSNR (valid)"
        if val < gate.valid:
            return f"PSNR val {val:.2f} < {gate.valid:.2f}"
        if gate.test is not None:
            if _missing(test):
                return "no PSNR (test)"
            if test < gate.test:
                return f"PSNR test {test:.2f} < {gate.test:.2f}"
    missing = [METRICS[c].label for c in needed if _missing(row.get(c))]
    if missing:
        return "no " + ", ".join(missing)
    return ""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def require_metrics(entries: Any, columns: tuple[str, ...], what: str) -> None:
    """A leaderboard whose metric no entry carries cannot be built: say which and why."""
    absent = [c for c in columns if not entries.has_metric(c)]
    if absent:
        names = ", ".join(METRICS[c].label for c in absent)
        hint = (
            " (results without a run carry counts only: profile with a run to get runtime and "
            "memory)"
            if any(c in ("runtime_ms", "memory_mib") for c in absent)
            else ""
        )
        raise MissingMetricError(f"{what} needs {names}, which no input carries{hint}")


def per_metric_ranks(table: Any, ranked: Any, metrics: tuple[str, ...],
                     policy: str = "auto") -> tuple[Any, str]:
    """Per-metric ranks among the ranked entries (NA elsewhere), and "printed" or "computed".

    The published table's per-metric ranks were computed from unrounded values; recomputed from
    its rounded values a few differ by one (ties the rounding created). So when the ranked set is
    exactly the set the table ranked, its printed ranks are used, and the rank sums reproduce it.
    """
    pd = require("pandas", "the report")

    printed_cols = [METRICS[m].printed_rank for m in metrics]
    usable = (
        all(c is not None for c in printed_cols)
        and bool(ranked.any())
        and bool((table.loc[ranked, printed_cols].notna()).all().all())
        and bool((table["printed_ranked"].fillna(0).astype(bool) == ranked).all())
    )
    if policy == "printed" and not usable:
        raise UsageError(
            "printed ranks requested, but the ranked entries are not exactly those of one "
            "published table with per-metric ranks"
        )
    use_printed = usable and policy != "computed"
    out = pd.DataFrame(index=table.index)
    for metric, printed in zip(metrics, printed_cols):
        if use_printed:
            col = table[printed].where(ranked).astype("Int64")
        else:
            col = rank_values(table[metric].where(ranked), METRICS[metric].higher_is_better)
        out[metric] = col
    return out, ("printed" if use_printed else "computed")


def _finish(frame: Any, sort_by: str, ascending: bool = True) -> Any:
    """Ranked rows in rank order (ties by ``sort_by``, then name), then the unranked ones."""
    ranked = frame[frame["rank"].notna()].sort_values(
        ["rank", sort_by, "model"], ascending=[True, ascending, True], kind="mergesort"
    )
    unranked = frame[frame["rank"].isna()].sort_values(
        [sort_by, "model"], ascending=[ascending, True], kind="mergesort", na_position="last"
    )
    pd = require("pandas", "the report")

    out = pd.concat([ranked, unranked]).reset_index(drop=True)
    out["rank"] = out["rank"].astype("Int64")
    return out


def _printed_rank_notes(frame: Any, printed: str, sum_col: str | None, title: str) -> list[str]:
    """Where a computed rank differs from the printed one, say so (and explain ties)."""
    notes = []
    if printed not in frame or frame[printed].isna().all():
        return notes
    for _, row in frame[frame["rank"].notna() & frame[printed].notna()].iterrows():
        if int(row["rank"]) == int(row[printed]):
            continue
        here, there = int(row["rank"]), int(row[printed])
        text = f"{title}: {row['model']} ranks {here} here, {there} as printed"
        if sum_col is not None:
            tied = frame[(frame[sum_col] == row[sum_col]) & (frame["model"] != row["model"])]
            if len(tied):
                text += (
                    f" (its sum {int(row[sum_col])} equals that of {', '.join(tied['model'])}; "
                    "equal sums share the better rank)"
                )
        notes.append(text)
    return notes


def main_track(entries: Any, options: RankingOptions) -> Leaderboard:
    """2022 main track: rank by runtime."""
    require_metrics(entries, ("runtime_ms",), "the main track")
    table = entries.table
    reasons = eligibility(table, options.psnr_gate, ("runtime_ms",))
    ranked = reasons == ""
    ranks, source = per_metric_ranks(table, ranked, ("runtime_ms",), options.per_metric_ranks)
    frame = table[["model", "runtime_ms", "psnr_val", "psnr_test", "params_m", "flops_g",
                   "acts_m", "memory_mib", "convs"]].copy()
    frame.insert(0, "rank", ranks["runtime_ms"])
    notes = []
    if table["printed_main_rank"].notna().any():
        frame["printed_rank"] = table["printed_main_rank"].astype("Int64")
    frame["note"] = reasons
    frame = _finish(frame, "runtime_ms")
    notes += _printed_rank_notes(frame, "printed_rank", None, "main track")
    return Leaderboard(
        "main", "Main track (runtime)",
        "Ranked by runtime; lower is better.", frame, tuple(notes), source,
    )


def rank_sum_track(entries: Any, options: RankingOptions, metrics: tuple[str, ...],
                   key: str, title: str) -> Leaderboard:
    """A 2022 sub-track: the per-metric ranks summed, then the sums ranked (ties share)."""
    require_metrics(entries, metrics, title)
    table = entries.table
    reasons = eligibility(table, options.psnr_gate, metrics)
    ranked = reasons == ""
    ranks, source = per_metric_ranks(table, ranked, metrics, options.per_metric_ranks)
    frame = table[["model"]].copy()
    for m in metrics:
        frame[m] = table[m]
    for m in metrics:
        frame[f"{m}_rank"] = ranks[m]
    total = ranks[list(metrics)].sum(axis=1, min_count=len(metrics)).where(ranked)
    frame[f"{key}_sum"] = total.astype("Int64")
    frame.insert(0, "rank", rank_values(total.astype(float)))
    if table[f"printed_{key}_rank"].notna().any():
        frame["printed_sum"] = table[f"printed_{key}_sum"].astype("Int64")
        frame["printed_rank"] = table[f"printed_{key}_rank"].astype("Int64")
    frame["note"] = reasons
    frame = _finish(frame, f"{key}_sum")
    notes = _printed_rank_notes(frame, "printed_rank", f"{key}_sum", title)
    if "printed_sum" in frame:
        differ = frame[frame["rank"].notna() & (frame["printed_sum"] != frame[f"{key}_sum"])]
        notes += [
            f"{title}: {r['model']} sums to {r[f'{key}_sum']} here, {r['printed_sum']} as printed"
            for _, r in differ.iterrows()
            if not _missing(r["printed_sum"])
        ]
    names = ", ".join(METRICS[m].label for m in metrics)
    return Leaderboard(
        key, title, f"Sum of the ranks of {names}; lower is better, equal sums share the "
        "better rank.", frame, tuple(notes), source,
    )


def subtrack1(entries: Any, options: RankingOptions) -> Leaderboard:
    return rank_sum_track(entries, options, ST1_METRICS, "st1", "Sub-track 1 (#Params + FLOPs)")


def subtrack2(entries: Any, options: RankingOptions) -> Leaderboard:
    return rank_sum_track(entries, options, ST2_METRICS, "st2", "Sub-track 2 (five ranks)")


def resolve_score_reference(entries: Any, score: str, name: str | None) -> ScoreReference:
    """The reference model's figures: from the named entry, else the year's published ones."""
    if score not in SCORES:
        raise UsageError(f"unknown score {score!r}; choose from {', '.join(SCORES)}")
    d = SCORES[score]
    table = entries.table
    wanted = name or d.reference
    hit = table[table["model"] == wanted]
    if len(hit):
        row = hit.iloc[0]
        missing = [c for c in ("runtime_ms", "flops_g", "params_m") if _missing(row[c])]
        if missing:
            raise UsageError(f"score reference {wanted!r} has no {', '.join(missing)}")
        return ScoreReference(wanted, float(row["runtime_ms"]), float(row["flops_g"]),
                              float(row["params_m"]), "entry")
    if name is None or name.lower() == d.reference.lower():
        return ScoreReference(d.reference, d.runtime_ms, d.flops_g, d.params_m, "published")
    raise UsageError(
        f"--score-baseline {name!r} is not among the entries ({len(table)} read); omit it to "
        f"score against the published {score} reference {d.reference}"
    )


def score_board(entries: Any, options: RankingOptions, score: str,
                reference_name: str | None = None, notes: tuple[str, ...] = ()) -> Leaderboard:
    """The 2024/2025 score against a reference model: lower is better; the reference scores
    e^2."""
    columns = ("runtime_ms", "flops_g", "params_m")
    require_metrics(entries, columns, f"the {score} score")
    d = SCORES.get(score)
    reference = resolve_score_reference(entries, score, reference_name)
    table = entries.table
    reasons = eligibility(table, options.psnr_gate, columns)
    frame = table[["model", "runtime_ms", "flops_g", "params_m", "psnr_val"]].copy()
    values = []
    for _, row in table.iterrows():
        if any(_missing(row[c]) for c in columns):
            values.append(float("nan"))
        else:
            values.append(challenge_score(row["runtime_ms"], row["flops_g"], row["params_m"],
                                          reference, d.weights))
    frame["score"] = values
    frame.insert(0, "rank", rank_values(frame["score"].where(reasons == "")))
    is_reference = frame["model"] == reference.name
    # "baseline" is the challenge's word for the reference model in its score tables
    frame["note"] = reasons.where(~is_reference, (reasons + "; baseline").str.lstrip("; "))
    frame = _finish(frame, "score")
    where = (
        "its entry in the inputs"
        if reference.source == "entry"
        else f"figures published for {score}, measured on an {d.gpu}: compare only runtimes "
        "from that GPU"
    )
    w_rt, w_fl, w_pa = (f"{w:g}" for w in d.weights)
    desc = (
        f"score = {w_rt}·exp(2·runtime/{reference.runtime_ms:g}) + {w_fl}·exp(2·FLOPs/"
        f"{reference.flops_g:g}) + {w_pa}·exp(2·params/{reference.params_m:g}); baseline "
        f"{reference.name} ({where}) scores e² ≈ 7.389; lower is better."
    )
    year = score.removeprefix("ntire")
    return Leaderboard(f"score_{score}", f"NTIRE {year} score vs {reference.name}", desc, frame,
                       tuple(notes), "computed")


# A sub-track of the score years: one term of the score, Score_X = exp(2·X / X_baseline).
SCORE_TERMS = {"score_runtime": ("runtime_ms", "Score_Runtime", "Sub-track 1 (runtime)"),
               "score_flops": ("flops_g", "Score_FLOPs", "Sub-track 2 (FLOPs)"),
               "score_params": ("params_m", "Score_Params", "Sub-track 3 (#Params)")}


def score_term_board(entries: Any, options: RankingOptions, score: str, track: str,
                     reference_name: str | None = None, notes: tuple[str, ...] = ()
                     ) -> Leaderboard:
    """One sub-track of a score year: ranked by ``exp(2·x/x_B)`` of one metric (the same order
    as the metric itself, lower is better)."""
    column, label, title = SCORE_TERMS[track]
    require_metrics(entries, (column,), title)
    reference = resolve_score_reference(entries, score, reference_name)
    ref_value = getattr(reference, column)
    table = entries.table
    reasons = eligibility(table, options.psnr_gate, (column,))
    frame = table[["model", column, "psnr_val"]].copy()
    frame[label] = [float("nan") if _missing(v) else _exp_term(v, ref_value)
                    for v in table[column]]
    frame.insert(0, "rank", rank_values(frame[label].where(reasons == "")))
    frame["note"] = reasons
    frame = _finish(frame, label)
    year = score.removeprefix("ntire")
    desc = (f"{label} = exp(2·{METRICS[column].label}/{ref_value:g}), {reference.name} the "
            f"baseline ({reference.source}); lower is better.")
    return Leaderboard(f"{track}_{score}", f"NTIRE {year} {title}", desc, frame, notes,
                       "computed")


def _exp_term(value: float, reference: float) -> float:
    try:
        return math.exp(2 * value / reference)
    except OverflowError:
        return math.inf


def metric_board(entries: Any, options: RankingOptions, metric: str) -> Leaderboard:
    """Any metric as a plain ranking (PSNR: higher is better; everything else lower)."""
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    m = METRICS[metric]
    require_metrics(entries, (metric,), f"ranking by {metric}")
    table = entries.table
    reasons = eligibility(table, options.psnr_gate, (metric,))
    frame = table[["model", metric]].copy()
    frame.insert(0, "rank", rank_values(table[metric].where(reasons == ""), m.higher_is_better))
    frame["note"] = reasons
    frame = _finish(frame, metric, ascending=not m.higher_is_better)
    order = "higher" if m.higher_is_better else "lower"
    return Leaderboard(f"rank_{metric}", f"Ranking by {m.label}",
                       f"Ranked by {m.label}; {order} is better.", frame, (), "computed")
