"""The report's prediction view: columns, correlations, kinds, the sentence, the charts."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from esrprof.prediction import KINDS, predict
from esrprof.report.prediction import (
    PREDICTED_COLUMNS,
    add_prediction_columns,
    analyse,
    summary_sentence,
    time_by_kind,
    write_prediction_charts,
)
from esrprof.zoo.registry import REGISTRY

NAMES = ("IMDN", "RLFN", "FMEN", "BSRN")


@pytest.fixture(scope="module")
def predictions():
    torch.manual_seed(0)
    return {n: predict(REGISTRY[n].build(), (1, 3, 339, 510)) for n in NAMES}


@pytest.fixture(scope="module")
def table():
    rows = [
        {"model": n, "runtime_ms": REGISTRY[n].published.runtime_ms,
         "flops_g": REGISTRY[n].published.flops_g, "memory_mib": REGISTRY[n].published.memory_mib}
        for n in REGISTRY if REGISTRY[n].published is not None  # the 2022 table's models
    ]
    return pd.DataFrame(rows)


def test_columns_are_added_where_a_prediction_exists(table, predictions):
    t = add_prediction_columns(table, predictions)
    assert set(PREDICTED_COLUMNS) <= set(t.columns)
    assert t["predicted_runtime_ms"].notna().sum() == len(NAMES)
    row = t.set_index("model").loc["RLFN"]
    assert row["predicted_runtime_ms"] == predictions["RLFN"].runtime.ms
    assert "predicted_runtime_ms" not in table  # the input is not modified


def test_findings_compare_predicted_runtime_with_flops(table, predictions):
    f = analyse(table, predictions)
    assert f.n_entries == len(NAMES)
    assert f.runtime_vs_predicted is not None and f.runtime_vs_predicted.n == len(NAMES)
    assert f.runtime_vs_flops is not None
    # BSRN: fewest FLOPs, slowest; the prediction puts it last, FLOPs put it first
    assert f.runtime_vs_predicted.spearman > f.runtime_vs_flops.spearman
    assert "Runtime follows the predicted time" in f.summary
    assert f"{f.runtime_vs_predicted.spearman:.2f}" in f.summary
    assert f.to_dict()["summary"] == f.summary


def test_time_by_kind_sums_to_each_prediction(predictions):
    rows = time_by_kind(predictions)
    assert [r.ms for r in rows] == sorted(r.ms for r in rows)
    for r in rows:
        assert tuple(k for k, _ in r.kinds) == KINDS
        assert sum(ms for _, ms in r.kinds) == pytest.approx(r.ms)
        assert 0 <= r.share("convolution") <= 1


def test_sentence_without_measurements(predictions):
    f = analyse(pd.DataFrame({"model": list(NAMES)}), predictions)
    assert f.runtime_vs_predicted is None
    assert summary_sentence(f).startswith("Predicted for 4 models")


def test_charts_are_written_as_png_and_svg(table, predictions, tmp_path):
    findings, charts = write_prediction_charts(table, predictions, tmp_path)
    assert findings.n_entries == len(NAMES)
    assert {c.key for c in charts} == {"runtime_vs_predicted", "predicted_time_by_kind"}
    for c in charts:
        assert (tmp_path / c.png).stat().st_size > 0
        assert (tmp_path / c.svg).read_text().lstrip().startswith("<?xml")
    again = tmp_path / "again"
    write_prediction_charts(table, predictions, again)
    assert (again / "runtime_vs_predicted.svg").read_bytes() == (
        tmp_path / "runtime_vs_predicted.svg").read_bytes()  # reproducible files
