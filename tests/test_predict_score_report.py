"""The predicted score: `profile(predict="ntire2025")` carries it, the result record keeps it,
and a report of entries without a measured runtime ranks by it and says so."""

from __future__ import annotations

import pytest

import esrprof
from esrprof.report import build_report
from esrprof.results import load_result
from esrprof.zoo.registry import REGISTRY


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scores")
    out = []
    for name in ("RLFN", "EFDN", "FMEN"):
        r = esrprof.profile(REGISTRY[name].build(), (1, 3, 64, 64), predict="ntire2025",
                            name=name)
        out.append(r.save(folder / f"{name}.json"))
    return out


def test_the_record_keeps_the_ratio_and_the_score(files):
    r = load_result(files[0])
    rel = r.prediction.relative
    assert r.prediction.preset == "ntire2025" and r.prediction.gpu.name == "rtx-a6000"
    assert rel.baseline == "EFDN" and 0 < rel.runtime_ratio < 1 and rel.score < 7.389


def test_a_report_without_runtimes_ranks_by_the_predicted_score(files):
    report = build_report([str(f) for f in files])
    (board,) = [b for b in report.leaderboards if b.key.startswith("predicted_score")]
    assert "PREDICTED score" in board.description and "EFDN" in board.title
    scores = list(board.frame["predicted_score"])
    assert scores == sorted(scores) and list(board.frame["rank"]) == [1, 2, 3]
    efdn = board.frame[board.frame["model"] == "EFDN"].iloc[0]
    assert efdn["predicted_runtime_ratio"] == pytest.approx(1.0)


def test_a_model_the_prediction_cannot_trace_keeps_its_counts():
    from torch import nn

    class OnlySmall(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            if x.shape[-1] > 100:
                raise ValueError("too large for this model")
            return self.conv(x)

    r = esrprof.profile(OnlySmall(), (1, 3, 32, 32), predict=True)
    assert r.counts is not None and r.prediction is None
    assert "too large" in r.prediction_note
    assert r.to_dict()["prediction_note"] == r.prediction_note
