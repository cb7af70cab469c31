"""Report inputs: esrprof result JSON files and CSV tables with the challenge's columns.

Both become one table, one row per entry, in the units of ``Result.summary()`` (M, G, ms, MiB).
Rows of a published table keep its printed ranks (``printed_*`` columns) so that a leaderboard can
reproduce the table exactly; per-layer MACs of results that carry them are kept beside the table.

A value that makes no sense (a negative, zero or infinite runtime, a negative count, NaN) is
refused with its file, line and column; an empty cell (or a JSON null) means "not measured".
A published table (one carrying the challenge's printed ranks) is a labelled reference: its
runtimes may stand beside runtimes measured here, with a note saying where each was measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esrprof.environment import same_hardware
from esrprof.errors import ResultFileError, UsageError
from esrprof.jsonio import jsonable
from esrprof.results import load_result

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
# Published tables esrprof knows, by their header, and where their runtimes were measured.
KNOWN_TABLES = {
    (
        "team", "ranked", "main_rank", "st1_sum", "st1_rank", "st2_sum", "st2_rank", "psnr_val",
        "psnr_test", "runtime_ms", "runtime_rank", "params_m", "params_rank", "flops_g",
        "flops_rank", "acts_m", "acts_rank", "mem_m", "mem_rank", "convs",
    ): "Titan Xp (NTIRE 2022 published table)",
}


@dataclass(frozen=True)
class Entries:
    """Every entry of a report.

    ``table`` is a pandas DataFrame: ``model``, the metric columns (NaN where unknown),
    ``hardware`` (where runtime and memory were measured), ``source`` (the file), and the
    ``printed_*`` columns of a published table (NaN for other rows). ``layers`` maps a model to
    its per-module MACs (dicts with module, module_type, macs), for results that carry them.
    """

    table: Any
    layers: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    references: tuple[str, ...] = ()  # sources that are published tables (see read_table)
    notes: tuple[str, ...] = ()  # what a reader must know about comparing the entries

    @property
    def models(self) -> list[str]:
        return list(self.table["model"])

    def has_metric(self, column: str) -> bool:
        return column in self.table and bool(self.table[column].notna().any())

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "references": list(self.references),
            "notes": list(self.notes),
            "entries": _records(self.table),
            "layers": {k: list(v) for k, v in self.layers.items()},
        }


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; a folder stands for the *.json and *.csv files directly in it."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
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
    import pandas as pd

    files = expand_paths(paths)
    if not files:
        raise UsageError("no input files given")
    frames = []
    references: list[str] = []
    layers: dict[str, tuple[dict[str, Any], ...]] = {}
    for path in files:
        if path.suffix.lower() == ".csv":
            frame, is_reference = read_table(path)
            frames.append(frame)
            if is_reference:
                references.append(path.name)
        else:
            row, model_layers = read_result(path)
            frames.append(pd.DataFrame([row]))
            if model_layers:
                layers[row["model"]] = model_layers
    table = pd.concat(frames, ignore_index=True, sort=False)
    for column in (*METRIC_COLUMNS, *PRINTED_COLUMNS):
        if column not in table:
            table[column] = float("nan")
        table[column] = pd.to_numeric(table[column])
    for column in ("model", "hardware", "source"):  # lone surrogates cannot be written out
        table[column] = table[column].map(lambda v: jsonable(v) if isinstance(v, str) else v)
    table["model"] = table["model"].astype(str)
    _check_duplicates(table)
    is_reference = table["source"].isin(references)
    if not allow_mixed_hardware:
        _check_hardware(table[~is_reference])
    ordered = ["model", *METRIC_COLUMNS, "hardware", "source", *PRINTED_COLUMNS]
    return Entries(
        table=table[ordered].reset_index(drop=True),
        layers=layers,
        sources=tuple(str(p) for p in files),
        references=tuple(references),
        notes=tuple(_reference_notes(table, is_reference)),
    )


def read_result(path: Path) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """One result JSON -> its summary row and its per-module MACs (empty without layer data)."""
    result = load_result(path)  # raises ResultFileError: unreadable, not JSON, newer schema
    row = result.summary()
    row["model"] = jsonable(row["model"])  # a lone surrogate can be neither drawn nor written
    if not row.get("model"):
        raise ResultFileError(f"{path}: result has no model name")
    measured = any(row.get(c) is not None for c in MEASURED_COLUMNS)
    if measured and not row.get("hardware"):
        # Unknown hardware is its own machine: never silently equal to another.
        row["hardware"] = f"unknown hardware ({path.name})"
    row["source"] = path.name
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
    return row, layers


def read_table(path: Path) -> tuple[Any, bool]:
    """A CSV with the challenge's columns (or Result.summary() columns) -> normalised rows, and
    whether it is a published table (it carries printed ranks): a labelled reference."""
    import pandas as pd

    try:
        # utf-8-sig: a spreadsheet's byte-order mark must not become part of the first header
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                          encoding="utf-8-sig")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
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
    table["model"] = table["model"].str.strip()
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
    import numpy as np
    import pandas as pd

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
