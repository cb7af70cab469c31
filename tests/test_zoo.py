"""``esrprof zoo``: every reference model, published beside measured."""

from __future__ import annotations

import json

from esrprof.cli import main
from esrprof.zoo.registry import REGISTRY


def test_zoo_lists_every_model_with_both_figures(capsys):
    assert main(["zoo", "--challenge", "ntire2022"]) == 0
    out = capsys.readouterr().out
    for name, entry in REGISTRY.items():
        assert name in out
        assert entry.team in out
    # every row reproduces (BSRN's documented exception is marked, not a mismatch)
    assert "NO:" not in out
    assert "complete" in out and "pub" in out and "ours" in out
    bsrn = next(line for line in out.splitlines() if line.startswith("BSRN"))
    assert "9.50" in bsrn and "2.02" in bsrn and "9.43" in bsrn
    assert "* BSRN:" in out  # the footnote that explains it


def test_zoo_json_and_name_filter(capsys, tmp_path):
    path = tmp_path / "zoo.json"
    assert main(["zoo", "bsrn", "RLFN", "--challenge", "ntire2022", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "RLFN" in out and "IMDN " not in out
    data = json.loads(path.read_text())
    rows = {r["name"]: r for r in data["models"]}
    assert list(rows) == ["BSRN", "RLFN"]
    assert rows["RLFN"]["reproduced"] is True and rows["RLFN"]["mismatches"] == []
    assert rows["BSRN"]["differs_from_published"] == ["flops_g"]
    assert rows["BSRN"]["published"]["flops_g"] == 9.50
    assert round(rows["BSRN"]["measured"]["flops_g"], 2) == 2.02
    assert rows["RLFN"]["measured"]["convs"] == 39


def test_zoo_unknown_model_is_a_usage_error(capsys):
    assert main(["zoo", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("esrprof: error: no reference model named 'no-such-model'")


def test_zoo_of_a_later_year_shows_only_that_years_published_figures(capsys, tmp_path):
    path = tmp_path / "zoo.json"
    assert main(["zoo", "--challenge", "ntire2026", "--no-predict", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "NTIRE 2026 rules: FLOPs = fvcore total" in out
    data = json.loads(path.read_text())
    rows = {r["name"]: r for r in data["models"]}
    assert data["challenge"] == "ntire2026"
    # the 2022 table's IMDN figures do not appear among 2026's published ones
    assert rows["IMDN"]["published"] is None
    assert rows["SPAN"]["published"] == {"params_m": 0.151, "flops_g": 9.83, "acts_m": 41.68,
                                         "convs": 22}
    assert rows["SPAN"]["measured"]["convs"] == 22
    assert round(rows["SPAN"]["measured"]["acts_m"], 2) == 41.68
    # every year's baseline, each with its own year's figures, said not to be one ranking
    assert "not one ranking" in out
    block = out[out.index("Each year's baseline"):]
    lines = {line.split()[0]: line for line in block.splitlines() if line[:3] == "202"}
    assert set(lines) == {"2022", "2023", "2024", "2025", "2026"}
    assert max(len(line) for line in block.splitlines()) <= 80
    assert "13.54" in lines["2024"] and "RTX 3090" in lines["2024"]
    assert "16.69" in lines["2025"] and "7.74" in lines["2026"]
    assert data["baselines"]["ntire2024"]["published"]["flops_g"] == 19.67


def test_zoo_unknown_challenge_is_one_usage_line(capsys):
    assert main(["zoo", "--challenge", "ntire1999"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ntire2026" in err
