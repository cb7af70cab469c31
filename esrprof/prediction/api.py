"""predict() and predict_challenge(), and the records they return."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from esrprof.challenges import Preset, challenge
from esrprof.counting.engine import Trace, trace
from esrprof.errors import UsageError
from esrprof.prediction.calibration import CALIBRATION, Calibration
from esrprof.prediction.gpus import GpuSpec, gpu_spec
from esrprof.prediction.kinds import FLOOR, KINDS
from esrprof.prediction.memory import Liveness, LivenessObserver, replay, weight_sizes
from esrprof.prediction.records import (
    KindTime,
    LayerTime,
    MemoryPrediction,
    Prediction,
    RuntimePrediction,
)
from esrprof.prediction.runtime import CostObserver, OpRow, op_times
from esrprof.probe import check_shape, device_dtype, dtype_label

MIB = 1024**2


# The presets are part of each year's rules (esrprof/challenges/); these names stay for callers.
CHALLENGE_2022: Preset = challenge("ntire2022").preset


def preset_for(preset: Preset | str) -> Preset:
    """A preset, or the preset of a challenge year by name (``"ntire2026"``)."""
    return preset if isinstance(preset, Preset) else challenge(preset).preset


# ------------------------------------------------------------------------------ entry points


def predict(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 339, 510),
    gpu: str | GpuSpec = "titan-xp",
    dtype: torch.dtype | None = None,
    *,
    backend: str = "auto",
    calibration: Calibration = CALIBRATION,
    top_layers: int = 10,
) -> Prediction:
    """Peak GPU memory and runtime of one forward on ``input_shape``, predicted for ``gpu``.

    Computed from one traced forward on meta tensors (``backend="auto"`` falls back to fake,
    then real tensors only for models that need values). The model is not modified.
    ``dtype``: compute in this dtype (as after ``model.to(dtype)``); default: the model's own.
    """
    shape, spec = _check(model, input_shape, gpu)
    started = time.perf_counter()
    types = _module_types(model)
    trace = _run_trace(model, shape, types, backend, dtype, cost=True)
    liveness, rows = trace.observers[0].result, trace.observers[1].rows
    used_dtype = dtype or device_dtype(model)[1]
    memory = _memory(model, shape, liveness, (), used_dtype, dtype)
    runtime = _runtime(shape, rows, spec, calibration, types, top_layers)
    return Prediction(memory, runtime, spec, dtype_label(used_dtype), calibration,
                      trace.backend, trace.fallback_reason, None,
                      time.perf_counter() - started)


def predict_challenge(
    model: nn.Module,
    preset: Preset | str = CHALLENGE_2022,
    gpu: str | GpuSpec | None = None,
    dtype: torch.dtype | None = None,
    *,
    backend: str = "auto",
    calibration: Calibration = CALIBRATION,
    top_layers: int = 10,
) -> Prediction:
    """Both challenge figures: peak memory at the preset's largest image (after its warm-up
    images) and runtime at its typical image, on the preset's GPU (or ``gpu``). ``preset``: a
    :class:`Preset` or a challenge year, ``"ntire2026"``."""
    preset = preset_for(preset)
    if gpu is None and preset.gpu is None:
        raise UsageError(f"{preset.name} names no GPU; choose one (gpu=..., --gpu)")
    spec = gpu_spec(gpu if gpu is not None else preset.gpu)
    mem_shape, spec = _check(model, preset.memory_shape, spec)
    run_shape = check_shape(preset.runtime_shape)
    started = time.perf_counter()
    types = _module_types(model)
    run_trace = _run_trace(model, run_shape, types, backend, dtype, cost=True)
    traces = {run_shape: run_trace.observers[0].result}
    for shape in {check_shape(s) for s in preset.warmup_shapes} | {mem_shape}:
        if shape not in traces:
            t = _run_trace(model, shape, types, backend, dtype, cost=False)
            traces[shape] = t.observers[0].result
    used_dtype = dtype or device_dtype(model)[1]
    warmup = tuple(traces[check_shape(s)] for s in preset.warmup_shapes)
    memory = _memory(model, mem_shape, traces[mem_shape], warmup, used_dtype, dtype,
                     tuple(check_shape(s) for s in preset.warmup_shapes))
    runtime = _runtime(run_shape, run_trace.observers[1].rows, spec, calibration, types,
                       top_layers)
    return Prediction(memory, runtime, spec, dtype_label(used_dtype), calibration,
                      run_trace.backend, run_trace.fallback_reason, preset.name,
                      time.perf_counter() - started)


# ------------------------------------------------------------------------------- internals


def _check(model: Any, input_shape: Sequence[int], gpu: str | GpuSpec
           ) -> tuple[tuple[int, ...], GpuSpec]:
    if not isinstance(model, nn.Module):
        raise UsageError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return check_shape(input_shape), gpu_spec(gpu)


def _module_types(model: nn.Module) -> dict[str, str]:
    return {path: type(m).__name__ for path, m in model.named_modules()}


def _run_trace(model: nn.Module, shape: tuple[int, ...], types: Mapping[str, str],
               backend: str, dtype: torch.dtype | None, *, cost: bool) -> Trace:
    def observers() -> list[Any]:
        obs: list[Any] = [LivenessObserver(types)]
        if cost:
            obs.append(CostObserver(types))
        return obs

    return trace(model, shape, observers, backend=backend, dtype=dtype)


def _memory(model: nn.Module, shape: tuple[int, ...], liveness: Liveness,
            warmup: Sequence[Liveness], used_dtype: torch.dtype,
            dtype: torch.dtype | None,
            warmup_shapes: tuple[tuple[int, ...], ...] = ()) -> MemoryPrediction:
    sizes = weight_sizes(model, dtype)
    rep = replay(liveness, sizes, warmup)
    exact, _ = liveness.exact_peak()
    module, op = liveness.label(rep.peak_step)
    input_bytes = liveness.nbytes(liveness.input_key)
    output_bytes = sum(liveness.nbytes(k) for k in liveness.output_keys)
    return MemoryPrediction(
        input_shape=shape,
        peak_allocated_mib=rep.peak_bytes / MIB,
        weights_mib=rep.weights_bytes / MIB,
        input_mib=input_bytes / MIB,
        output_mib=output_bytes / MIB,
        activation_peak_mib=(rep.peak_bytes - rep.weights_bytes - input_bytes) / MIB,
        exact_peak_mib=(exact + sum(sizes)) / MIB,
        peak_module=module,
        peak_op=op,
        warmup_shapes=warmup_shapes,
    )


def _runtime(shape: tuple[int, ...], rows: Sequence[OpRow], spec: GpuSpec,
             cal: Calibration, types: Mapping[str, str], top: int) -> RuntimePrediction:
    floor_us = spec.floor_us if spec.floor_us is not None else cal.kernel_floor_us
    times = op_times(rows, peak_flops=spec.peak_flops, bandwidth=spec.bandwidth,
                     compute_efficiency=cal.compute_efficiency,
                     bandwidth_efficiency=cal.bandwidth_efficiency, floor_s=floor_us * 1e-6)
    total = sum(t.seconds for t in times)

    def share(seconds: float) -> float:
        return seconds / total if total > 0 else 0.0

    kinds: dict[str, float] = dict.fromkeys(KINDS, 0.0)
    layers: dict[str, list[Any]] = defaultdict(lambda: [0.0, 0, 0.0, 0.0, defaultdict(float)])
    memory_bound = compute_bound = floors = 0.0
    for t in times:
        kinds[t.row.group] += t.roofline_s
        kinds[FLOOR] += t.floor_s
        floors += t.floor_s
        if t.memory_bound:
            memory_bound += t.roofline_s
        else:
            compute_bound += t.roofline_s
        layer = layers[t.row.module]
        layer[0] += t.seconds
        layer[1] += 1
        layer[2] += t.roofline_s
        layer[3] += t.roofline_s if t.memory_bound else 0.0
        layer[4][t.row.op] += t.seconds
    ranked = sorted(layers.items(), key=lambda kv: (-kv[1][0], kv[0]))[: max(0, top)]
    return RuntimePrediction(
        input_shape=shape,
        ms=total * 1e3,
        kernels=len(times),
        flops=sum(r.flops for r in rows),
        bytes_moved=sum(r.bytes_moved for r in rows),
        memory_bound_share=share(memory_bound),
        compute_bound_share=share(compute_bound),
        floor_share=share(floors),
        by_kind=tuple(KindTime(k, v * 1e3, share(v)) for k, v in kinds.items()),
        top_layers=tuple(
            LayerTime(
                module=path,
                module_type=types.get(path, ""),
                ms=v[0] * 1e3,
                share=share(v[0]),
                kernels=v[1],
                memory_bound_share=v[3] / v[2] if v[2] > 0 else 0.0,
                top_op=max(v[4].items(), key=lambda kv: kv[1])[0],
            )
            for path, v in ranked
        ),
    )


__all__ = [
    "CHALLENGE_2022",
    "KindTime",
    "LayerTime",
    "MemoryPrediction",
    "Prediction",
    "Preset",
    "RuntimePrediction",
    "predict",
    "predict_challenge",
    "preset_for",
]
