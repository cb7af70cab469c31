"""predict(): the record, its JSON round trip, the model left alone, typed errors."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from esrprof.errors import InputShapeError, ResultFileError, UsageError
from esrprof.prediction import Prediction, predict, predict_challenge
from esrprof.zoo.registry import get


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return get("RLFN").build(nf=8, mid_nf=8)


def test_prediction_record_round_trips_through_json():
    p = predict(_tiny(), (1, 3, 24, 20), gpu="rtx-3090")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["kind"] == "prediction" and d["gpu"]["name"] == "rtx-3090"
    q = Prediction.from_dict(d)
    assert q == p
    assert q.memory.input_shape == (1, 3, 24, 20)
    assert set(d["runtime"]) >= {"ms", "kernels", "memory_bound_share", "by_kind", "top_layers"}
    assert set(d["memory"]) >= {"peak_allocated_mib", "weights_mib", "activation_peak_mib",
                                "peak_module", "peak_op"}


def test_bad_records_are_result_file_errors():
    with pytest.raises(ResultFileError):
        Prediction.from_dict({"schema": 1, "memory": {}})
    good = predict(_tiny(), (1, 3, 8, 8)).to_dict()
    with pytest.raises(ResultFileError, match="newer"):
        Prediction.from_dict({**good, "schema": 99})


def test_memory_fields_are_consistent():
    m = predict(_tiny(), (1, 3, 40, 30)).memory
    weights = sum(p.numel() * 4 for p in _tiny().parameters())
    assert m.weights_mib * 1024**2 >= weights  # blocks of at least 512 bytes each
    assert m.input_mib == pytest.approx(3 * 40 * 30 * 4 / 1024**2)
    assert m.output_mib == pytest.approx(3 * 160 * 120 * 4 / 1024**2)
    assert m.peak_allocated_mib >= m.weights_mib + m.input_mib + m.output_mib
    assert m.activation_peak_mib == pytest.approx(
        m.peak_allocated_mib - m.weights_mib - m.input_mib)
    assert m.peak_op.startswith("aten.") or m.peak_op in {"input", "output"}


def test_fp16_halves_the_activations():
    fp32 = predict(_tiny(), (1, 3, 64, 64)).memory
    fp16 = predict(_tiny(), (1, 3, 64, 64), dtype=torch.float16)
    assert fp16.dtype == "fp16"
    assert fp16.memory.exact_peak_mib == pytest.approx(fp32.exact_peak_mib / 2, rel=1e-6)


def test_model_is_left_untouched():
    model = _tiny()
    model.train()
    model.B1.eval()
    twin = copy.deepcopy(model)
    predict(model, (1, 3, 16, 16))
    predict_challenge(model)
    assert [m.training for m in model.modules()] == [m.training for m in twin.modules()]
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), twin.eval()(x))
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_cost_does_not_grow_with_the_input():
    small = predict(_tiny(), (1, 3, 64, 64))
    huge = predict(_tiny(), (1, 3, 4096, 4096))  # ~3 GB of activations if it were real
    assert huge.backend == small.backend == "meta"
    assert huge.runtime.kernels == small.runtime.kernels
    assert huge.memory.peak_allocated_mib > 100 * small.memory.peak_allocated_mib


def test_typed_errors():
    with pytest.raises(UsageError, match=r"nn\.Module"):
        predict("not a model", (1, 3, 8, 8))
    with pytest.raises(InputShapeError):
        predict(_tiny(), (1, 3, 0, 8))
    with pytest.raises(UsageError, match="unknown GPU"):
        predict(_tiny(), (1, 3, 8, 8), gpu="voodoo")


def test_card_block_says_it_is_a_prediction():
    from esrprof.card import prediction_block

    p = predict_challenge(_tiny())
    text = prediction_block(p)
    assert "Predicted" in text and "not measured" in text
    assert f"{p.memory.peak_allocated_mib:.1f} MiB" in text and "510x510" in text
    assert f"{p.runtime.ms:.1f} ms" in text and "339x510" in text
    assert "time by kind" in text
