"""CSV cells never start a formula, and names lose control, NUL and bidi characters in every
file of a report (issue 16, item 5)."""

from __future__ import annotations

import csv
import io
import json
import xml.dom.minidom
from pathlib import Path

import pytest
from torch import nn

import esrprof
from esrprof.cli import main
from esrprof.report.markup import clean_name, csv_cell

FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+2",
    "\r=1+3",
    "＝1+1",  # full-width equals: some spreadsheets read it as "="
]


@pytest.mark.parametrize("cell", [*FORMULAS, "-", "=", "+"])
def test_a_cell_that_starts_a_formula_is_text(cell):
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["IMDN", "RLFN (ByteESR)", "-5", "+1.5e3", "0.25", 3, None,
                                  "a=b", "x-1"])
def test_other_cells_are_left_alone(cell):
    assert csv_cell(cell) == cell


@pytest.mark.parametrize(("raw", "clean"), [
    ("net\x00work", "net work"),
    ("\u202eevil\u202c", "evil"),
    ("a\u2066b\u2069c\u200f", "abc"),
    ("line\nbreak\rhere", "line break here"),
    ("\x1b[31mred\x1b[0m", "[31mred [0m"),
    ("\ufeffbom", "bom"),
    ("plain", "plain"),
])
def test_names_lose_control_and_bidi_characters(raw, clean):
    assert clean_name(raw) == clean


def _cells(path: Path) -> list[str]:
    return [c for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))) for c in row]


class Tiny(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    table = folder / "table.csv"
    # (the full-width "＝" is left to the unit test: the chart font has no glyph for it)
    names = [*(f for f in FORMULAS if not f.startswith("＝")), "nul\x00name", "\u202eevil"]
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["team", "params_M", "flops_G", "runtime_ms"])
        for i, name in enumerate(names):
            writer.writerow([name, 0.1 + i / 10, 1.0 + i, 10.0 + i])
    result = folder / "result.json"
    esrprof.profile(Tiny(4), (1, 3, 8, 8), name="=3+4\x00\u202e").save(result)
    out = folder / "report"
    assert main(["report", str(table), str(result), "-o", str(out)]) == 0
    return out


def test_no_csv_cell_of_a_report_starts_a_formula(hostile_report):
    csvs = sorted(hostile_report.rglob("*.csv"))
    assert len(csvs) >= 2
    for path in csvs:
        for cell in _cells(path):
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "＝")), (path.name, cell)
            if cell.startswith("-"):
                float(cell)  # a negative number, never a formula
    entries = _cells(hostile_report / "entries.csv")
    assert "'@SUM(1+1)" in entries and "'=3+4" in entries


def test_no_control_or_bidi_character_reaches_any_report_file(hostile_report):
    for path in hostile_report.rglob("*"):
        if path.suffix not in (".csv", ".md", ".html", ".svg", ".json"):
            continue
        text = path.read_text(encoding="utf-8")
        bad = [ch for ch in text if ch in "\x00\u202e\u202c\u2066\u2069" or
               (ord(ch) < 32 and ch not in "\n\t\r")]
        assert not bad, (path.name, bad[:3])


def test_every_svg_of_the_report_is_valid_xml(hostile_report):
    svgs = list(hostile_report.rglob("*.svg"))
    assert svgs
    for svg in svgs:
        xml.dom.minidom.parseString(svg.read_bytes())  # a NUL would make it invalid


def test_report_json_keeps_the_names_readable(hostile_report):
    doc = json.loads((hostile_report / "report.json").read_text())
    assert "nul name" in json.dumps(doc, ensure_ascii=False)
