"""Predictions in the report: from result JSONs and for the published table's reference models,
into the findings, report.json, entries.csv, report.md, index.html and two charts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from esrprof import jsonio
from esrprof.cli import main
from esrprof.prediction import predict_challenge
from esrprof.report import ReportOptions, build_report, load_entries, write_report
from esrprof.report.prediction import SECTION_TITLE
from esrprof.results import Counts, ModelInfo, NtireRecord, OpRecord, Result
from esrprof.run import ImageQuality, RunConfig, RunResult, SplitResult
from esrprof.timing import Trials
from esrprof.zoo.registry import REGISTRY

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"
TITAN = "NVIDIA TITAN Xp"
# Reference models whose predictions the result files carry, with the runtime "measured".
RESULTS = {"FMEN": 28.07, "RLFN": 27.11, "IMDN": 50.86, "BSRN": 140.47}


def write_result(folder: Path, name: str, runtime: float | None, hardware: str,
                 prediction=None, flops_g: float = 2.0) -> Path:
    """A small complete result record (as `esrprof profile --json` writes it), with a
    prediction block when one is given."""
    macs = int(flops_g * 1e9)
    ops = (OpRecord("body", "Conv2d", "aten.convolution", "conv", 1, macs, 1000),)
    layers = (NtireRecord("body", "Conv2d", "conv", 1, macs, 1000, 1),)
    counts = Counts(params=300_000, buffers=0, input_shape=(1, 3, 64, 64), backend="meta",
                    fallback_reason=None, ops=ops, ntire2022_layers=layers)
    run = None
    if runtime is not None:
        splits = tuple(
            SplitResult(name=split, images=("0801",), shapes=((10, 10),),
                        trials=Trials.of([[runtime]]), warmup_forwards=1,
                        memory={"kind": "cuda", "max_allocated_mib": 100.0 + runtime},
                        quality=(ImageQuality("0801", 29.0, None),))
            for split in ("valid", "test")
        )
        run = RunResult(config=RunConfig(device="cpu", trained=True), device="cuda:0",
                        clock="cuda_event", threads=1, scale=4, pixel_range=1, splits=splits,
                        data={}, environment={"hardware": hardware})
    result = Result(ModelInfo(name=name), (1, 3, 64, 64), counts, run, {"hardware": hardware},
                    prediction=prediction)
    return result.save(folder / f"{len(list(folder.iterdir())):02d}.json")


@pytest.fixture(scope="module")
def predictions():
    return {name: predict_challenge(REGISTRY[name].build()) for name in RESULTS}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, predictions):
    folder = tmp_path_factory.mktemp("results")
    for i, (name, runtime) in enumerate(RESULTS.items()):
        write_result(folder, name, runtime, TITAN, predictions[name], flops_g=10.0 + i)
    write_result(folder, "no-prediction", 33.0, TITAN)  # in the report, not in the section
    return folder


@pytest.fixture(scope="module")
def results_report(results_dir, tmp_path_factory):
    report = build_report([results_dir], ReportOptions(title="mine"))
    out = write_report(report, tmp_path_factory.mktemp("out") / "report")
    return report, out


@pytest.fixture(scope="module")
def table_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "ntire2022"
    assert main(["report", str(TABLE), "-o", str(out), "--title", "NTIRE 2022"]) == 0
    return out


def _rho(pairs):
    xs, ys = zip(*pairs)
    return float(stats.spearmanr(xs, ys)[0])


def test_result_predictions_are_read_with_the_entries(results_dir, predictions):
    entries = load_entries([results_dir])
    assert set(entries.predictions) == set(RESULTS)
    assert entries.predictions["RLFN"].to_dict() == predictions["RLFN"].to_dict()
    assert entries.prediction_sources["RLFN"].startswith("result file ")
    table = entries.table_with_predictions().set_index("model")
    assert table.loc["RLFN", "predicted_runtime_ms"] == predictions["RLFN"].runtime.ms
    assert table.loc["RLFN", "predicted_gpu"] == TITAN
    assert pd.isna(table.loc["no-prediction", "predicted_runtime_ms"])


def test_result_predictions_reach_the_findings(results_report, predictions):
    report, _ = results_report
    f = report.prediction
    assert f is not None and f.n_entries == len(RESULTS)
    assert {k.model for k in f.by_kind} == set(RESULTS)
    expected = _rho((predictions[m].runtime.ms, RESULTS[m]) for m in RESULTS)
    assert f.runtime_vs_predicted.spearman == pytest.approx(expected)
    flops = report.entries.table.set_index("model")["flops_g"]
    assert f.runtime_vs_flops.spearman == pytest.approx(
        _rho((flops[m], RESULTS[m]) for m in RESULTS))
    assert {k.gpu for k in f.by_kind} == {TITAN}


def test_result_predictions_reach_the_report_files(results_report, predictions):
    report, out = results_report
    f = report.prediction
    doc = json.loads((out / "report.json").read_text())
    assert doc["prediction"] == json.loads(jsonio.dumps(f.to_dict()))
    assert doc["options"]["predict_references"] is True
    rows = {e["model"]: e for e in doc["entries"]}
    assert rows["BSRN"]["predicted_runtime_ms"] == predictions["BSRN"].runtime.ms
    assert rows["BSRN"]["predicted_memory_mib"] == predictions["BSRN"].memory.peak_allocated_mib
    assert rows["no-prediction"]["predicted_runtime_ms"] is None
    assert doc["predictions"]["BSRN"]["gpu"]["label"] == TITAN
    assert "seconds" not in doc["predictions"]["BSRN"]  # the file does not change between runs
    csv = pd.read_csv(out / "entries.csv").set_index("model")
    assert csv.loc["FMEN", "predicted_runtime_ms"] == pytest.approx(
        predictions["FMEN"].runtime.ms)
    rho = f"{f.runtime_vs_predicted.spearman:.3f}"
    md = (out / "report.md").read_text()
    page = (out / "index.html").read_text()
    for text in (md, page):
        assert SECTION_TITLE in text
        assert "from the shape trace, not measured" in text
        assert rho in text and f"{f.runtime_vs_flops.spearman:.3f}" in text
        assert "data movement (cat, copies, pixel-shuffle)" in text
        assert f"{predictions['IMDN'].runtime.ms:.2f}" in text
    assert f"## {SECTION_TITLE}" in md and "<section id='prediction'>" in page
    section = md.split(f"## {SECTION_TITLE}")[1].split("\n## ")[0]
    assert "| no-prediction |" not in section and "| BSRN | NVIDIA TITAN Xp |" in section


def test_charts_exist_and_open(results_report):
    _, out = results_report
    doc = json.loads((out / "report.json").read_text())
    keys = {c["key"] for c in doc["charts"]}
    assert {"runtime_vs_predicted", "predicted_time_by_kind"} <= keys
    for stem in ("runtime_vs_predicted", "predicted_time_by_kind"):
        with Image.open(out / "charts" / f"{stem}.png") as img:
            img.verify()
        with Image.open(out / "charts" / f"{stem}.png") as img:
            assert img.size[0] > 300 and img.size[1] > 200
        root = ET.parse(out / "charts" / f"{stem}.svg").getroot()
        assert root.tag.endswith("svg")
        assert f"charts/{stem}.png" in (out / "report.md").read_text()
        assert f"charts/{stem}.svg" in (out / "index.html").read_text()


def test_published_table_reference_rows_get_predictions_by_team(table_report):
    doc = json.loads((table_report / "report.json").read_text())
    # the reference models with a row in the 2022 table (SPAN, 2026's baseline, has none)
    teams = {ref.team: name for name, ref in REGISTRY.items()
             if ref.team and ref.published is not None}
    assert set(doc["predictions"]) == set(teams)
    for team, name in teams.items():
        assert name in doc["predictions"][team]["source"]
        assert doc["predictions"][team]["preset"] == "ntire2022"
    rlfn = predict_challenge(REGISTRY["RLFN"].build())
    rows = {e["model"]: e for e in doc["entries"]}
    assert rows[REGISTRY["RLFN"].team]["predicted_runtime_ms"] == pytest.approx(rlfn.runtime.ms)
    assert rows["Super"]["predicted_runtime_ms"] is None  # not a reference model
    # the ρ values are computed over these rows, as scipy computes them on the table
    table = pd.read_csv(TABLE).set_index("team")
    predicted = {t: rows[t]["predicted_runtime_ms"] for t in teams}
    rho_pred = _rho((predicted[t], table.loc[t, "runtime_ms"]) for t in teams)
    rho_flops = _rho((table.loc[t, "flops_G"], table.loc[t, "runtime_ms"]) for t in teams)
    f = doc["prediction"]
    assert f["n_entries"] == len(teams)
    assert f["runtime_vs_predicted"]["spearman"] == pytest.approx(rho_pred)
    assert f["runtime_vs_flops"]["spearman"] == pytest.approx(rho_flops)
    assert rho_pred > rho_flops
    md = (table_report / "report.md").read_text()
    page = (table_report / "index.html").read_text()
    for text in (md, page):
        assert f"{rho_pred:.3f}" in text and f"{rho_flops:.3f}" in text
        assert "Titan Xp (NTIRE 2022 published table)" in text  # where the runtimes come from
        assert "NVIDIA TITAN Xp" in text  # the GPU the predictions are for
    assert (table_report / "charts" / "runtime_vs_predicted.svg").is_file()


def test_no_predict_turns_reference_predictions_off(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", str(TABLE), "-o", str(out), "--no-predict", "--no-charts"]) == 0
    assert "predicted" not in capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    assert doc["prediction"] is None and doc["predictions"] == {}
    assert doc["options"]["predict_references"] is False
    assert "predicted_runtime_ms" not in doc["entries"][0]
    assert SECTION_TITLE not in (out / "report.md").read_text()
    assert "id='prediction'" not in (out / "index.html").read_text()
    report = build_report([TABLE], ReportOptions(predict_references=False))
    assert report.prediction is None and not report.entries.predictions


def test_no_predict_keeps_the_results_own_predictions(results_dir, tmp_path):
    report = build_report([results_dir, TABLE],
                          ReportOptions(predict_references=False, allow_mixed_hardware=True))
    assert set(report.entries.predictions) == set(RESULTS)
    assert report.prediction.n_entries == len(RESULTS)


def test_only_the_published_table_is_predicted(tmp_path):
    """A team name in another table is only a name: no reference model is predicted for it."""
    p = tmp_path / "mine.csv"
    p.write_text("team,runtime_ms,params_M,flops_G\nByteESR,10,0.3,20\nNJU_Jet,12,0.3,22\n")
    report = build_report([p])
    assert report.prediction is None and not report.entries.predictions


def test_another_gpu_is_said_and_names_are_escaped(tmp_path, predictions):
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["a|b <i>", "FMEN", "RLFN"]
    for name, ref, runtime in zip(names, ("BSRN", "FMEN", "RLFN"), (9.0, 3.0, 2.5)):
        write_result(folder, name, runtime, "NVIDIA H100 80GB HBM3", predictions[ref])
    report = build_report([folder])
    out = write_report(report, tmp_path / "r")
    md = (out / "report.md").read_text()
    page = (out / "index.html").read_text()
    assert ("3 entries were measured on NVIDIA H100 80GB HBM3 but predicted for NVIDIA TITAN Xp"
            in md)
    assert "predicted for NVIDIA TITAN Xp: compare their ranks" in page
    assert r"| a\|b &lt;i&gt; |" in md and "<i>" not in md
    assert "<td>a|b &lt;i&gt;</td>" in page and "<i>" not in page
