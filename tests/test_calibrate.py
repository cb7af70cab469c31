"""`esrprof calibrate` on the CPU: microbenchmarks per op cost class, the fitted constants, and
`--gpu file:SPEC` using them."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from esrprof.cli import main
from esrprof.prediction import predict
from esrprof.prediction.gpus import gpu_spec
from esrprof.prediction.microbench import BENCHES
from esrprof.prediction.runtime import COST_CLASSES, cost_class

IMDN = "reference_models/imdn.py:IMDN"


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "cpu.json"
    assert main(["calibrate", "--device", "cpu", "-o", str(path), "--side", "16",
                 "--repeats", "2"]) == 0
    return path


def test_calibrate_writes_a_spec_with_fitted_constants(spec_file, capsys):
    data = json.loads(spec_file.read_text())
    assert data["kind"] == "esrprof-gpu-spec" and data["device"] == "cpu"
    cal = data["gpu"]["calibration"]
    assert 0 < cal["compute_efficiency"] <= 1 and 0 < cal["bandwidth_efficiency"] <= 1
    assert 0 <= cal["kernel_floor_us"] <= 200
    assert cal["loo_rms_log_error"] is not None
    names = {b["name"] for b in data["microbenchmarks"]}
    assert {"copy", "launch", "conv3x3_48", "depthwise3x3", "conv1x1_48", "conv_few_channels",
            "adaptive_pool_uneven", "interpolate", "pixel_shuffle", "layer_norm", "gelu",
            "softmax", "permute_contiguous", "sdpa"} <= names
    assert "conv3x3_48_fp16" not in names  # GPU only
    assert all(b["measured_ms"] > 0 and b["predicted_ms"] > 0 for b in data["microbenchmarks"])
    assert set(cal["class_factors"]) <= set(COST_CLASSES) and cal["class_factors"]


def test_file_spec_predicts_with_the_measured_constants(spec_file, root, monkeypatch, capsys,
                                                         tmp_path):
    spec = gpu_spec(f"file:{spec_file}")
    assert spec.generation == "cpu" and spec.calibration is not None
    model = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.Conv2d(48, 48, 3, padding=1))
    p = predict(model, (1, 3, 32, 32), f"file:{spec_file}")
    assert p.calibration == spec.calibration and p.gpu.label == spec.label
    # the class factors are used: a slower dense-conv class predicts a slower model
    data = json.loads(spec_file.read_text())
    data["gpu"]["calibration"]["class_factors"]["conv_dense"] = 20.0
    slower = tmp_path / "slow.json"
    slower.write_text(json.dumps(data))
    assert predict(model, (1, 3, 32, 32), f"file:{slower}").runtime.ms > p.runtime.ms
    monkeypatch.chdir(root)
    assert main(["profile", IMDN, "--input-shape", "16x16", "--gpu", f"file:{spec_file}"]) == 0
    assert spec.label in " ".join(capsys.readouterr().out.split())  # the card wraps at 80


@pytest.mark.parametrize("text", ["file:/no/such/spec.json", "file:{bad}"])
def test_a_bad_spec_file_is_one_line_and_exit_2(text, tmp_path, capsys, root, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}')
    monkeypatch.chdir(root)
    assert main(["profile", IMDN, "--gpu", text.format(bad=bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_calibrate_refuses_bad_options(tmp_path, capsys):
    assert main(["calibrate", "-o", str(tmp_path / "x.json"), "--repeats", "0"]) == 2
    assert main(["calibrate", "-o", str(tmp_path / "x.json"), "--device", "tpu"]) == 2
    assert not (tmp_path / "x.json").exists()


def _conv_class(c_in, c_out, k, groups=1, dtype=torch.float32):
    x = torch.empty(1, c_in, 8, 8, device="meta")
    w = torch.empty(c_out, c_in // groups, k, k, device="meta")
    return cost_class("aten.convolution", "conv", (x, w, None, [1, 1], [0, 0], [1, 1], False,
                                                   [0, 0], groups), dtype)


def test_cost_classes_of_convolutions_by_shape():
    assert _conv_class(48, 48, 3) == "conv_dense"
    assert _conv_class(48, 48, 1) == "conv_1x1"
    assert _conv_class(48, 48, 3, groups=48) == "conv_depthwise"
    assert _conv_class(3, 48, 3) == "conv_few_channels"
    assert _conv_class(48, 48, 3, dtype=torch.float16) == "conv_half"
    assert _conv_class(3, 48, 3, dtype=torch.float16) == "conv_half_unaligned"


def test_unaligned_half_convolutions_miss_the_tensor_cores():
    from esrprof.prediction.gpus import gpu_spec
    from esrprof.prediction.runtime import OpRow, op_times

    spec = gpu_spec("rtx-a6000")

    def compute_s(cls):
        row = OpRow("m", "aten.convolution", "conv", 10**12, 1, 0, torch.float16, cls)
        (t,) = op_times([row], peak_flops=spec.peak_flops, bandwidth=spec.bandwidth,
                        compute_efficiency=1.0, bandwidth_efficiency=1.0, floor_s=0.0)
        return t.compute_s

    assert compute_s("conv_half_unaligned") == pytest.approx(
        compute_s("conv_half") * spec.fp16_tflops / spec.fp32_tflops)
    assert cost_class("aten.gelu", "elementwise", (), torch.float32) == "gelu"


def test_every_benchmark_measures_its_class():
    from esrprof.prediction.api import _run_trace

    for b in BENCHES:
        if b.name == "launch":
            continue
        rows = _run_trace(b.build(), (1, b.channels, 16, 16), "meta", b.dtype, cost=True,
                          )[0].observers[1].rows
        assert any(r.cost_class for r in rows), b.name
