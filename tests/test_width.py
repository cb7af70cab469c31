"""Every command's text fits 80 columns by default (as ``awk 'length > 80'`` measures: UTF-8
bytes), wider terminals get more, and --quiet / --format print the figures only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from esrprof.cli import main
from esrprof.render_text import fit, simple, table, widest, width

IMDN = "reference_models/imdn.py:IMDN"
BSRN = "reference_models/bsrn.py:BSRN"


@pytest.fixture(autouse=True)
def _in_repo(root, monkeypatch):
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "80")


def run(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def too_wide(text: str, cols: int = 80) -> list[str]:
    return [line for line in text.splitlines() if len(line.encode("utf-8")) > cols]


@pytest.mark.parametrize("year", ["ntire2026", "ntire2022"])
def test_zoo_fits_80_columns(capsys, year):
    out = run(capsys, "zoo", "--challenge", year)
    assert "MobileSR" in out and "Predicted on the" in out  # both tables are there
    if year == "ntire2022":  # the year whose table published every model's runtime
        assert "Spearman" in out
    assert too_wide(out) == []


def test_zoo_is_wider_on_a_wide_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    out = run(capsys, "zoo", "--no-predict")
    assert too_wide(out, 160) == []
    assert too_wide(out, 80)  # the full table, team and match columns included
    assert "NJUST_ESR" in out and "match" in out


def test_profile_card_fits_80_columns_with_every_block(capsys):
    # BSRN: long divergence reasons; peers; the per-layer tree and the flat top layers
    out = run(capsys, "profile", BSRN, "--input-shape", "1,3,16,16", "--counters", "thop",
              "--per-layer", "5", "--depth", "3")
    assert "Divergences" in out and "Peers" in out and "Per layer" in out
    assert "Predicted, not measured" in out
    assert too_wide(out) == []


def test_profile_run_block_fits_80_columns(capsys):
    out = run(capsys, "profile", IMDN, "--input-shape", "16x16", "--run", "--max-images", "1",
              "--trials", "1", "--threads", "1", "--synthetic", "quick", "--no-predict")
    assert "Runtime [ms]" in out
    assert too_wide(out) == []


def test_quiet_prints_only_the_figures(capsys):
    out = run(capsys, "profile", IMDN, "--input-shape", "1,3,32,32", "--quiet", "--no-predict")
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert lines["model"] == "IMDN"
    assert int(lines["params"]) == 893936
    assert "Divergences" not in out and "NTIRE" not in out
    assert too_wide(out) == []


def test_format_csv_holds_integers_as_integers(capsys):
    out = run(capsys, "profile", IMDN, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    row = rows[0]
    assert row["params"] == "893936" and row["convs"] == "43"
    assert row["macs_ntire2022"] == str(int(row["macs_ntire2022"]))  # no "5.853e+10", no ".0"
    assert round(int(row["macs_ntire2022"]) / 1e9, 2) == 58.53
    assert float(row["predicted_memory_mib"]) > 0


def test_format_json_and_md(capsys):
    doc = json.loads(run(capsys, "profile", IMDN, "--format", "json", "--no-predict"))
    assert doc["params"] == 893936 and isinstance(doc["macs_ntire2022"], int)
    assert doc["input_shape"] == "1x3x256x256"
    md = run(capsys, "profile", IMDN, "--format", "md", "--no-predict")
    head, rule, body = md.strip().splitlines()
    assert head.startswith("| model |") and set(rule) <= set("|-") and "| 893936 |" in body


def test_zoo_formats(capsys):
    rows = list(csv.DictReader(io.StringIO(run(capsys, "zoo", "RLFN", "BSRN", "--format",
                                               "csv", "--no-predict"))))
    assert [r["model"] for r in rows] == ["RLFN", "BSRN"]
    assert rows[1]["macs_ntire2022"] == str(int(rows[1]["macs_ntire2022"]))
    assert round(int(rows[1]["macs_ntire2022"]) / 1e9, 2) == 2.02
    doc = json.loads(run(capsys, "zoo", "FMEN", "--format", "json"))
    assert doc[0]["convs"] == 34 and doc[0]["predicted_memory_mib"] > 0
    out = run(capsys, "zoo", "FMEN", "--quiet", "--no-predict")
    assert out.strip() == "FMEN  0.341 M params, 22.28 G FLOPs, 72.09 M acts, 34 convs"


def test_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "132")
    assert width() == 132
    monkeypatch.setenv("COLUMNS", "10")
    assert width() == 40  # never narrower than a table can be


def test_table_narrows_its_wrap_columns():
    reason = "a long reason " * 8
    text = table([["78", "-7.408", reason]], ["layers", "diff [G]", "why"], cols=50, wrap=(2,))
    assert widest(text) <= 50
    assert " ".join(text.split()).count("reason") == 8  # wrapped, nothing lost


def test_fit_wraps_prose_and_keeps_units_whole():
    text = fit("  peak GPU memory 732.2 MiB at 1x3x510x510, the largest validation image "
               "(weights 0.7 MiB) and more words to wrap", 40)
    assert widest(text) <= 40
    assert "732.2 MiB" in text and "0.7 MiB" in text
    assert all(line.startswith("  ") for line in text.splitlines())


def test_simple_table_aligns_multiline_headers():
    text = simple([["a", "1"], ["bb", "22"]], ["name", "count\n[M]"], colalign=("left", "right"))
    lines = text.splitlines()
    assert lines[0].rstrip().endswith("count") and lines[1].startswith("name")
    assert lines[-1] == "bb       22"
