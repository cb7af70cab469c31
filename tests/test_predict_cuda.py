"""Predictions against the GPU itself: max_memory_allocated within 1 %, runtime ranks.

Skipped without CUDA. The figures each test measured go to the junit XML as properties
(``pytest --junitxml=out.xml``), for docs/prediction.md.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from esrprof.prediction import GPUS, predict
from esrprof.zoo.registry import REGISTRY

# the registry models with a published NTIRE 2022 Table 1 row (SPAN, 2026, has none)
TABLE1 = [n for n in REGISTRY if REGISTRY[n].published is not None]

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

MIB = 1024**2
# torch.cuda.get_device_name() fragments -> the table's names (first match wins)
DEVICE_NAMES = (("H200", "h200"), ("H100 PCIe", "h100-pcie"), ("H100", "h100"),
                ("A100-SXM4-40GB", "a100-40gb"), ("A100", "a100"), ("A6000", "rtx-a6000"),
                ("4090", "rtx-4090"), ("3090", "rtx-3090"), ("TITAN Xp", "titan-xp"))


def _gpu_name() -> str | None:
    device = torch.cuda.get_device_name()
    return next((name for frag, name in DEVICE_NAMES if frag in device), None)


@pytest.mark.parametrize("name", TABLE1)
@pytest.mark.parametrize("hw", [(256, 256), (339, 510)])
def test_predicted_peak_is_max_memory_allocated(name, hw, record_property):
    torch.backends.cudnn.benchmark = False  # the challenge's setting; no search workspaces
    shape = (1, 3, *hw)
    prediction = predict(REGISTRY[name].build(), shape).memory
    model = REGISTRY[name].build().cuda().eval()
    x = torch.rand(shape, device="cuda")
    with torch.no_grad():
        del_me = model(x)  # handles, cuBLAS workspace: made once, kept, not the forward's
        del del_me
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # cached blocks of the warm-up go: a fresh allocator
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = model(x)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del out
    # what was held before the forward beyond weights and input (persistent workspaces)
    extra = base - (prediction.weights_mib + prediction.input_mib) * MIB
    expected = prediction.peak_allocated_mib * MIB + max(extra, 0)
    record_property("measured_mib", peak / MIB)
    record_property("predicted_mib", expected / MIB)
    assert abs(peak / expected - 1) < 0.01, (name, hw, peak / MIB, expected / MIB)


def _time_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int = 20) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    with torch.no_grad():
        for _ in range(5):
            model(x)
        for _ in range(repeats):
            start.record()
            model(x)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def test_predicted_runtime_ranks_measured_runtimes(record_property):
    from scipy.stats import spearmanr

    gpu = _gpu_name()
    if gpu is None:
        pytest.skip(f"{torch.cuda.get_device_name()} is not in the GPU table")
    torch.backends.cudnn.benchmark = False
    shape = (1, 3, 339, 510)
    measured, predicted = [], []
    for name, entry in REGISTRY.items():
        model = entry.build().cuda().eval()
        measured.append(_time_ms(model, torch.rand(shape, device="cuda")))
        predicted.append(predict(entry.build(), shape, gpu=GPUS[gpu]).runtime.ms)
        record_property(f"{name}_measured_ms", measured[-1])
        record_property(f"{name}_predicted_ms", predicted[-1])
    rho = spearmanr(measured, predicted).statistic
    record_property("spearman", rho)
    assert rho >= 0.7, (TABLE1, measured, predicted)


def test_fused_sdpa_peak_matches_the_gpu(record_property):
    """A fused SDPA keeps no L x L scores on the GPU, as the prediction says."""
    import torch.nn.functional as F
    from torch import nn

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Conv2d(32, 96, 1)

        def forward(self, x):
            b, _, h, w = x.shape
            t = self.qkv(x).flatten(2).transpose(1, 2).reshape(b, h * w, 3, 2, 16)
            q, k, v = t.permute(2, 0, 3, 1, 4)
            return F.scaled_dot_product_attention(q, k, v)

    gpu = _gpu_name()
    if gpu is None:
        pytest.skip(f"{torch.cuda.get_device_name()} is not in the GPU table")
    shape = (1, 32, 64, 64)
    p = predict(Attn(), shape, gpu=GPUS[gpu]).memory.peak_allocated_mib
    model = Attn().cuda().eval()
    x = torch.rand(shape, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.no_grad():
        model(x)
    torch.cuda.synchronize()
    measured = (torch.cuda.max_memory_allocated() - base) / MIB
    record_property("sdpa_measured_mib", measured)
    record_property("sdpa_predicted_mib", p)
    assert measured < 16 and p < 16  # math path: > 128 MiB of scores


def test_calibrate_on_the_gpu(record_property):
    from esrprof.prediction.microbench import calibrate

    run = calibrate("cuda", side=256, repeats=20)
    cal = run.spec.calibration
    for r in run.results:
        record_property(f"{r.name}_ms", r.measured_ms)
        record_property(f"{r.name}_ratio", r.ratio)
    record_property("constants", str(cal.constants))
    assert run.spec.generation in ("pascal", "turing", "ampere", "ada", "hopper")
    assert any(r.name == "conv3x3_48_fp16" for r in run.results)
