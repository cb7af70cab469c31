"""The GPU table and the custom spec parser."""

from __future__ import annotations

import pytest
import torch

from esrprof.errors import UsageError
from esrprof.prediction.gpus import GPUS, GpuSpec, gpu_spec


def test_the_challenge_gpus_are_known():
    for name in ("titan-xp", "rtx-3090", "rtx-a6000", "a100", "h100", "rtx-4090"):
        spec = gpu_spec(name)
        assert spec.fp32_tflops > 0 and spec.bandwidth_gbs > 0 and spec.source
    assert gpu_spec("Titan-XP") is GPUS["titan-xp"]
    assert gpu_spec("a6000") is GPUS["rtx-a6000"]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError) as err:
        gpu_spec("rtx-9090")
    message = str(err.value)
    assert "\n" not in message and "titan-xp" in message and "custom:" in message


def test_custom_spec_parses():
    spec = gpu_spec("custom:fp32_tflops=14, bandwidth_gbs=448,fp16_tflops=28,floor_us=5")
    assert spec == GpuSpec("custom", spec.label, 14.0, 448.0, fp16_tflops=28.0, floor_us=5.0,
                           source="user-given")
    assert spec.peak_flops(torch.float16) == 28e12
    assert spec.peak_flops(torch.bfloat16) == 14e12  # no bf16 rate: the fp32 one
    assert gpu_spec("custom:fp32_tflops=1,bandwidth_gbs=2,floor_us=0").floor_us == 0.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("custom:", "empty"),
        ("custom:fp32_tflops=14", "missing bandwidth_gbs"),
        ("custom:fp32_tflops=14,bandwidth_gbs", "key=value"),
        ("custom:fp32_tflops=fast,bandwidth_gbs=1", "not a number"),
        ("custom:fp32_tflops=-1,bandwidth_gbs=1", "positive"),
        ("custom:fp32_tflops=0,bandwidth_gbs=1", "positive"),
        ("custom:fp32_tflops=nan,bandwidth_gbs=1", "positive"),
        ("custom:fp32_tflops=1,bandwidth_gbs=1,clock=3", "unknown key"),
        ("custom:fp32_tflops=1,fp32_tflops=2,bandwidth_gbs=1", "twice"),
        ("", "GPU must be"),
    ],
)
def test_bad_custom_specs_are_one_line_usage_errors(text, words):
    with pytest.raises(UsageError) as err:
        gpu_spec(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_dtype_rates():
    a100 = gpu_spec("a100")
    assert a100.peak_flops(torch.float16, "matmul") == 312e12
    assert a100.peak_flops(torch.float32, "conv") == 156e12  # cuDNN TF32, PyTorch's default
    assert a100.peak_flops(torch.float32, "matmul") == 19.5e12  # matmul TF32 is off
    xp = gpu_spec("titan-xp")
    assert xp.peak_flops(torch.float16) == xp.peak_flops(torch.float32) == 12.15e12


def test_round_trip():
    for spec in GPUS.values():
        assert GpuSpec.from_dict(spec.to_dict()) == spec
