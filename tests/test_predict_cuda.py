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


@pytest.mark.parametrize("name", list(REGISTRY))
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
    assert rho >= 0.7, (list(REGISTRY), measured, predicted)
