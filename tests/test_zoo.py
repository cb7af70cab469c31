"""``esrprof zoo``: every reference model, published beside measured."""

from __future__ import annotations

import json

from esrprof.cli import main
from esrprof.zoo.registry import REGISTRY


def test_zoo_lists_every_model_with_both_figures(capsys):
    assert main(["zoo"]) == 0
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
    assert main(["zoo", "bsrn", "RLFN", "--json", str(path)]) == 0
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
