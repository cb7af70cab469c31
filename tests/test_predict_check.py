"""`esrprof predict --check`: predicted against measured for records with a run, and
`esrprof predict SPEC --challenge` under a year's rules."""

from __future__ import annotations

import json

import pytest
import torch

import esrprof
from esrprof.cli import main
from esrprof.loading import build
from esrprof.prediction import predict
from esrprof.prediction.check import check, gpu_of_record
from esrprof.run import RunConfig

TINY = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, 12, 3, padding=1))
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(self.body(x))
"""


def _scale_times(block, factor):
    """Every time in a runtime block (samples and the figures derived from them) x factor,
    so the record stays consistent."""
    def scale(value):
        if isinstance(value, list):
            return [scale(v) for v in value]
        return value * factor if isinstance(value, (int, float)) else value

    for key in list(block):
        if key.endswith("_ms"):
            block[key] = scale(block[key])
    for split in block["splits"].values():
        for key in list(split):
            if key.endswith("_ms"):
                split[key] = scale(split[key])


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Three records of one real (tiny, CPU) run, told they ran on an A6000 and measured at
    twice the prediction; and the untouched CPU record."""
    folder = tmp_path_factory.mktemp("check")
    (folder / "tiny.py").write_text(TINY)
    spec = f"{folder / 'tiny.py'}:Tiny"
    model = build(spec)
    result = esrprof.profile(model, (1, 3, 16, 16),
                             run=RunConfig(max_images=1, trials=1, warmup=0, scale=2))
    base = json.loads(result.to_json())
    base["model"]["spec"] = spec
    paths = []
    for channels in (8, 16, 32):
        d = json.loads(json.dumps(base))
        d["model"]["kwargs"] = {"channels": channels}
        d["environment"].update(device="cuda", gpu_name="NVIDIA RTX A6000")
        net = build(spec, {"channels": channels})
        split_means = []
        for split in d["runtime"]["splits"].values():
            ms = [predict(net, (1, 3, *s), "rtx-a6000").runtime.ms for s in split["shapes"]]
            split_means.append(sum(ms) / len(ms))
        _scale_times(d["runtime"], 2 * sum(split_means) / len(split_means)
                     / d["runtime"]["runtime_ms"])
        path = folder / f"tiny{channels}.json"
        path.write_text(json.dumps(d))
        paths.append(path)
    cpu = folder / "tiny_cpu.json"
    cpu.write_text(json.dumps(base))
    return paths, cpu


def test_check_predicts_for_the_gpu_the_record_names(records):
    paths, cpu = records
    report = check([*paths, cpu])
    assert [r.gpu for r in report.rows] == ["NVIDIA RTX A6000"] * 3
    for r in report.rows:
        assert r.ratio == pytest.approx(0.5, rel=1e-6)
    assert report.median_ratio == pytest.approx(0.5, rel=1e-6)
    assert report.spearman == pytest.approx(1.0)
    assert report.error_by_kind()  # kinds whose share varies across the three models
    (skipped,) = report.skipped
    assert skipped[0] == str(cpu) and "--gpu" in skipped[1]


def test_check_cli_prints_ratios_and_rho(records, capsys):
    paths, cpu = records
    assert main(["predict", "--check", *map(str, paths), str(cpu)]) == 0
    out = capsys.readouterr().out
    assert "median ratio predicted/measured 0.50" in out and "Spearman rho 1.000" in out
    assert "skipped" in out and "tiny_cpu.json" in out
    # nothing checkable: one line, exit 2
    assert main(["predict", "--check", str(cpu)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--gpu" in err


def test_a_cpu_record_checks_against_a_given_spec(records):
    _, cpu = records
    report = check([cpu], "custom:fp32_tflops=0.1,bandwidth_gbs=20")
    (row,) = report.rows
    assert row.gpu.startswith("custom") and row.measured_ms > 0 and row.predicted_ms > 0


def test_gpu_names_match_known_specs():
    assert gpu_of_record({"gpu_name": "NVIDIA GeForce RTX 3090"}).name == "rtx-3090"
    assert gpu_of_record({"gpu_name": "NVIDIA RTX A6000"}).name == "rtx-a6000"
    assert gpu_of_record({"gpu_name": "NVIDIA TITAN Xp"}).name == "titan-xp"
    assert gpu_of_record({"gpu_name": "Some Accelerator"}) is None
    assert gpu_of_record({}) is None


def test_predict_under_a_years_rules(capsys, root, monkeypatch, tmp_path):
    monkeypatch.chdir(root)
    out_json = tmp_path / "p.json"
    assert main(["predict", "reference_models/rlfn.py:RLFN", "--challenge", "ntire2025",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "NTIRE 2025 protocol on NVIDIA RTX A6000" in out and "vs EFDN" in out
    assert "predicted score" in out
    data = json.loads(out_json.read_text())
    rel = data["relative"]
    assert rel["baseline"] == "EFDN" and rel["challenge"] == "ntire2025"
    assert rel["runtime_ratio"] == pytest.approx(data["runtime"]["ms"]
                                                 / rel["baseline_predicted_ms"])
    # the score is the year's formula: exact FLOPs and params, the predicted ratio
    import math

    w = rel["weights"]
    want = (w[0] * math.exp(2 * rel["runtime_ratio"])
            + w[1] * math.exp(2 * rel["flops_g"] / rel["baseline_flops_g"])
            + w[2] * math.exp(2 * rel["params_m"] / rel["baseline_params_m"]))
    assert rel["score"] == pytest.approx(want)
    assert main(["predict", "reference_models/rlfn.py:RLFN", "--challenge", "ntire1999"]) == 2
    assert main(["predict"]) == 2


def test_the_baseline_scores_the_years_baseline_score():
    from esrprof.zoo.registry import REGISTRY

    p = esrprof.prediction.predict_challenge(REGISTRY["EFDN"].build(), "ntire2025")
    assert p.relative.runtime_ratio == pytest.approx(1.0)
    # FLOPs of the year's count vs the published 16.70 G: within a percent of 7.389
    assert p.relative.score == pytest.approx(7.389, rel=0.02)
    assert p.relative.runtime_ms_scaled == pytest.approx(16.69)
    # on another GPU than the year's, the published baseline time does not scale the ratio
    q = esrprof.prediction.predict_challenge(REGISTRY["RLFN"].build(), "ntire2025", "h100")
    assert q.relative.runtime_ms_scaled is None and q.relative.runtime_ratio > 0
    assert torch.is_grad_enabled()
