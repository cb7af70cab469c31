"""Reports: leaderboards, challenge scores, charts and a written summary from result records.

    >>> from esrprof.report import ReportOptions, build_report, write_report
    >>> report = build_report(["reference_models/data/ntire2022_table1.csv"])
    >>> report.leaderboard("st1").frame  # a pandas DataFrame
    >>> write_report(report, "reports/ntire2022")
    >>> report.prediction.runtime_vs_predicted.spearman  # runtime vs predicted runtime

Entries with a prediction (a result JSON's ``prediction`` block; rows of the published NTIRE
2022 table whose team is a reference model, predicted unless ``predict_references=False``) get
the section "Why runtime diverges from FLOPs".

pandas, scipy and matplotlib load only when a report is built (torch too, when reference
models are predicted).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esrprof.challenges import challenge
from esrprof.errors import UsageError
from esrprof.report.inputs import (
    Entries,
    entries_challenge,
    load_entries,
    with_reference_predictions,
)
from esrprof.report.prediction import PredictionFindings, predicted_score_board
from esrprof.report.prediction import analyse as analyse_predictions
from esrprof.report.ranking import (
    METRICS,
    SCORE_TERMS,
    SCORES,
    Baseline,
    Leaderboard,
    MissingMetricError,
    PsnrGate,
    RankingOptions,
    ScoreReference,
    challenge_score,
    main_track,
    metric_board,
    score_board,
    score_term_board,
    subtrack1,
    subtrack2,
)
from esrprof.report.summary import Findings, analyse, summary_markdown

TRACKS = {"main": main_track, "st1": subtrack1, "st2": subtrack2}


@dataclass(frozen=True)
class ReportOptions:
    title: str = "esrprof report"
    psnr_gate: PsnrGate | None = None
    tracks: tuple[str, ...] | None = None  # None: every 2022 track the inputs' metrics allow
    scores: tuple[str, ...] = ()  # "ntire2024", "ntire2025"
    # The entry the scores are relative to; None: the year's published reference model.
    score_baseline: str | None = None
    rank_by: tuple[str, ...] = ()
    per_metric_ranks: str = "auto"  # "auto", "printed", "computed"
    top_layers: int = 10
    allow_mixed_hardware: bool = False
    # Predict the published NTIRE 2022 table's rows whose team is a reference model (shape only,
    # about 0.1 s each); predictions carried by result files are used either way.
    predict_references: bool = True
    # A challenge year ("ntire2026"): its tracks, score, baseline and PSNR gate (an explicit
    # psnr_gate / tracks / score_baseline still wins). None: the 2022 tracks the inputs allow
    # and the scores asked for, as before. "auto": the score year every entry follows, if any.
    challenge: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["psnr_gate"] = str(self.psnr_gate) if self.psnr_gate else None
        return d


@dataclass(frozen=True)
class Report:
    title: str
    entries: Entries
    leaderboards: tuple[Leaderboard, ...]
    findings: Findings
    options: ReportOptions = field(default_factory=ReportOptions)
    skipped: tuple[str, ...] = ()  # leaderboards left out, and why
    prediction: PredictionFindings | None = None  # None: no entry has a prediction

    @property
    def summary_markdown(self) -> str:
        return summary_markdown(self.findings)

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader must know about comparing the entries (see Entries.notes)."""
        return self.entries.notes

    def leaderboard(self, key: str) -> Leaderboard:
        for b in self.leaderboards:
            if b.key == key:
                return b
        raise KeyError(f"no leaderboard {key!r}; have {[b.key for b in self.leaderboards]}")

    def to_dict(self) -> dict[str, Any]:
        from esrprof._version import __version__

        return {
            "tool": {"name": "esrprof report", "version": __version__},
            "title": self.title,
            "options": self.options.to_dict(),
            "skipped": list(self.skipped),
            "notes": list(self.notes),
            "findings": self.findings.to_dict(),
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "leaderboards": [b.to_dict() for b in self.leaderboards],
            "inputs": [Path(s).name for s in self.entries.sources],
            "entries": self.entries.to_dict()["entries"],
            "predictions": self.entries.predictions_dict(),
        }


def build_report(
    inputs: Sequence[str | os.PathLike[str]] | Entries, options: ReportOptions | None = None
) -> Report:
    """Read the inputs (unless already read) and compute every leaderboard and the findings,
    and, for the entries with a prediction, the prediction findings."""
    options = options or ReportOptions()
    entries = (
        inputs
        if isinstance(inputs, Entries)
        else load_entries(inputs, allow_mixed_hardware=options.allow_mixed_hardware)
    )
    if options.predict_references:
        entries = with_reference_predictions(entries)
    inferred = options.challenge == AUTO
    if inferred:
        options = dataclasses.replace(options, challenge=_inferred_year(entries))
    if options.challenge is not None:
        options = _with_challenge(options)
    ranking = RankingOptions(psnr_gate=options.psnr_gate, per_metric_ranks=options.per_metric_ranks)
    boards: list[Leaderboard] = []
    skipped: list[str] = []
    inferred_without_score = False  # then the tracks the inputs allow, as without a year
    if options.challenge is not None and challenge(options.challenge).score is not None:
        try:
            boards += _score_year_boards(entries, ranking, options)
        except MissingMetricError as exc:
            if not inferred:  # asked for by name: an error, not a quiet gap
                raise
            skipped.append(f"{options.challenge} score left out: {exc}")
            inferred_without_score = True
    default_tracks = tuple(TRACKS)
    if options.challenge is not None and not inferred_without_score:
        # the year's rank-sum tracks (a score year has none)
        default_tracks = tuple(_TRACK_KEYS[t.key] for t in challenge(options.challenge).tracks
                               if t.key in _TRACK_KEYS)
    for key in options.tracks if options.tracks is not None else default_tracks:
        if key not in TRACKS:
            raise UsageError(f"unknown track {key!r}; choose from {', '.join(TRACKS)}")
        try:
            boards.append(TRACKS[key](entries, ranking))
        except MissingMetricError as exc:
            if options.tracks is not None:  # asked for by name: an error, not a quiet gap
                raise
            skipped.append(f"{key} left out: {exc}")
    for score in options.scores:
        boards.append(score_board(entries, ranking, score, options.score_baseline))
    for metric in options.rank_by:
        boards.append(metric_board(entries, ranking, metric))
    predicted = predicted_score_board(entries, ranking)  # entries without a measured runtime
    if predicted is not None:
        boards.append(predicted)
    if not boards:
        raise UsageError("no leaderboard can be built from these inputs: " + "; ".join(skipped))
    prediction = (analyse_predictions(entries.table, entries.predictions)
                  if set(entries.predictions) & set(entries.models) else None)
    return Report(options.title, entries, tuple(boards), analyse(entries.table), options,
                  tuple(skipped), prediction)


# ReportOptions.challenge: the year the entries themselves follow (the command line's default).
AUTO = "auto"


def _inferred_year(entries: Entries) -> str | None:
    """A score year (2024 on) when every entry follows it: results profiled under the latest
    rules are ranked by those rules. NTIRE 2022's entries, mixed years or none: the 2022 tracks
    the inputs allow, with no year's PSNR gate imposed (as before years were known)."""
    year = entries_challenge(entries)
    return year if year is not None and challenge(year).score is not None else None


# The 2022 leaderboards' keys by the tracks of esrprof/challenges/.
_TRACK_KEYS = {"main_runtime": "main", "subtrack1_rank_sum": "st1", "subtrack2_rank_sum": "st2"}


def _with_challenge(options: ReportOptions) -> ReportOptions:
    """The options a challenge year implies: its PSNR gate, unless one is given."""
    rules = challenge(options.challenge)
    gate = options.psnr_gate
    if gate is None and rules.psnr_gate is not None:
        gate = PsnrGate(rules.psnr_gate.valid_db, rules.psnr_gate.test_db)
    return dataclasses.replace(options, challenge=rules.name, psnr_gate=gate)


def _score_year_boards(entries: Entries, ranking: RankingOptions,
                       options: ReportOptions) -> list[Leaderboard]:
    """A score year's main track (Score_Final) and its sub-tracks (one score term each)."""
    rules = challenge(options.challenge)
    notes = tuple(_mixed_year_notes(entries, rules))
    boards = [score_board(entries, ranking, rules.name, options.score_baseline, notes)]
    for track in rules.tracks:
        if track.key in SCORE_TERMS:
            boards.append(score_term_board(entries, ranking, rules.name, track.key,
                                           options.score_baseline, notes))
    return boards


def _mixed_year_notes(entries: Entries, rules: Any) -> list[str]:
    """Say so where published figures of another year stand in this year's ranking."""
    if not entries.references or rules.name == "ntire2022":
        return []
    return [f"the rows of {', '.join(entries.references)} are figures another year published "
            f"(other GPU, data and FLOPs convention), ranked here against {rules.title}'s "
            f"baseline {rules.baseline.model}"]


def write_report(report: Report, output: str | os.PathLike[str], *, charts: bool = True,
                 formats: Sequence[str] = ("png", "svg")) -> Path:
    """Write the report folder, its charts in ``formats`` (png, svg); returns its path.

    It is built aside and swapped in whole (:func:`esrprof.files.replace_folder`): an existing
    ``output`` is replaced only when esrprof wrote it and nobody changed it since; any other
    non-empty folder is refused with an OutputError, untouched.
    """
    from esrprof.files import replace_folder
    from esrprof.report.render import write_report_files

    replace_folder(output, lambda tmp: write_report_files(report, tmp, charts=charts,
                                                          formats=tuple(formats)))
    return Path(output)


__all__ = [
    "METRICS",
    "SCORES",
    "Baseline",
    "Entries",
    "Findings",
    "Leaderboard",
    "PredictionFindings",
    "PsnrGate",
    "Report",
    "ReportOptions",
    "ScoreReference",
    "build_report",
    "challenge_score",
    "load_entries",
    "write_report",
]
