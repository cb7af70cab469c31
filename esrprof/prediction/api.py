"""predict() and predict_challenge(), and the records they return."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from esrprof.challenges import Preset, challenge
from esrprof.counting.engine import PROTOCOL_GRAD, Trace, trace
from esrprof.errors import EsrprofError, ModelError, UsageError
from esrprof.prediction.attention import FusedAttention
from esrprof.prediction.calibration import Calibration, calibration_for
from esrprof.prediction.gpus import GpuSpec, gpu_spec
from esrprof.prediction.kinds import FLOOR, KINDS
from esrprof.prediction.memory import Liveness, LivenessObserver, replay, weight_sizes
from esrprof.prediction.records import (
    KindTime,
    LayerTime,
    MemoryPrediction,
    Prediction,
    Relative,
    RuntimePrediction,
)
from esrprof.prediction.runtime import CostObserver, OpRow, op_times
from esrprof.probe import check_dtype, check_shape, device_dtype, dtype_label

MIB = 1024**2


# The preset of each challenge lives with its rules (esrprof/challenges); this is 2022's.
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
    calibration: Calibration | None = None,
    top_layers: int = 10,
    autograd: bool | None = False,
) -> Prediction:
    """Peak GPU memory and runtime of one forward on ``input_shape``, predicted for ``gpu``.

    Computed from one traced forward on meta tensors (``backend="auto"`` falls back to fake,
    then real tensors only for models that need values). The model is not modified, and torch's
    global state (default dtype, threads, RNG, grad mode) is restored afterwards.
    ``dtype``: compute in this dtype (as after ``model.to(dtype)``); default: the model's own.
    ``calibration``: the runtime constants; default the GPU's own (a ``file:`` spec measured by
    ``esrprof calibrate``) or its generation's (calibration.py).
    ``autograd``: predict a forward that autograd records (saved tensors stay alive until the
    output dies): True, False (``no_grad``/``inference_mode``, the default), or None for the
    caller's context (grad enabled and a parameter that requires grad).
    """
    shape, spec = _check(model, input_shape, gpu)
    dtype = check_dtype(dtype)
    cal = calibration or calibration_for_gpu(spec)
    grad = _autograd(model, autograd)
    started = time.perf_counter()
    with torch_globals():
        trace, sdpa = _run_trace(model, shape, backend, dtype, cost=True, grad=grad, gpu=spec)
        liveness, rows = trace.observers[0].result, trace.observers[1].rows
        used_dtype = dtype or device_dtype(model)[1]
        memory = _memory(model, shape, liveness, (), used_dtype, dtype)
    runtime = _runtime(shape, rows, spec, cal, trace.module_types, top_layers)
    return Prediction(memory, runtime, spec, dtype_label(used_dtype), cal,
                      trace.backend, trace.fallback_reason, None,
                      time.perf_counter() - started, autograd=liveness.autograd_recorded,
                      attention=sdpa)


def predict_challenge(
    model: nn.Module,
    preset: Preset | str = CHALLENGE_2022,
    gpu: str | GpuSpec | None = None,
    dtype: torch.dtype | None = None,
    *,
    backend: str = "auto",
    calibration: Calibration | None = None,
    top_layers: int = 10,
    autograd: bool | str | None = PROTOCOL_GRAD,
) -> Prediction:
    """Both challenge figures: peak memory at the preset's largest image (after its warm-up
    images) and runtime at its typical image, on the preset's GPU (or ``gpu``).

    ``preset``: a :class:`Preset` or a challenge name ("ntire2022" ... "ntire2026": its GPU and
    shapes from that year's rules, with the runtime ratio to the year's baseline and the
    predicted score). ``autograd`` as for :func:`predict`, plus the default ``"protocol"``:
    as the challenges' scripts run a forward (every registered parameter set to
    ``requires_grad = False``, no ``no_grad``), so autograd records only where the forward
    itself makes a tensor that requires grad (a ``Parameter`` rebuilt by an eval-time
    re-parameterisation, an unregistered weight); ``Prediction.autograd`` says whether it did."""
    preset = preset_for(preset)
    if gpu is None and preset.gpu is None:
        raise UsageError(f"{preset.name} names no GPU; choose one (gpu=..., --gpu)")
    spec = gpu_spec(gpu if gpu is not None else preset.gpu)
    mem_shape, spec = _check(model, preset.memory_shape, spec)
    dtype = check_dtype(dtype)
    run_shape = check_shape(preset.runtime_shape)
    cal = calibration or calibration_for_gpu(spec)
    grad = _autograd(model, autograd)
    started = time.perf_counter()
    with torch_globals():
        run_trace, sdpa = _run_trace(model, run_shape, backend, dtype, cost=True, grad=grad,
                                     gpu=spec)
        traces = {run_shape: run_trace.observers[0].result}
        for shape in {check_shape(s) for s in preset.warmup_shapes} | {mem_shape}:
            if shape not in traces:
                t, _ = _run_trace(model, shape, backend, dtype, cost=False, grad=grad, gpu=spec)
                traces[shape] = t.observers[0].result
        used_dtype = dtype or device_dtype(model)[1]
        warmup = tuple(traces[check_shape(s)] for s in preset.warmup_shapes)
        memory = _memory(model, mem_shape, traces[mem_shape], warmup, used_dtype, dtype,
                         tuple(check_shape(s) for s in preset.warmup_shapes))
    runtime = _runtime(run_shape, run_trace.observers[1].rows, spec, cal,
                       run_trace.module_types, top_layers)
    prediction = Prediction(memory, runtime, spec, dtype_label(used_dtype), cal,
                            run_trace.backend, run_trace.fallback_reason, preset.name,
                            time.perf_counter() - started,
                            autograd=traces[mem_shape].autograd_recorded, attention=sdpa)
    with torch_globals():
        return with_score(model, prediction, preset, dtype=dtype, backend=backend)


def try_predict_challenge(
    model: nn.Module,
    preset: Preset | str = CHALLENGE_2022,
    gpu: str | GpuSpec | None = None,
    **options: Any,
) -> tuple[Prediction | None, str | None]:
    """The prediction policy of every door that predicts *beside* something else (the card,
    ``profile(predict=...)``, the zoo, the report): a model that cannot be traced at the
    preset's shapes (a :class:`~esrprof.errors.ModelError`) keeps what it rides on, and the
    prediction is ``None`` with the reason; a bad GPU or preset (a
    :class:`~esrprof.errors.UsageError`) is the caller's mistake and raises. :func:`predict`
    and :func:`predict_challenge`, called on their own, raise either."""
    try:
        return predict_challenge(model, preset, gpu, **options), None
    except ModelError as exc:
        return None, str(exc)


# ------------------------------------------------------------------------------- internals


def _check(model: Any, input_shape: Sequence[int], gpu: str | GpuSpec
           ) -> tuple[tuple[int, ...], GpuSpec]:
    if not isinstance(model, nn.Module):
        raise UsageError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return check_shape(input_shape), gpu_spec(gpu)


def _autograd(model: nn.Module, autograd: bool | str | None) -> bool | str:
    if autograd is None:
        return torch.is_grad_enabled() and any(p.requires_grad for p in model.parameters())
    if autograd == PROTOCOL_GRAD or isinstance(autograd, bool):
        return autograd
    raise UsageError(f"autograd must be True, False, None or {PROTOCOL_GRAD!r}, got "
                     f"{autograd!r}")


def calibration_for_gpu(spec: GpuSpec) -> Calibration:
    """The constants a GPU is predicted with: its own (measured), else its generation's."""
    return spec.calibration if spec.calibration is not None else calibration_for(spec.generation)


@contextmanager
def torch_globals() -> Iterator[None]:
    """Default dtype, intra-op threads, CPU RNG and grad mode as they were, whatever a
    forward (or a model's constructor-like forward code) changed."""
    dtype, threads, grad = torch.get_default_dtype(), torch.get_num_threads(), \
        torch.is_grad_enabled()
    rng = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.set_rng_state(rng)
        torch.set_grad_enabled(grad)


def _run_trace(model: nn.Module, shape: tuple[int, ...], backend: str,
               dtype: torch.dtype | None, *, cost: bool, grad: bool | str = False,
               gpu: GpuSpec | None = None) -> tuple[Trace, tuple[str, ...]]:
    """One traced forward with the liveness (and cost) observers, SDPA routed to the kernels
    ``gpu`` would run; and the SDPA backend of each attention call."""
    def observers() -> list[Any]:
        obs: list[Any] = [LivenessObserver()]
        if cost:
            obs.append(CostObserver())
        return obs

    fused = FusedAttention(gpu.generation if gpu is not None else "")
    with fused:
        t = trace(model, shape, observers, backend=backend, dtype=dtype, grad=grad)
    return t, tuple(dict.fromkeys(c[0] for c in fused.choices))


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
    """The rows costed on ``spec`` (its floor wins over the calibration's when it has one)."""
    floor_us = spec.floor_us if spec.floor_us is not None else cal.kernel_floor_us
    times = op_times(rows, peak_flops=spec.peak_flops, bandwidth=spec.bandwidth,
                     compute_efficiency=cal.compute_efficiency,
                     bandwidth_efficiency=cal.bandwidth_efficiency, floor_s=floor_us * 1e-6,
                     class_factors=dict(cal.class_factors))
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
    "try_predict_challenge",
]


# ------------------------------------------------------------------ against the year's baseline


def with_score(model: nn.Module, p: Prediction, preset: Preset, *,
               dtype: torch.dtype | None = None, backend: str = "auto") -> Prediction:
    """``p`` with its :class:`Relative` block when ``preset`` is a challenge's with a baseline
    in the zoo: the baseline predicted by the same predictor on the same GPU, the runtime
    ratio, and the year's score from the model's exact FLOPs and params."""
    from esrprof.challenges import CHALLENGES

    rules = CHALLENGES.get(preset.name)
    if rules is None:
        return p
    base = _baseline_runtime(rules.baseline.model, preset, p, dtype, backend)
    if base is None:
        return p
    base_ms, base_model = base
    flops_g, params_m = _year_counts(model, rules)
    pub = rules.baseline.published
    b_flops, b_params = (pub.flops_g, pub.params_m) if pub is not None else \
        _year_counts(base_model, rules)
    ratio = p.runtime.ms / base_ms
    score = None
    weights = (0.0, 0.0, 0.0)
    if rules.score is not None and flops_g is not None and b_flops:
        weights = tuple(rules.score.weights)  # type: ignore[assignment]
        # the runtime term from the predicted ratio: runtime / runtime_B = ratio
        score = rules.score.final(ratio, flops_g, params_m, 1.0, b_flops, b_params)
    return replace(p, relative=Relative(
        challenge=rules.name, baseline=rules.baseline.model, baseline_predicted_ms=base_ms,
        # the published figure was measured on the year's GPU: scaling by it holds there only
        baseline_published_ms=(pub.runtime_ms if pub is not None
                               and p.gpu.name == rules.hardware.gpu else None),
        runtime_ratio=ratio, flops_g=flops_g, params_m=params_m, baseline_flops_g=b_flops,
        baseline_params_m=b_params, score=score, weights=weights))


_BASELINE_MS: dict[tuple[Any, ...], float] = {}


def _baseline_runtime(name: str, preset: Preset, p: Prediction, dtype: torch.dtype | None,
                      backend: str) -> tuple[float, nn.Module] | None:
    from esrprof.zoo.registry import REGISTRY

    entry = REGISTRY.get(name)
    if entry is None:
        return None
    model = entry.build()
    key = (name, tuple(p.runtime.input_shape), p.gpu, p.calibration, dtype)
    if key not in _BASELINE_MS:
        with torch_globals():
            t, _ = _run_trace(model, tuple(p.runtime.input_shape), backend, dtype, cost=True,
                              gpu=p.gpu)
        rt = _runtime(tuple(p.runtime.input_shape), t.observers[1].rows, p.gpu, p.calibration,
                      t.module_types, 0)
        _BASELINE_MS[key] = rt.ms
    return _BASELINE_MS[key], model


def _year_counts(model: nn.Module, rules: Any) -> tuple[float | None, float]:
    """FLOPs [G] as the year counts them (None where that count fails) and params [M]."""
    from esrprof.counting.engine import count

    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    try:
        counts = count(model, rules.counting.input_shape)
    except EsrprofError:  # the score is a bonus: no FLOPs, no score
        return None, params_m
    year = getattr(counts, rules.counting.convention, None)  # counts.ntire2022, .ntire2024
    # a convention this build cannot count: the complete count (fvcore's closest) stands in
    macs = year.macs if year is not None else counts.complete.macs
    return macs / 1e9, params_m
