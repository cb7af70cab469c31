"""The prediction on the card and in `esrprof zoo`: labelled, optional, and bad GPUs refused."""

from __future__ import annotations

import json

import pytest

import esrprof
from esrprof.cli import main

IMDN = "reference_models/imdn.py:IMDN"


@pytest.fixture(autouse=True)
def _in_repo(root, monkeypatch):
    monkeypatch.chdir(root)


def test_the_card_carries_a_labelled_prediction(capsys):
    assert main(["profile", IMDN, "--input-shape", "16x16", "--challenge", "ntire2022"]) == 0
    out = capsys.readouterr().out
    assert "Predicted, not measured" in out and "Titan Xp".lower() in out.lower()
    assert "510x510" in out and "339x510" in out and "bandwidth-limited" in out


def test_another_gpu_and_no_prediction(capsys):
    assert main(["profile", IMDN, "--input-shape", "16x16", "--gpu", "h100"]) == 0
    assert "H100" in capsys.readouterr().out
    assert main(["profile", IMDN, "--input-shape", "16x16", "--no-predict"]) == 0
    assert "Predicted" not in capsys.readouterr().out


@pytest.mark.parametrize("gpu", ["voodoo", "custom:fp32_tflops=30", "custom:fp32_tflops=-1,"
                                 "bandwidth_gbs=900"])
def test_a_bad_gpu_is_one_line_and_exit_2(capsys, gpu):
    assert main(["profile", IMDN, "--gpu", gpu]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_api_exports_the_prediction():
    from esrprof.zoo.registry import get

    p = esrprof.predict_challenge(get("RLFN").build())
    assert isinstance(p, esrprof.Prediction)
    assert abs(p.memory.peak_allocated_mib / get("RLFN").published.memory_mib - 1) < 0.02


def test_zoo_shows_and_writes_predictions(capsys, tmp_path):
    path = tmp_path / "zoo.json"
    assert main(["zoo", "RLFN", "FMEN", "IMDN", "--challenge", "ntire2022", "--json",
                 str(path)]) == 0
    out = capsys.readouterr().out
    assert "Predicted on the NTIRE 2022 protocol" in out and "Spearman" in out
    rows = json.loads(path.read_text())["models"]
    for row in rows:
        predicted = row["prediction"]["memory"]["peak_allocated_mib"]
        assert abs(predicted / row["published_memory_mib"] - 1) < 0.02
        assert row["prediction"]["runtime"]["ms"] > 0


def test_the_json_record_carries_the_prediction_and_reads_back(capsys, tmp_path):
    path = tmp_path / "r.json"
    assert main(["profile", IMDN, "--json", str(path)]) == 0
    capsys.readouterr()
    data = json.loads(path.read_text())
    assert data["prediction"]["preset"] == data["challenge"] == "ntire2026"  # the latest year
    loaded = esrprof.load_result(path)
    assert isinstance(loaded.prediction, esrprof.Prediction)
    assert loaded.prediction.to_dict() == data["prediction"]
    assert main(["profile", IMDN, "--no-predict", "--json", str(path)]) == 0
    assert "prediction" not in json.loads(path.read_text())


def test_the_library_profile_predicts_on_request():
    from esrprof.zoo.registry import get

    model = get("FMEN").build()
    assert esrprof.profile(model, (1, 3, 16, 16)).prediction is None
    result = esrprof.profile(model, (1, 3, 16, 16), predict="rtx-3090")
    assert result.prediction.gpu.name == "rtx-3090"


def test_a_bad_json_path_fails_before_any_work(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    assert main(["profile", IMDN, "--json", str(tmp_path / "file" / "r.json")]) == 2
    assert "a parent of it is a file" in capsys.readouterr().err


def test_esrprof_predict_stays_the_function_once_the_package_is_imported():
    import esrprof.prediction.api  # importing a subpackage sets a package attribute

    assert callable(esrprof.predict) and esrprof.predict.__name__ == "predict"
    assert esrprof.predict_challenge.__module__ == "esrprof.prediction.api"
