"""The CUDA path: event clock, memory peaks reset per split, NVML, OOM. Skipped without a GPU."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from esrprof.memory import CudaPeak, read_gpu_state
from esrprof.run import RunConfig, measure
from esrprof.timing import CudaEventClock, make_clock

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


class Up(nn.Module):
    def __init__(self, channels: int = 32, scale: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, 3 * scale * scale, 3, padding=1))
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.up(self.body(x))


def test_event_clock_times_device_work():
    clock = make_clock("cuda")
    assert isinstance(clock, CudaEventClock) and clock.name == "cuda_event"
    a = torch.randn(2048, 2048, device="cuda")
    small = clock.time_ms(lambda: a @ a)
    big = clock.time_ms(lambda: [a @ a for _ in range(10)])
    assert 0 < small < big


def test_peak_is_reset_at_each_split():
    dev = torch.device("cuda")
    with CudaPeak(dev) as first:
        x = torch.empty(256 * 1024**2, dtype=torch.uint8, device=dev)
        del x
    with CudaPeak(dev) as second:
        y = torch.empty(16 * 1024**2, dtype=torch.uint8, device=dev)
        del y
    assert first.record["max_allocated_mib"] >= 256
    assert second.record["activation_peak_mib"] == pytest.approx(16, abs=2)
    assert second.record["max_allocated_mib"] < first.record["max_allocated_mib"]


def test_run_on_cuda_records_events_memory_and_environment():
    model = Up()
    cfg = RunConfig(device="cuda", synthetic="full", max_images=3, trials=2, scale=4,
                    pixel_range=1)
    r = measure(model, cfg)
    d = r.to_dict()
    assert d["runtime"]["clock"] == "cuda_event" and d["runtime"]["runtime_ms"] > 0
    assert d["memory"]["kind"] == "cuda_max_memory_allocated"
    assert d["memory"]["memory_mib"] > 0
    assert d["memory"]["activation_peak_mib"] <= d["memory"]["memory_mib"]
    assert "nvml" in d["memory"]["splits"]["valid"]
    assert r.environment["gpu_name"] == torch.cuda.get_device_name()
    assert r.environment["hardware"] == r.environment["gpu_name"]
    assert next(model.parameters()).device.type == "cpu"  # moved on a copy
    json.dumps(d, allow_nan=False)


def test_gpu_state_per_trial_when_nvml_is_there():
    if read_gpu_state(torch.device("cuda")) is None:
        pytest.skip("no NVML")
    r = measure(Up(), RunConfig(device="cuda", synthetic="quick", trials=2, scale=4))
    states = r.split("valid").gpu_states
    assert len(states) == 2 and states[0]["sm_clock_mhz"]


def test_real_out_of_memory_is_caught_and_named():
    free, _ = torch.cuda.mem_get_info()

    class Hog(Up):
        def forward(self, x):
            if x.shape[-1] > 200:
                torch.empty(int(free * 4), dtype=torch.uint8, device=x.device)
            return super().forward(x)

    r = measure(Hog(), RunConfig(device="cuda", synthetic="full", max_images=2, trials=1,
                                 warmup=0, scale=4))
    v = r.split("valid")
    assert v.oom and v.oom[0]["image"] and len(v.oom[0]["lr_shape"]) == 2
    assert torch.cuda.memory_allocated() < free  # the cache was emptied, nothing held


def test_fp16_channels_last_and_cudnn_benchmark():
    r = measure(Up(), RunConfig(device="cuda", dtype="fp16", channels_last=True,
                                cudnn_benchmark=True, synthetic="full", max_images=3, trials=1,
                                scale=4))
    v = r.split("valid")
    assert v.warmup_forwards == len(set(v.shapes))
    assert r.environment["dtype"] == "fp16" and r.environment["channels_last"] is True
