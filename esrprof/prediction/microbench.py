"""Microbenchmarks of the op cost classes, and the runtime constants they give for one device.

Each benchmark is a tiny module run for real on the device at hand: a copy (the bandwidth), a
one-element add (the per-kernel floor), convolutions by shape class (dense 3×3 at 48 channels,
1×1, depthwise, few input channels), nn.Linear over channels, the element-wise and data-movement
classes small SR models spend their time in (adaptive pooling at an uneven size, interpolation,
pixel-shuffle, layer-norm, GELU, softmax, a permute made contiguous) and fused attention (SDPA);
on a GPU also fp16 convolutions (tensor cores). The same module is traced on meta tensors
through the cost model, so each benchmark is a (predicted rows, measured time) point, and the
three constants of calibration.py are fitted to them
(:func:`esrprof.prediction.fit.fit_constants`), the device's peak arithmetic and bandwidth taken
from the benchmarks themselves (best convolution FLOP/s, copy bytes/s). :func:`calibrate`
returns a :class:`~esrprof.prediction.gpus.GpuSpec` carrying those constants (``esrprof
calibrate -o spec.json``; ``--gpu file:spec.json`` uses it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from esrprof.errors import UsageError
from esrprof.prediction.calibration import Calibration
from esrprof.prediction.fit import NAMES, Point, fit_constants, leave_one_out, rms_log
from esrprof.prediction.gpus import GpuSpec


class _Fn(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _Tokens(nn.Module):
    """(1, C, H, W) -> tokens (1, H*W, C) -> ``layer``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(2).transpose(1, 2))


class _ChannelsLast(nn.Module):
    """(1, C, H, W) -> channels last (1, H, W, C) view -> ``layer`` -> back: a 1x1
    convolution written as an nn.Linear, as BSRN writes it."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _sdpa(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    q = x.reshape(b, 2, c // 2, h * w).transpose(-2, -1)  # 2 heads of c/2
    return F.scaled_dot_product_attention(q, q, q)


@dataclass(frozen=True)
class Bench:
    """One cost class: a module and its input (channels, and a scale of the side)."""

    name: str
    cost_class: str  # what it measures
    build: Callable[[], nn.Module]
    channels: int = 48
    side_scale: float = 1.0
    dtype: torch.dtype | None = None  # None: fp32
    cuda_only: bool = False


BENCHES: tuple[Bench, ...] = (
    Bench("copy", "bandwidth", lambda: _Fn(lambda x: x.clone())),
    Bench("launch", "per-kernel floor", lambda: _Fn(lambda x: x[..., :1, :1] + 1), channels=1),
    Bench("conv3x3_48", "convolution: dense 3x3, 48 channels", lambda: nn.Conv2d(48, 48, 3, 1, 1)),
    Bench("conv3x3_64", "convolution: dense 3x3, 64 channels", lambda: nn.Conv2d(64, 64, 3, 1, 1),
          channels=64),
    Bench("conv1x1_48", "convolution: 1x1", lambda: nn.Conv2d(48, 48, 1)),
    Bench("depthwise3x3", "convolution: depthwise 3x3",
          lambda: nn.Conv2d(48, 48, 3, 1, 1, groups=48)),
    Bench("conv_few_channels", "convolution: 3 input channels", lambda: nn.Conv2d(3, 48, 3, 1, 1),
          channels=3),
    Bench("linear_channels_last", "nn.Linear over channels (a tall, skinny GEMM)",
          lambda: _ChannelsLast(nn.Linear(48, 48))),
    Bench("adaptive_pool_uneven", "adaptive pooling at an uneven size",
          lambda: _Fn(lambda x: F.adaptive_avg_pool2d(x, (x.shape[-2] // 3 + 1,
                                                          x.shape[-1] // 3 + 1)))),
    Bench("interpolate", "bilinear interpolation x2",
          lambda: _Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                              align_corners=False))),
    Bench("pixel_shuffle", "pixel-shuffle x4", lambda: nn.PixelShuffle(4)),
    Bench("layer_norm", "layer-norm over channels (tokens)", lambda: _Tokens(nn.LayerNorm(48))),
    Bench("gelu", "GELU", lambda: nn.GELU()),
    Bench("softmax", "softmax over channels", lambda: _Fn(lambda x: x.softmax(1))),
    Bench("permute_contiguous", "permute + contiguous copy",
          lambda: _Fn(lambda x: x.permute(0, 2, 3, 1).contiguous())),
    Bench("sdpa", "fused attention (SDPA, 2 heads of 16)", lambda: _Fn(_sdpa), channels=32,
          side_scale=0.5),
    Bench("conv3x3_48_fp16", "convolution: dense 3x3, fp16 (tensor cores)",
          lambda: nn.Conv2d(48, 48, 3, 1, 1), dtype=torch.float16, cuda_only=True),
)


@dataclass(frozen=True)
class BenchResult:
    name: str
    cost_class: str
    input_shape: tuple[int, ...]
    dtype: str
    measured_ms: float  # the fastest of the timed calls
    predicted_ms: float  # by the three fitted constants alone (before the class factors)
    flops: int
    bytes_moved: int

    @property
    def ratio(self) -> float:
        return self.predicted_ms / self.measured_ms if self.measured_ms > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "input_shape": list(self.input_shape), "ratio": self.ratio}


@dataclass(frozen=True)
class CalibrationRun:
    """A calibrated spec and the benchmarks it came from."""

    spec: GpuSpec
    results: tuple[BenchResult, ...]
    device: str
    side: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "esrprof-gpu-spec", "gpu": self.spec.to_dict(), "device": self.device,
                "side": self.side, "microbenchmarks": [r.to_dict() for r in self.results]}


def _generation(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    major, minor = torch.cuda.get_device_capability(device)
    return {6: "pascal", 7: "turing", 8: "ada" if minor >= 9 else "ampere",
            9: "hopper"}.get(major, "hopper" if major > 9 else "pascal")


def _time_ms(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    from esrprof.timing import make_clock

    clock = make_clock(device)
    for _ in range(2):  # warm-up: allocator, cuDNN heuristics, lazy init
        fn()
    # the fastest call: the least disturbed by other processes (a shared CPU deschedules)
    return min(clock.time_ms(fn) for _ in range(repeats))


def calibrate(device: str = "cpu", *, side: int = 96, repeats: int = 9,
              name: str | None = None, threads: int | None = 1) -> CalibrationRun:
    """Run the microbenchmarks on ``device`` at ``side`` x ``side`` inputs and fit the
    constants. Returns the spec (with its constants) and every benchmark's figures.

    ``threads``: torch's intra-op threads on a CPU for the benchmarks (restored after; None:
    as set). One thread by default: on a shared CPU a multi-threaded op waits for its slowest
    thread, and the fastest call no longer measures the op."""
    from esrprof.timing import pinned_threads

    with pinned_threads(threads if usable_device_type(device) == "cpu" else None):
        return _calibrate(device, side, repeats, name)


def usable_device_type(device: str) -> str:
    return "cuda" if str(device).startswith("cuda") else "cpu"


def _calibrate(device: str, side: int, repeats: int, name: str | None) -> CalibrationRun:
    from esrprof.prediction.api import _run_trace, torch_globals
    from esrprof.probe import usable_device

    dev = usable_device(device)
    if side < 8:
        raise UsageError(f"--side must be at least 8, got {side}")
    generation = _generation(dev)
    started = time.perf_counter()
    measured: list[tuple[Bench, tuple[int, ...], float, list[Any]]] = []
    with torch_globals(), torch.no_grad():
        for b in BENCHES:
            if b.cuda_only and dev.type != "cuda":
                continue
            s = max(4, int(side * b.side_scale))
            shape = (1, b.channels, s, s)
            dtype = b.dtype or torch.float32
            model = b.build().eval().to(dev, dtype)
            x = torch.rand(shape, device=dev, dtype=dtype)
            ms = _time_ms(lambda m=model, x=x: m(x), dev, repeats)
            trace, _ = _run_trace(model, shape, "meta", None, cost=True,
                                  gpu=GpuSpec("probe", "", 1.0, 1.0, generation=generation))
            measured.append((b, shape, ms, trace.observers[1].rows))
    by_name = {b.name: (b, shape, ms, rows) for b, shape, ms, rows in measured}
    _, _, copy_ms, copy_rows = by_name["copy"]
    bandwidth = sum(r.bytes_moved for r in copy_rows) / (copy_ms * 1e-3)
    conv_rates = [sum(r.flops for r in rows) / (ms * 1e-3) for b, _, ms, rows in measured
                  if b.name.startswith("conv3x3") and b.dtype is None]
    peak = max(conv_rates)
    half = [sum(r.flops for r in rows) / (ms * 1e-3) for b, _, ms, rows in measured
            if b.dtype == torch.float16]
    label = name or (torch.cuda.get_device_name(dev) if dev.type == "cuda" else
                     f"{_cpu_name()} ({torch.get_num_threads()} threads)")
    spec = GpuSpec(
        "file", label, fp32_tflops=peak / 1e12, bandwidth_gbs=bandwidth / 1e9,
        fp16_tflops=max(half) / 1e12 if half else None, generation=generation,
        source=f"esrprof calibrate --device {device} --side {side}: the best fp32 3x3 "
        "convolution's FLOP/s and the copy's bytes/s, measured",
    )
    points = [Point(b.name, rows, spec, ms) for b, _, ms, rows in measured]
    constants, rms = fit_constants(points, NAMES)
    loo = rms_log(leave_one_out(points, NAMES))
    cal = Calibration(*constants, gpu="file", input_shape=(1, 48, side, side),
                      fitted_on=tuple(p.key for p in points), rms_log_error=rms,
                      generation=generation, loo_rms_log_error=loo,
                      assumption=f"measured on this device in {time.perf_counter() - started:.1f} "
                      "s by esrprof calibrate")
    cal = replace(cal, class_factors=_class_factors(measured, spec, constants))
    spec = replace(spec, calibration=cal)
    results = tuple(
        BenchResult(b.name, b.cost_class, shape, str(b.dtype or torch.float32).split(".")[-1],
                    ms, p.predicted_ms(constants), sum(r.flops for r in rows),
                    sum(r.bytes_moved for r in rows))
        for (b, shape, ms, rows), p in zip(measured, points)
    )
    return CalibrationRun(spec, results, str(dev), side)


def _class_factors(measured: list[tuple[Bench, tuple[int, ...], float, list[Any]]],
                   spec: GpuSpec, constants: tuple[float, ...]) -> tuple[tuple[str, float], ...]:
    """Per cost class: measured time beyond the floors over the roofline time the three
    constants give, from the benchmarks of that class (geometric mean), clipped to 1/20..20."""
    from esrprof.prediction.runtime import op_times

    ec, eb, floor_us = constants
    logs: dict[str, list[float]] = {}
    for b, _, ms, rows in measured:
        if b.name == "launch":
            continue
        times = op_times(rows, peak_flops=spec.peak_flops, bandwidth=spec.bandwidth,
                         compute_efficiency=ec, bandwidth_efficiency=eb,
                         floor_s=floor_us * 1e-6)
        classes = {t.row.cost_class for t in times if t.row.cost_class}
        roof = sum(t.roofline_s for t in times)
        if len(classes) != 1 or roof <= 0:
            continue
        beyond = max(ms * 1e-3 - sum(t.floor_s for t in times), 0.05 * roof)
        logs.setdefault(classes.pop(), []).append(math.log(beyond / roof))
    return tuple(sorted((c, min(20.0, max(0.05, math.exp(sum(v) / len(v)))))
                        for c, v in logs.items()))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


__all__ = ["BENCHES", "Bench", "BenchResult", "CalibrationRun", "calibrate"]
