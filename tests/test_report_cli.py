"""`esrprof report` end to end: the folder it writes, and one-line errors that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from esrprof.cli import main

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"


def _small_table(folder: Path) -> Path:
    p = folder / "small.csv"
    p.write_text(
        "team,ranked,runtime_ms,params_M,flops_G,acts_M,mem_M,psnr_val,psnr_test,convs\n"
        "A,1,10,0.30,20,80,300,29.01,28.70,40\n"
        "B,1,14,0.20,12,60,500,29.00,28.71,30\n"
        "C,1,12,0.25,25,70,200,28.90,28.60,35\n"
        "D,0,30,0.50,40,150,700,29.20,28.90,50\n"
    )
    return p


@pytest.fixture(scope="module")
def table_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "ntire2022"
    rc = main(["report", str(TABLE), "-o", str(out), "--score", "ntire2024",
               "--score-baseline", "ByteESR", "--rank-by", "acts_m", "--title", "NTIRE 2022"])
    return rc, out


def test_report_folder_contents(table_report):
    rc, out = table_report
    assert rc == 0
    for name in ("index.html", "report.md", "summary.md", "entries.csv", "report.json"):
        assert (out / name).is_file(), name
    keys = ["main", "st1", "st2", "score_ntire2024", "rank_acts_m"]
    for key in keys:
        assert (out / "leaderboards" / f"{key}.csv").is_file()
        assert (out / "leaderboards" / f"{key}.md").is_file()
    doc = json.loads((out / "report.json").read_text())
    assert [b["key"] for b in doc["leaderboards"]] == keys
    assert sorted(doc["files"]) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not list(out.parent.glob(".ntire2022.*"))  # no temporary folder left behind


def test_report_csv_round_trips_the_sums(table_report):
    _, out = table_report
    st2 = pd.read_csv(out / "leaderboards" / "st2.csv")
    ranked = st2[st2["rank"].notna()]
    assert (ranked["st2_sum"] == ranked["printed_sum"]).all()
    score = pd.read_csv(out / "leaderboards" / "score_ntire2024.csv").set_index("model")
    assert round(score.loc["ByteESR", "score"], 3) == 7.389


def test_report_page_is_self_contained(table_report):
    _, out = table_report
    page = (out / "index.html").read_text()
    # four charts of the table, two of the reference models' predictions
    assert page.count("<img src='data:image/png;base64,") == 6
    assert "http://" not in page and "https://" not in page
    assert page.count('class="leaderboard"') == 5
    for href in ("charts/flops_vs_runtime.svg", "charts/rank_shift.svg"):
        assert href in page and (out / href).is_file()


def test_stdout(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", str(_small_table(tmp_path)), "-o", str(out), "--no-charts"]) == 0
    text = capsys.readouterr().out
    assert "index.html: 4 entries; leaderboards: main, st1, st2" in text
    assert not (out / "charts").exists() or not any((out / "charts").iterdir())


def test_psnr_gate_option(tmp_path):
    out = tmp_path / "r"
    assert main(["report", str(_small_table(tmp_path)), "-o", str(out), "--no-charts",
                 "--psnr-gate", "29.0", "--track", "main"]) == 0
    main_board = pd.read_csv(out / "leaderboards" / "main.csv").set_index("model")
    assert main_board.loc["A", "rank"] == 1 and main_board.loc["B", "rank"] == 2
    assert pd.isna(main_board.loc["C", "rank"]) and "PSNR val 28.90" in main_board.loc["C", "note"]
    assert main_board.loc["D", "note"] == "not ranked in the source table"
    assert not (out / "leaderboards" / "st1.csv").exists()


def test_replaces_an_earlier_report_whole(tmp_path):
    out = tmp_path / "r"
    small = _small_table(tmp_path)
    assert main(["report", str(small), "-o", str(out), "--no-charts", "--rank-by", "convs"]) == 0
    assert (out / "leaderboards" / "rank_convs.csv").is_file()
    assert main(["report", str(small), "-o", str(out), "--no-charts"]) == 0
    assert not (out / "leaderboards" / "rank_convs.csv").exists()  # nothing stale survives


def _error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("esrprof: error: ") and "\n" not in err, err
    return err


def test_failure_leaves_existing_report_untouched(tmp_path, capsys):
    out = tmp_path / "r"
    small = _small_table(tmp_path)
    assert main(["report", str(small), "-o", str(out), "--no-charts"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    _error(capsys, ["report", str(small), str(bad), "-o", str(out)])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.")] == []


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path, capsys):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    err = _error(capsys, ["report", str(_small_table(tmp_path)), "-o", str(precious)])
    assert "not written by esrprof" in err
    assert (precious / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize(
    "csv_text,extra,message",
    [
        ("team,notes\nA,x\n", [], "no metric columns"),
        ("team,params_M,flops_G\nA,0.3,20\n", ["--track", "main"], "needs Runtime [ms]"),
        ("team,params_M,flops_G\nA,0.3,20\n", ["--score", "ntire2024"], "needs Runtime [ms]"),
        ("team,runtime_ms\nA,1\nA,2\n", [], "duplicate model name 'A'"),
        ("team,runtime_ms,hardware\nA,1,GPU1\nB,2,GPU2\n", [], "different hardware"),
        ("team,runtime_ms,flops_G,params_M\nA,1,2,3\n", ["--score", "ntire2024",
                                                        "--score-baseline", "Nope"],
         "not among the entries"),
        ("team,runtime_ms\nA,1\n", ["--psnr-gate", "good"], "--psnr-gate"),
    ],
)
def test_bad_input_one_line_nonzero(tmp_path, capsys, csv_text, extra, message):
    p = tmp_path / "t.csv"
    p.write_text(csv_text)
    err = _error(capsys, ["report", str(p), "-o", str(tmp_path / "out"), "--no-charts", *extra])
    assert message in err
    assert not (tmp_path / "out").exists()


def test_newer_schema_result(tmp_path, capsys):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema_version": 99, "model": {"name": "x"}}))
    err = _error(capsys, ["report", str(p), "-o", str(tmp_path / "out")])
    assert "newer than this esrprof reads" in err


def test_mixed_hardware_allowed_by_flag(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms,hardware\nA,1,GPU1\nB,2,GPU2\n")
    assert main(["report", str(p), "-o", str(tmp_path / "o"), "--no-charts",
                 "--allow-mixed-hardware"]) == 0



def test_deprecated_baseline_option_still_works_and_keeps_stdout_clean(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms,flops_G,params_M\nA,1,2,3\nB,2,3,4\n")
    common = ["report", str(p), "--no-charts", "--score", "ntire2024"]
    assert main([*common, "-o", str(tmp_path / "new"), "--score-baseline", "A"]) == 0
    new = capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "old"), "--baseline", "A"]) == 0
    old = capsys.readouterr()
    assert old.out.replace("old", "new") == new.out
    assert "--score-baseline" in old.err
    for folder in ("new", "old"):
        score = pd.read_csv(tmp_path / folder / "leaderboards" / "score_ntire2024.csv")
        assert round(score.set_index("model").loc["A", "score"], 3) == 7.389


def test_score_baseline_and_deprecated_alias_cannot_disagree(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms,flops_G,params_M\nA,1,2,3\nB,2,3,4\n")
    err = _error(capsys, ["report", str(p), "-o", str(tmp_path / "o"), "--score", "ntire2024",
                          "--score-baseline", "A", "--baseline", "B"])
    assert "--score-baseline" in err


def _close(a, b) -> bool:
    """Equal, floats to 1e-9 relative (another scipy or numpy may differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9)
    return a == b


def test_committed_example_is_current():
    """reports/ntire2022 was generated by the command in reports/README.md from the shipped
    table; its leaderboards and findings must match what this code computes now."""
    from esrprof.jsonio import jsonable
    from esrprof.report import ReportOptions, build_report

    example = Path(__file__).resolve().parents[1] / "reports" / "ntire2022" / "report.json"
    if not example.is_file():
        pytest.skip("no committed example report")
    doc = json.loads(example.read_text(encoding="utf-8"))
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["options"].items()}
    assert opts.pop("psnr_gate") is None  # the example uses the table's own ranked column
    report = build_report([TABLE], ReportOptions(**opts))
    fresh = jsonable(report.to_dict())
    assert _close(fresh["leaderboards"], doc["leaderboards"])
    assert _close(fresh["findings"], doc["findings"])
    assert fresh["inputs"] == doc["inputs"] == ["ntire2022_table1.csv"]
