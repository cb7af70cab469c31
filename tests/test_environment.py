"""The environment record: works without a GPU or NVML, identifies the machine."""

from __future__ import annotations

import json

import torch

from esrprof import environment
from esrprof.environment import collect, cpu_model, same_hardware


def test_cpu_record_has_versions_and_a_stable_hardware_string():
    env = collect("cpu", "fp32")
    for key in ("torch", "cuda", "cudnn", "cudnn_benchmark", "cpu_model", "threads", "python",
                "platform", "dtype", "gpu_name", "driver"):
        assert key in env
    assert env["torch"] == torch.__version__
    assert env["hardware"] == f"{env['cpu_model']} ({torch.get_num_threads()} threads)"
    assert env["gpu_name"] is None
    assert collect("cpu")["hardware"] == env["hardware"]  # stable between calls
    json.dumps(env, allow_nan=False)


def test_extras_are_recorded():
    env = collect("cpu", "bf16", tile=256, channels_last=True)
    assert env["dtype"] == "bf16" and env["tile"] == 256 and env["channels_last"] is True


def test_cudnn_benchmark_flag_is_read_at_collection_time():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        assert collect()["cudnn_benchmark"] is True
    finally:
        torch.backends.cudnn.benchmark = before


def test_cpu_model_without_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(environment, "Path", lambda p: tmp_path / "missing")
    assert cpu_model()


def test_same_hardware():
    a = {"hardware": "NVIDIA H100 80GB HBM3"}
    assert same_hardware(a, dict(a))
    assert not same_hardware(a, {"hardware": "NVIDIA A100"})
    assert not same_hardware({}, {})


def test_thread_counts_read_alike_everywhere_and_old_records_still_match():
    from esrprof.environment import threads_text

    assert threads_text(1) == "1 thread" and threads_text(2) == "2 threads"
    old = {"hardware": "Intel Xeon (1 threads)"}
    assert same_hardware(old, {"hardware": "Intel Xeon (1 thread)"})
    assert not same_hardware(old, {"hardware": "Intel Xeon (2 threads)"})
