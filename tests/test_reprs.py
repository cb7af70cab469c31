"""Counts, Prediction and Result read well: a short __str__ (not a dataclass dump), Markdown
and HTML for Jupyter, and to_dataframe()."""

from __future__ import annotations

import pytest
from esrprof.reference_models.imdn import IMDN

import esrprof
from esrprof.results import Result, load_result


@pytest.fixture(scope="module")
def model():
    return IMDN()


@pytest.fixture(scope="module")
def counts(model):
    return esrprof.count(model, (1, 3, 32, 32))


@pytest.fixture(scope="module")
def prediction(model):
    return esrprof.predict_challenge(model)


def test_counts_str_is_a_card_not_a_dump(counts):
    text = str(counts)
    assert "OpRecord" not in text and "Counts(" not in text
    assert text.startswith("Counts")
    assert "0.894 M (893,936)" in text and "#Conv" in text
    assert f"{counts.ntire2022.macs / 1e9:.2f} G" in text
    # both years' FLOPs: the 2022 hooks' and fvcore's (2024-2026)
    assert f"FLOPs (ntire2024 = fvcore)  {counts.ntire2024.macs / 1e9:.2f} G" in text
    assert len(text.splitlines()) < 15


def test_counts_jupyter_views(counts):
    md = counts._repr_markdown_()
    assert "| #Params | 0.894 M (893,936) |" in md
    html = counts._repr_html_()
    assert html.startswith("<b>Counts</b><table>") and "893,936" in html


def test_counts_dataframe_holds_the_raw_records(counts):
    pytest.importorskip("pandas")
    df = counts.to_dataframe()
    assert len(df) == len(counts.ops)
    assert int(df["macs"].sum()) == sum(r.macs for r in counts.ops)
    assert int(df.groupby("module")["ntire2022_activations"].first().sum()) == \
        counts.ntire2022.activations


def test_prediction_reads_as_a_prediction(prediction):
    text = str(prediction)
    assert text.startswith("Prediction") and "MemoryPrediction(" not in text
    assert f"{prediction.memory.peak_allocated_mib:.1f} MiB" in text
    assert "not measured" in text
    assert "TITAN Xp" in prediction._repr_markdown_()
    assert "<table>" in prediction._repr_html_()
    pytest.importorskip("pandas")
    df = prediction.to_dataframe()
    assert df.loc[0, "predicted_runtime_ms"] == pytest.approx(prediction.runtime.ms, rel=1e-3)


def test_result_reads_and_survives_json(model, counts, prediction, tmp_path):
    result = esrprof.profile(model, (1, 3, 32, 32))
    import dataclasses

    result = dataclasses.replace(result, prediction=prediction)
    text = str(result)
    assert text.startswith("Result") and "model" in text and "IMDN" in text
    assert "predicted runtime" in text and "Result(" not in text
    back = load_result(result.save(tmp_path / "r.json"))
    assert isinstance(back, Result) and str(back) == text
    assert "<b>Result: IMDN</b>" in back._repr_html_()
    assert "| #Conv | 43 |" in back._repr_markdown_()
    pytest.importorskip("pandas")
    assert back.to_dataframe().loc[0, "convs"] == 43


def test_markup_in_a_model_name_is_escaped(counts):
    from esrprof.results import ModelInfo

    result = Result(ModelInfo("<b>x|y</b>"), (1, 3, 32, 32), counts)
    assert "<b>x" not in result._repr_html_().replace("<b>Result: ", "")
    assert "x\\|y" in result._repr_markdown_()
