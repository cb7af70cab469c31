"""The run loop: :func:`measure`, and per split its steps in order (load, warm up, trials, the
out-of-memory record, quality).

An allocation failure in a forward (CUDA's OutOfMemoryError, the CPU allocator's "can't allocate
memory", ``MemoryError``) is the image's, not the run's: it is recorded with the image's size and
the run skips the image or stops (``on_oom``), keeping what was measured.
"""

from __future__ import annotations

import gc
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from esrprof import data as data_mod
from esrprof.environment import collect
from esrprof.errors import (
    USER_CODE_ERRORS,
    DataError,
    ModelError,
    UsageError,
    describe,
    user_code_failed,
)
from esrprof.forward import first_tensor, probe_scale, tiled_forward
from esrprof.memory import SplitMemory, read_gpu_state
from esrprof.quality import psnr, ssim, to_uint8
from esrprof.run.config import DTYPES, RunConfig
from esrprof.run.prepare import open_images, prepare_model, to_input
from esrprof.run.records import ImageQuality, RunResult, SplitResult
from esrprof.state import preserved
from esrprof.timing import Clock, Trials, make_clock, pinned_threads

_CUDA_OOM: tuple[type[BaseException], ...] = (
    (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError")
    else (torch.cuda.OutOfMemoryError,)
)
# How the CPU allocator says it failed (c10's alloc_cpu.cpp on Linux and Windows; a C++
# bad_alloc surfacing through an operator).
_CPU_ALLOCATOR_FAILED = re.compile(
    r"DefaultCPUAllocator: (can't allocate memory|not enough memory)|alloc_cpu\.cpp"
    r"|std::bad_alloc"
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator running out of memory, on the GPU or the CPU."""
    if isinstance(exc, (MemoryError, *_CUDA_OOM)):
        return True
    return isinstance(exc, RuntimeError) and bool(_CPU_ALLOCATOR_FAILED.search(str(exc)))


class _OutOfMemory(Exception):
    """An allocation failure of one forward, carried out of its except block (see _forward)."""


@dataclass
class _Ctx:
    config: RunConfig
    device: torch.device
    clock: Clock
    forward: Callable[[torch.Tensor], torch.Tensor]
    pixel_range: int
    scale: int | None
    stopped: str | None = None
    memory_started: bool = False  # the first split resets the CUDA peak whatever the protocol


@dataclass
class _Images:
    """One split's LR images, decoded before anything is timed."""

    refs: list[data_mod.ImageRef] = field(default_factory=list)
    lrs: list[torch.Tensor] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@dataclass
class _Tally:
    """What the trials of one split record, image index by image index."""

    failed: set[int] = field(default_factory=set)
    oom: list[dict[str, Any]] = field(default_factory=list)
    trials: list[dict[int, float]] = field(default_factory=list)
    states: list[dict[str, Any] | None] = field(default_factory=list)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)  # uint8 SR, for PSNR later
    quality: dict[int, ImageQuality] = field(default_factory=dict)


def measure(model: nn.Module, config: RunConfig | None = None, *,
            clock: Clock | None = None) -> RunResult:
    """Run ``model`` over the configured image sets: runtime, memory and (when meaningful) PSNR.

    ``clock`` replaces the device's clock (tests pass a fake one).
    """
    config = config or RunConfig()
    device = config.resolved_device()
    notes: list[str] = []
    pixel_range = config.pixel_range
    if pixel_range is None:
        pixel_range = 1
        notes.append("pixel range not given: assumed 0-1 (use --pixel-range 255 otherwise)")
    with preserved(model, eval_mode=True), pinned_threads(config.threads) as threads:
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        work = prepare_model(model, config, device)
        scale = _scale(work, config, device, notes)
        images = open_images(config, device, scale)
        if not images.splits or not any(s.images for s in images.splits):
            raise DataError(f"no images to run: {images.description}")
        clock = clock or make_clock(device)
        environment = collect(
            device, config.dtype, threads=threads, clock=clock.name,
            channels_last=config.channels_last, tile=config.tile,
            tile_overlap=config.tile_overlap if config.tile else None, compile=config.compile,
        )
        ctx = _Ctx(config, device, clock, _forward_of(work, config, scale), pixel_range, scale)
        results = _run_splits(ctx, images)
    return RunResult(
        config=config,
        device=str(device),
        clock=clock.name,
        threads=threads,
        scale=scale,
        pixel_range=pixel_range,
        splits=tuple(results),
        data=_data_block(images, results),
        environment=environment,
        notes=tuple(notes),
        stopped=ctx.stopped,
    )


def _scale(work: nn.Module, config: RunConfig, device: torch.device,
           notes: list[str]) -> int | None:
    scale = config.scale or probe_scale(work, device, DTYPES[config.dtype])
    if config.scale is None:
        notes.append(f"scale x{scale} found by a probe forward" if scale
                     else "scale could not be found from a probe forward")
    if config.tile and scale is None:
        raise UsageError("tiling needs the model's scale: give --scale")
    return scale


def _forward_of(work: nn.Module, config: RunConfig,
                scale: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    runner: Callable[[torch.Tensor], Any] = torch.compile(work) if config.compile else work

    def forward(x: torch.Tensor) -> torch.Tensor:
        if config.tile and (x.shape[-2] > config.tile or x.shape[-1] > config.tile):
            return tiled_forward(runner, x, config.tile, config.tile_overlap, scale)
        return first_tensor(runner(x))

    return forward


def _run_splits(ctx: _Ctx, images: data_mod.ImageSet) -> list[SplitResult]:
    results = []
    with torch.inference_mode():
        for split in images.splits:
            if not split.images:
                continue
            results.append(_run_split(ctx, split))
            if ctx.stopped:
                break
    _empty_cache(ctx.device)
    return results


def _data_block(images: data_mod.ImageSet, results: list[SplitResult]) -> dict[str, Any]:
    block = images.to_dict()
    unreadable = {s.name: list(s.unreadable) for s in results if s.unreadable}
    block["unreadable"] = sum(len(v) for v in unreadable.values())
    block["unreadable_files"] = unreadable
    return block


# -------------------------------------------------------------------------- one split


def _run_split(ctx: _Ctx, split: data_mod.Split) -> SplitResult:
    images = _load(split)
    want_quality, quality_note = _quality_plan(ctx, images.refs)
    tally = _Tally()
    progress = _Progress(ctx.config.progress, len(images.lrs) * ctx.config.trials, split.name)
    try:
        warmup_forwards = _warm_up(ctx, images.lrs)
        reset = ctx.config.resets_memory_per_split or not ctx.memory_started
        ctx.memory_started = True
        with SplitMemory(ctx.device, use_nvml=ctx.config.nvml, reset=reset) as mem:
            for t in range(ctx.config.trials):
                _one_trial(ctx, split.name, images, t, tally, want_quality, progress)
                if ctx.stopped:
                    break
        for i, sr in tally.outputs.items():  # after the memory figure: HR decoding is not ours
            _add_quality(ctx, images.refs[i], sr, tally, i)
    finally:
        progress.close()
    return _split_record(ctx, split.name, images, tally, warmup_forwards, mem.record,
                         quality_note)


def _load(split: data_mod.Split) -> _Images:
    images = _Images()
    for ref in split.images:
        try:
            images.lrs.append(ref.load_lr())
            images.refs.append(ref)
        except data_mod.UnreadableImage as exc:
            warnings.warn(f"esrprof: skipping {exc}", stacklevel=3)
            images.unreadable.append(str(ref.lr_path or ref.hr_path))
    return images


def _quality_plan(ctx: _Ctx, refs: list[data_mod.ImageRef]) -> tuple[bool, str | None]:
    """Whether PSNR means anything for this split, and if not, why."""
    if not any(r.has_hr for r in refs):
        return False, "no HR references: no PSNR"
    if not ctx.config.trained:
        return False, "random weights (no trained weights given): PSNR would be meaningless"
    if ctx.scale is None:
        return False, "model scale unknown: no PSNR"
    return True, None


def _warm_up(ctx: _Ctx, lrs: list[torch.Tensor]) -> int:
    """Untimed forwards: on the first image, or on every distinct shape when cuDNN or the
    compiler tune per shape. Returns how many ran."""
    per_shape = ctx.config.cudnn_benchmark or ctx.config.compile
    chosen: list[int] = []
    seen: set[tuple[int, ...]] = set()
    for i, lr in enumerate(lrs):
        if tuple(lr.shape) not in seen and (per_shape or not chosen):
            seen.add(tuple(lr.shape))
            chosen.append(i)
    done = 0
    for i in chosen if ctx.config.warmup else ():
        x = to_input(lrs[i], ctx.config, ctx.pixel_range, ctx.device)
        for _ in range(ctx.config.warmup):
            try:
                _forward(ctx, x)
            except _OutOfMemory:
                break  # the timed pass records it
            done += 1
        del x
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    _empty_cache(ctx.device)
    return done


def _one_trial(ctx: _Ctx, split_name: str, images: _Images, t: int, tally: _Tally,
               want_quality: bool, progress: _Progress) -> None:
    """One timed pass over the split's images (those that have not run out of memory)."""
    samples: dict[int, float] = {}
    for i, (ref, lr) in enumerate(zip(images.refs, images.lrs)):
        if i in tally.failed:
            continue
        timed = _time_image(ctx, lr)
        if isinstance(timed, str):
            _record_oom(ctx, split_name, ref, lr, t, timed, tally, i)
            if ctx.stopped:
                break
            continue
        ms, host = timed
        samples[i] = ms
        if t == 0 and want_quality and ref.has_hr:
            sr = to_uint8(host, ctx.pixel_range)
            if ctx.device.type == "cuda":
                _add_quality(ctx, ref, sr, tally, i)
            else:  # keep HR decoding out of the CPU memory figure
                tally.outputs[i] = sr
        progress.update()
    tally.trials.append(samples)
    on_gpu = ctx.device.type == "cuda" and ctx.config.nvml
    tally.states.append(read_gpu_state(ctx.device) if on_gpu else None)


def _time_image(ctx: _Ctx, lr: torch.Tensor) -> tuple[float, torch.Tensor] | str:
    """The forward's time and its output copied to the CPU after the sync, or, when the
    allocator failed, what it said (with the cache emptied)."""
    x = to_input(lr, ctx.config, ctx.pixel_range, ctx.device)
    holder: list[torch.Tensor] = []
    try:
        ms = ctx.clock.time_ms(lambda x=x, h=holder: h.append(_forward(ctx, x)))
    except _OutOfMemory as exc:
        failure = str(exc)
    else:
        return ms, first_tensor(holder[0]).to("cpu")
    del x, holder
    _empty_cache(ctx.device)
    return failure


def _forward(ctx: _Ctx, x: torch.Tensor) -> torch.Tensor:
    failure = None
    try:
        return ctx.forward(x)
    except ModelError:
        raise
    except USER_CODE_ERRORS as exc:
        if not is_out_of_memory(exc):
            raise user_code_failed(f"the forward on a {tuple(x.shape)} input", exc) from exc
        failure = describe(exc)
    # Raised here, not in the except block: the allocator's exception holds the forward's
    # frames and their tensors, which must be freed before the cache can be emptied.
    raise _OutOfMemory(failure)


def _record_oom(ctx: _Ctx, split_name: str, ref: data_mod.ImageRef, lr: torch.Tensor, t: int,
                error: str, tally: _Tally, i: int) -> None:
    """The image is dropped from every trial; with on_oom="stop" the run ends here."""
    tally.failed.add(i)
    tally.oom.append({"image": ref.name, "lr_shape": list(lr.shape[-2:]), "trial": t,
                      "error": error})
    if ctx.config.on_oom == "stop":
        ctx.stopped = (f"out of memory on {split_name}/{ref.name} "
                       f"({lr.shape[-2]}x{lr.shape[-1]})")


def _add_quality(ctx: _Ctx, ref: data_mod.ImageRef, sr: torch.Tensor, tally: _Tally,
                 i: int) -> None:
    try:
        hr = ref.load_hr()
    except data_mod.UnreadableImage as exc:
        warnings.warn(f"esrprof: no PSNR for {ref.name}: {exc}", stacklevel=3)
        return
    scale, y = ctx.scale, ctx.config.psnr_y
    hr_h, hr_w = hr.shape[-2] - hr.shape[-2] % scale, hr.shape[-1] - hr.shape[-1] % scale
    if abs(hr_h - sr.shape[-2]) > scale or abs(hr_w - sr.shape[-1]) > scale:
        raise DataError(f"{ref.hr_path}: the SR output {tuple(sr.shape[-2:])} does not match "
                        f"the HR {(hr_h, hr_w)} (mod-cropped); wrong scale or wrong pairing?")
    try:
        s = ssim(sr, hr, scale=scale, y_channel=y)
    except ValueError:
        s = None
    tally.quality[i] = ImageQuality(ref.name, psnr(sr, hr, scale=scale, y_channel=y), s)


def _split_record(ctx: _Ctx, name: str, images: _Images, tally: _Tally, warmup_forwards: int,
                  memory: dict[str, Any], quality_note: str | None) -> SplitResult:
    """Trials cut short by a stop keep only the images every kept trial measured."""
    n = len(images.lrs)
    complete = [s for s in tally.trials if len(s) + len(tally.failed) >= n] or tally.trials[:1]
    keep = [i for i in range(n) if i not in tally.failed and all(i in s for s in complete)]
    return SplitResult(
        name=name,
        images=tuple(images.refs[i].name for i in keep),
        shapes=tuple((int(images.lrs[i].shape[-2]), int(images.lrs[i].shape[-1])) for i in keep),
        trials=Trials.of([[s[i] for i in keep] for s in complete],
                         ctx.config.protocol.trial_choice),
        warmup_forwards=warmup_forwards,
        memory=memory,
        unreadable=tuple(images.unreadable),
        oom=tuple(tally.oom),
        gpu_states=tuple(tally.states) if ctx.device.type == "cuda" else (),
        quality=tuple(tally.quality[i] for i in sorted(tally.quality) if i not in tally.failed),
        quality_note=quality_note,
    )


# ---------------------------------------------------------------------------- helpers


class _Progress:
    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self.bar = None
        if enabled and total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _empty_cache(device: torch.device) -> None:
    """Return cached CUDA blocks (after warm-up, after an OOM); nothing to do on the CPU."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
