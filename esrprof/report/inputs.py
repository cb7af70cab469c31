"""Report inputs: esrprof result JSON files and CSV tables with the challenge's columns.

Both become one table, one row per entry, in the units of ``Result.summary()`` (M, G, ms, MiB).
Rows of a published table keep its printed ranks (``printed_*`` columns) so that a leaderboard can
reproduce the table exactly; per-layer MACs of results that carry them are kept beside the table.

A value that makes no sense (a negative, zero or infinite runtime, a negative count, NaN) is
refused with its file, line and column; an empty cell (or a JSON null) means "not measured".
A published table (one carrying the challenge's printed ranks) is a labelled reference: its
runtimes may stand beside runtimes measured here, with a note saying where each was measured.

Predictions (:mod:`esrprof.prediction`, GPU figures from the shape trace) come with the entries: a
result JSON's ``prediction`` block, and, through :func:`with_reference_predictions`, a fresh
prediction for each row of the published NTIRE 2022 table whose team is a reference model.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esrprof.environment import same_hardware
from esrprof.errors import ResultFileError, UsageError
from esrprof.extras import require
from esrprof.jsonio import jsonable, read_bytes
from esrprof.report.markup import clean_name
from esrprof.results import load_result
from esrprof.sweep.state import is_sweep_folder, sweep_results

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.prediction.records import Prediction

# The flat row every input becomes (the keys of Result.summary()).
METRIC_COLUMNS = (
    "params_m",
    "flops_g",
    "acts_m",
    "convs",
    "complete_macs_g",
    "runtime_ms",
    "memory_mib",
    "psnr_val",
    "psnr_test",
)
# Metrics measured on a machine: only these make results from different hardware incomparable.
MEASURED_COLUMNS = ("runtime_ms", "memory_mib")

# CSV headers, lower-cased, -> our column. The challenge's own headers (ntire2022_table1.csv)
# and ours (a CSV of Result.summary() rows) are both accepted.
CSV_ALIASES = {
    "team": "model",
    "model": "model",
    "name": "model",
    "params_m": "params_m",
    "flops_g": "flops_g",
    "acts_m": "acts_m",
    "convs": "convs",
    "complete_macs_g": "complete_macs_g",
    "runtime_ms": "runtime_ms",
    "mem_m": "memory_mib",
    "memory_mib": "memory_mib",
    "psnr_val": "psnr_val",
    "psnr_test": "psnr_test",
    "hardware": "hardware",
}
# Printed ranking columns of a published table, kept so leaderboards can reproduce them.
PRINTED_ALIASES = {
    "ranked": "printed_ranked",
    "main_rank": "printed_main_rank",
    "runtime_rank": "printed_runtime_rank",
    "params_rank": "printed_params_rank",
    "flops_rank": "printed_flops_rank",
    "acts_rank": "printed_acts_rank",
    "mem_rank": "printed_mem_rank",
    "st1_sum": "printed_st1_sum",
    "st1_rank": "printed_st1_rank",
    "st2_sum": "printed_st2_sum",
    "st2_rank": "printed_st2_rank",
}
PRINTED_COLUMNS = tuple(PRINTED_ALIASES.values())
# The lowest value a figure can take; a table whose value is below it (or not finite) is refused.
# Runtime must be positive; a zero count or memory growth is possible.
POSITIVE_COLUMNS = ("runtime_ms",)
# Where the NTIRE 2022 table's runtimes were measured: also how its rows are recognised.
NTIRE2022_TABLE = "Titan Xp (NTIRE 2022 published table)"
# Published tables esrprof knows, by their header, and where their runtimes were measured.
KNOWN_TABLES = {
    (
        "team", "ranked", "main_rank", "st1_sum", "st1_rank", "st2_sum", "st2_rank", "psnr_val",
        "psnr_test", "runtime_ms", "runtime_rank", "params_m", "params_rank", "flops_g",
        "flops_rank", "acts_m", "acts_rank", "mem_m", "mem_rank", "convs",
    ): NTIRE2022_TABLE,
}
# Columns the table gains where an entry has a prediction (see Entries.table_with_predictions).
PREDICTED_COLUMNS = ("predicted_runtime_ms", "predicted_memory_mib", "memory_bound_share")


@dataclass(frozen=True)
class Entries:
    """Every entry of a report.

    ``table`` is a pandas DataFrame: ``model``, the metric columns (NaN where unknown),
    ``hardware`` (where runtime and memory were measured), ``source`` (the file), and the
    ``printed_*`` columns of a published table (NaN for other rows). ``layers`` maps a model to
    its per-module MACs (dicts with module, module_type, macs), for results that carry them.
    ``predictions`` maps a model to its :class:`esrprof.prediction.Prediction` (predicted from the
    shape trace, not measured), and ``prediction_sources`` says where each came from: the
    result file, or the reference model predicted for a published table's row.
    """

    table: Any
    layers: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    references: tuple[str, ...] = ()  # sources that are published tables (see read_table)
    notes: tuple[str, ...] = ()  # what a reader must know about comparing the entries
    predictions: Mapping[str, Prediction] = field(default_factory=dict)
    prediction_sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.table["model"])

    def has_metric(self, column: str) -> bool:
        return column in self.table and bool(self.table[column].notna().any())

    def table_with_predictions(self) -> Any:
        """The table, plus (when any entry has a prediction) the predicted columns of
        :data:`PREDICTED_COLUMNS`, ``predicted_gpu`` and
        ``prediction_source`` (empty where an entry has none)."""
        if not self.predictions:
            return self.table
        out = add_prediction_columns(self.table, self.predictions)
        out["predicted_gpu"] = [
            self.predictions[m].gpu.label if m in self.predictions else None for m in out["model"]
        ]
        out["prediction_source"] = [self.prediction_sources.get(m) for m in out["model"]]
        return out

    def predictions_dict(self) -> dict[str, dict[str, Any]]:
        """Each prediction record as JSON (less its own cost in seconds, which changes from run
        to run), with where it came from."""
        out: dict[str, dict[str, Any]] = {}
        for model, p in self.predictions.items():
            record = {k: v for k, v in p.to_dict().items() if k != "seconds"}
            out[model] = {"source": self.prediction_sources.get(model, ""), **record}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "references": list(self.references),
            "notes": list(self.notes),
            "entries": _records(self.table_with_predictions()),
            "layers": {k: list(v) for k, v in self.layers.items()},
            "predictions": self.predictions_dict(),
        }

    def reference_rows(self) -> list[str]:
        """Models of rows from the published NTIRE 2022 table (the teams' names)."""
        table = self.table
        rows = table["source"].isin(self.references) & (table["hardware"] == NTIRE2022_TABLE)
        return list(table.loc[rows, "model"])


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; a folder stands for the *.json and *.csv files directly in it, and a
    sweep's folder (``esrprof sweep -o DIR``) for the records of its done entries."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and is_sweep_folder(p):
            out.extend(sweep_results(p))
        elif p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in (".json", ".csv"))
            if not found:
                raise ResultFileError(f"{p}: folder holds no .json or .csv file")
            out.extend(found)
        else:
            out.append(p)
    return out


def load_entries(
    paths: Sequence[str | os.PathLike[str]], *, allow_mixed_hardware: bool = False
) -> Entries:
    """Read result JSONs and challenge-style CSVs into one checked table.

    Raises ResultFileError for a file that cannot be used and UsageError for inputs that cannot be
    reported together (duplicate model names; runtime or memory from different hardware unless
    ``allow_mixed_hardware``). A published table is a reference, never "different hardware": a
    note says where its figures and the others' were measured.
    """
    pd = require("pandas", "the report")

    files = expand_paths(paths)
    if not files:
        raise UsageError("no input files given")
    frames = []
    references: list[str] = []
    layers: dict[str, tuple[dict[str, Any], ...]] = {}
    predictions: dict[str, Prediction] = {}
    for path in files:
        if path.suffix.lower() == ".csv":
            frame, is_reference = read_table(path)
            frames.append(frame)
            if is_reference:
                references.append(path.name)
        else:
            row, model_layers, prediction = read_result(path)
            frames.append(pd.DataFrame([row]))
            if model_layers:
                layers[row["model"]] = model_layers
            if prediction is not None:
                predictions[row["model"]] = prediction
    table = pd.concat(frames, ignore_index=True, sort=False)
    for column in (*METRIC_COLUMNS, *PRINTED_COLUMNS):
        if column not in table:
            table[column] = float("nan")
        table[column] = pd.to_numeric(table[column])
    for column in ("model", "hardware", "source"):  # names as every output may show them
        table[column] = table[column].map(clean_name)
    table["model"] = table["model"].astype(str)
    _check_duplicates(table)
    is_reference = table["source"].isin(references)
    if not allow_mixed_hardware:
        _check_hardware(table[~is_reference])
    if "challenge" not in table:  # the year a result was profiled under; None for tables
        table["challenge"] = None
    table["challenge"] = table["challenge"].where(~is_reference, None)
    ordered = ["model", *METRIC_COLUMNS, "hardware", "source", "challenge", *PRINTED_COLUMNS]
    return Entries(
        table=table[ordered].reset_index(drop=True),
        layers=layers,
        sources=tuple(str(p) for p in files),
        references=tuple(references),
        notes=tuple(_reference_notes(table, is_reference)
                    + _convention_notes(table, is_reference)),
        predictions=predictions,
        prediction_sources={
            m: f"result file {src}"
            for m, src in zip(table["model"], table["source"]) if m in predictions
        },
    )


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


def with_reference_predictions(entries: Entries) -> Entries:
    """The entries, where each row of the published NTIRE 2022 table whose team is a reference
    model (``REGISTRY[name].team``) gets that model's prediction under the challenge's protocol
    (:func:`esrprof.prediction.predict_challenge`: Titan Xp, fp32, shape-only). A prediction an
    entry already carries is kept."""
    rows = [m for m in entries.reference_rows() if m not in entries.predictions]
    if not rows:
        return entries
    from esrprof.prediction.api import try_predict_challenge
    from esrprof.zoo.registry import REGISTRY

    by_team = {ref.team: ref for ref in REGISTRY.values() if ref.team}
    predictions = dict(entries.predictions)
    sources = dict(entries.prediction_sources)
    for model in rows:
        ref = by_team.get(model)
        if ref is None:
            continue
        # the prediction policy (docs/prediction.md): a failed prediction leaves the row bare
        prediction, _ = try_predict_challenge(ref.build())
        if prediction is None:
            continue
        predictions[model] = prediction
        sources[model] = f"reference model {ref.name} (esrprof.zoo), NTIRE 2022 protocol"
    return replace(entries, predictions=predictions, prediction_sources=sources)


def read_result(
    path: Path,
) -> tuple[dict[str, Any], tuple[dict[str, Any], ...], Prediction | None]:
    """One result JSON -> its summary row, its per-module MACs (empty without layer data) and
    its prediction (None when it carries none)."""
    result = load_result(path)  # raises ResultFileError: unreadable, not JSON, newer schema
    row = result.summary()
    # no lone surrogate (it can be neither drawn nor written), no control or bidi character
    row["model"] = clean_name(jsonable(row["model"]))
    if not row.get("model"):
        raise ResultFileError(f"{path}: result has no model name")
    measured = any(row.get(c) is not None for c in MEASURED_COLUMNS)
    if measured and not row.get("hardware"):
        # Unknown hardware is its own machine: never silently equal to another.
        row["hardware"] = f"unknown hardware ({path.name})"
    row["source"] = path.name
    row["challenge"] = result.challenge
    layers: tuple[dict[str, Any], ...] = ()
    if result.counts is not None and result.counts.ops:
        types: dict[str, str] = {}
        for op in result.counts.ops:
            types.setdefault(op.module, op.module_type)
        by_module = result.counts.by_module()
        layers = tuple(
            {"module": m, "module_type": types[m], "macs": macs}
            for m, macs in sorted(by_module.items(), key=lambda kv: -kv[1])
            if macs > 0
        )
    return row, layers, result.prediction


def read_table(path: Path) -> tuple[Any, bool]:
    """A CSV with the challenge's columns (or Result.summary() columns) -> normalised rows, and
    whether it is a published table (it carries printed ranks): a labelled reference."""
    pd = require("pandas", "the report")

    data = read_bytes(path)  # a regular file under the size cap, or one line
    try:
        # utf-8-sig: a spreadsheet's byte-order mark must not become part of the first header
        raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                          skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ResultFileError(f"{path}: not a readable CSV table ({exc})") from None
    rename: dict[str, str] = {}
    for header in raw.columns:
        key = str(header).strip().lower()
        target = CSV_ALIASES.get(key) or PRINTED_ALIASES.get(key)
        if target and target not in rename.values():
            rename[header] = target
    table = raw[list(rename)].rename(columns=rename)
    if "model" not in table:
        raise ResultFileError(f"{path}: no model column (expected 'team' or 'model')")
    metrics = [c for c in METRIC_COLUMNS if c in table]
    if not metrics:
        raise ResultFileError(
            f"{path}: no metric columns (expected some of runtime_ms, params_M, flops_G, acts_M, "
            "mem_M, convs, psnr_val, psnr_test)"
        )
    table["model"] = table["model"].map(clean_name)
    if (table["model"] == "").any():
        line = int((table["model"] == "").to_numpy().nonzero()[0][0]) + 2
        raise ResultFileError(f"{path}: line {line}: empty model name")
    headers = {ours: str(theirs).strip() for theirs, ours in rename.items()}
    for column in table.columns:
        if column not in ("model", "hardware"):
            table[column] = _numbers(table[column], path, headers[column],
                                     positive=column in POSITIVE_COLUMNS)
    is_reference = any(c in table for c in PRINTED_COLUMNS)
    header = tuple(str(h).strip().lower() for h in raw.columns)
    label = KNOWN_TABLES.get(header) or (
        f"published table ({path.name})" if is_reference else f"table ({path.name})"
    )
    if "hardware" in table:
        table["hardware"] = table["hardware"].str.strip().replace("", label)
    else:
        table["hardware"] = label
    table["source"] = path.name
    return table, is_reference


def _numbers(cells: Any, path: Path, header: str, *, positive: bool) -> Any:
    """A column of text cells as floats: empty is NaN (not measured); a cell that is not a
    finite number, or below the column's lowest sensible value, is refused."""
    pd = require("pandas", "the report")

    text = cells.str.strip()
    values = pd.to_numeric(text.replace("", None), errors="coerce").astype(float)
    given = (text != "").to_numpy()
    checks = (
        (~np.isfinite(values.to_numpy()), "not a finite number"),
        ((values <= 0 if positive else values < 0).to_numpy(),
         "it must be positive" if positive else "it must not be negative"),
    )
    for bad, why in checks:
        bad = bad & given
        if bad.any():
            i = int(bad.nonzero()[0][0])
            raise ResultFileError(
                f"{path}: line {i + 2}: column {header!r} holds {text.iloc[i]!r}: {why}"
            )
    return values


def _check_duplicates(table: Any) -> None:
    counts = table["model"].value_counts()
    dups = [name for name, n in counts.items() if n > 1]
    if dups:
        name = dups[0]
        where = ", ".join(table.loc[table["model"] == name, "source"])
        more = f" (and {len(dups) - 1} more)" if len(dups) > 1 else ""
        raise UsageError(
            f"duplicate model name {name!r} in {where}{more}; give each entry a distinct name "
            "(esrprof profile --name)"
        )


def _check_hardware(table: Any) -> None:
    machines = _machines(table)
    if len(machines) > 1:
        listed = "; ".join(f"{k!r} ({n} entries)" for k, n in machines.items())
        raise UsageError(
            f"runtime/memory from different hardware: {listed}; they are not comparable "
            "(pass --allow-mixed-hardware to report them together anyway)"
        )


def _machines(table: Any) -> dict[str, int]:
    """The machines the rows' runtime or memory come from, each with its number of rows."""
    measured = table[list(MEASURED_COLUMNS)].notna().any(axis=1)
    machines: dict[str, int] = {}
    for hardware in table.loc[measured, "hardware"].dropna():
        known = next((m for m in machines
                      if same_hardware({"hardware": hardware}, {"hardware": m})), None)
        machines[known or hardware] = machines.get(known or hardware, 0) + 1
    return machines


def entries_challenge(entries: Entries) -> str | None:
    """The one challenge year every entry follows: a result records the year whose rules it was
    profiled under, a published table is NTIRE 2022's. None when the entries follow several
    years (or none says)."""
    years = {"ntire2022" for _ in entries.references}
    table = entries.table
    if "challenge" in table:
        is_reference = table["source"].isin(entries.references)
        years |= {str(y) for y, ref in zip(table["challenge"], is_reference)
                  if not ref and isinstance(y, str) and y}
    return years.pop() if len(years) == 1 else None


def _convention_notes(table: Any, is_reference: Any) -> list[str]:
    """Say so when the entries' FLOPs follow different years' conventions (a result records its
    challenge; a published table is the NTIRE 2022 one)."""
    from esrprof.challenges import challenge

    years: dict[str, list[str]] = {}
    for (_, row), reference in zip(table.iterrows(), is_reference):
        name = "ntire2022" if reference else row.get("challenge")
        if isinstance(name, str) and name:
            years.setdefault(challenge(name).counting.convention, []).append(str(row["source"]))
    if len(years) < 2:
        return []
    parts = "; ".join(f"{conv}: {', '.join(dict.fromkeys(srcs))}" for conv, srcs in years.items())
    return [f"the entries' FLOPs follow different conventions ({parts}): FLOPs ranks across "
            "them compare conventions as much as models (esrprof profile --challenge NAME "
            "counts in one; docs/challenges.md)"]


def _reference_notes(table: Any, is_reference: Any) -> list[str]:
    """Where a published table's runtimes were measured, when others stand beside them."""
    local = _machines(table[~is_reference])
    if not local:
        return []
    here = "; ".join(f"{k} ({n} entries)" for k, n in local.items())
    notes = []
    for source, rows in table[is_reference].groupby("source", sort=False):
        for machine, n in _machines(rows).items():
            notes.append(
                f"{source} is a published table: the runtime and memory of its {n} entries were "
                f"measured on {machine}, the others' on {here}. Ranks across them compare "
                "machines as much as models."
            )
    return notes


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (NaN, NA and inf -> None; numpy scalars -> Python)."""
    return [{k: jsonable(v) for k, v in rec.items()} for rec in frame.to_dict(orient="records")]
