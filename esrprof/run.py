"""Runs: the challenge's runtime, memory and PSNR protocol, with its flaws fixed.

A run passes over image splits (valid, test). Per split: load the LR images (untimed), warm up,
reset the memory peak, then ``trials`` passes over the split timing each image's forward alone
(input already on the device, output copied back after the synchronise). Every per-image sample
is kept; the split's runtime is the best trial's per-image mean and the final runtime the mean
of the split figures, as the challenge reported it. PSNR is computed from the first trial's
outputs when HR references and trained weights exist.

:func:`measure` leaves the model as it was: every module's train/eval flag, grad mode, RNG
streams and cuDNN flags are restored, and a model that must change device, dtype or memory
format for the run is copied rather than converted in place.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from esrprof import data as data_mod
from esrprof.environment import collect
from esrprof.errors import DataError, ModelError, UsageError, describe
from esrprof.forward import first_tensor, probe_scale, tiled_forward
from esrprof.memory import SplitMemory, read_gpu_state
from esrprof.quality import PSNR_CAP_DB, mean_psnr, psnr, ssim, to_uint8
from esrprof.state import preserved
from esrprof.timing import Clock, Trials, make_clock, pinned_threads

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ON_OOM = ("skip", "stop")
SYNTHETIC_MODES = ("auto", "quick", "full")
_OOM_ERRORS: tuple[type[BaseException], ...] = (
    (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError")
    else (torch.cuda.OutOfMemoryError,)
)


@dataclass(frozen=True)
class RunConfig:
    """How to run. Defaults follow the challenge (fp32, batch 1, whole image, best of 3 trials)
    plus one warm-up forward per split; data defaults to the synthetic set (quick on a CPU)."""

    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1"
    dtype: str = "fp32"
    channels_last: bool = False
    tile: int | None = None  # LR tile size; None = whole image, as the challenge ran
    tile_overlap: int = 32
    trials: int = 3
    warmup: int = 1  # warm-up forwards per split (per distinct shape with cudnn_benchmark/compile)
    splits: tuple[str, ...] = ("valid", "test")
    max_images: int | None = None
    cudnn_benchmark: bool = False
    compile: bool = False
    data: str | None = None  # DIV2K-layout root
    lr_dir: str | None = None
    hr_dir: str | None = None
    synthetic: str = "auto"  # "auto" (quick on CPU, full on GPU), "quick", "full"
    threads: int | None = None  # CPU intra-op threads; None keeps torch's setting
    progress: bool = False
    pixel_range: int | None = None  # 1 or 255; None = assume 1 and say so
    scale: int | None = None  # None = found from a small probe forward
    trained: bool = False  # weights were given: only then is PSNR meaningful
    psnr_y: bool = False
    on_oom: str = "skip"
    seed: int = 0
    nvml: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", tuple(self.splits))
        problems = []
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.trials < 1:
            problems.append("trials must be at least 1")
        if self.warmup < 0:
            problems.append("warmup must be 0 or more")
        if self.tile is not None and self.tile < 1:
            problems.append("tile must be a positive size in LR pixels")
        if self.tile is not None and not 0 <= self.tile_overlap < self.tile:
            problems.append("tile overlap must be at least 0 and smaller than the tile")
        if not self.splits or len(set(self.splits)) != len(self.splits):
            problems.append("splits must be a non-empty list of distinct names")
        if self.max_images is not None and self.max_images < 1:
            problems.append("max images must be at least 1")
        if self.pixel_range not in (None, 1, 255):
            problems.append("pixel range must be 1 or 255")
        if self.scale is not None and self.scale < 1:
            problems.append("scale must be a positive integer")
        if self.on_oom not in ON_OOM:
            problems.append(f"on_oom must be one of {', '.join(ON_OOM)}")
        if self.synthetic not in SYNTHETIC_MODES:
            problems.append(f"synthetic must be one of {', '.join(SYNTHETIC_MODES)}")
        if self.threads is not None and self.threads < 1:
            problems.append("threads must be at least 1")
        if self.data and (self.lr_dir or self.hr_dir):
            problems.append("give a DIV2K root or LR/HR folders, not both")
        if problems:
            raise UsageError("; ".join(problems))

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise UsageError(f"unknown device {self.device!r} (cpu, cuda, cuda:1)") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise UsageError(f"device {self.device}: CUDA is not available on this machine")
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise UsageError(
                    f"device {self.device}: only {torch.cuda.device_count()} CUDA device(s)"
                )
        elif dev.type != "cpu":
            raise UsageError(f"device {self.device}: only cpu and cuda are supported")
        return dev

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["splits"] = list(self.splits)
        return d


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ImageQuality:
    image: str
    psnr_db: float
    ssim: float | None


@dataclass(frozen=True)
class SplitResult:
    """Raw record of one split: samples per trial, aligned with ``images``."""

    name: str
    images: tuple[str, ...]  # measured in every kept trial, in order
    shapes: tuple[tuple[int, int], ...]  # LR (h, w) of those images
    trials: Trials
    warmup_forwards: int
    memory: dict[str, Any]
    unreadable: tuple[str, ...] = ()
    oom: tuple[dict[str, Any], ...] = ()
    gpu_states: tuple[dict[str, Any] | None, ...] = ()  # per trial, at its end (NVML)
    quality: tuple[ImageQuality, ...] = ()
    quality_note: str | None = None

    @property
    def throttled_trials(self) -> list[int]:
        return [i for i, s in enumerate(self.gpu_states) if s and s.get("throttled")]

    def runtime_dict(self) -> dict[str, Any]:
        d = self.trials.to_dict()
        d.update(
            images=list(self.images),
            shapes=[list(s) for s in self.shapes],
            n_images=len(self.images),
            warmup_forwards=self.warmup_forwards,
            oom=list(self.oom),
        )
        if self.gpu_states:
            d["gpu_state_per_trial"] = list(self.gpu_states)
            d["throttled_trials"] = self.throttled_trials
        return d


@dataclass(frozen=True)
class RunResult:
    config: RunConfig
    device: str
    clock: str
    threads: int
    scale: int | None
    pixel_range: int
    splits: tuple[SplitResult, ...]
    data: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    stopped: str | None = None  # why the run stopped early (on_oom="stop")

    def split(self, name: str) -> SplitResult:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def runtime_ms(self) -> float | None:
        """Mean of the split figures (each the best trial's per-image mean)."""
        figures = [s.trials.runtime_ms for s in self.splits]
        figures = [f for f in figures if f is not None]
        return sum(figures) / len(figures) if figures else None

    def _memory_split(self) -> SplitResult | None:
        for s in self.splits:
            if s.name == "valid":
                return s
        return self.splits[0] if self.splits else None

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "runtime": self._runtime_block(),
                "memory": self._memory_block(),
                "quality": self._quality_block(),
                "data": self.data,
                "run_config": {
                    **self.config.to_dict(),
                    "device_resolved": self.device,
                    "clock": self.clock,
                    "threads_used": self.threads,
                    "scale_used": self.scale,
                    "pixel_range_used": self.pixel_range,
                    "notes": list(self.notes),
                    "stopped": self.stopped,
                },
            }
        )

    def _runtime_block(self) -> dict[str, Any]:
        return {
            "runtime_ms": self.runtime_ms,
            "definition": "per split: per-image mean of the best trial; runtime_ms: mean of "
            "the split figures (NTIRE ESR)",
            "clock": self.clock,
            "device": self.device,
            "dtype": self.config.dtype,
            "trials": self.config.trials,
            "splits": {s.name: s.runtime_dict() for s in self.splits},
        }

    def _memory_block(self) -> dict[str, Any]:
        chosen = self._memory_split()
        rec = chosen.memory if chosen else {}
        if rec.get("kind") == "cuda":
            figure = rec.get("max_allocated_mib")
            kind = "cuda_max_memory_allocated"
            note = (f"torch.cuda.max_memory_allocated over the {chosen.name} split, peak reset "
                    "at its start (the challenge's figure)")
        else:
            figure = rec.get("peak_rss_growth_mib")
            kind = "cpu_peak_rss_growth"
            note = (f"CPU run: peak resident-memory growth during the {chosen.name} split "
                    f"({rec.get('method', 'unavailable')}); not comparable with the challenge's "
                    "GPU figure" if chosen else "no split was run")
        block = {"memory_mib": figure, "kind": kind, "split": chosen.name if chosen else None,
                 "note": note, "splits": {s.name: s.memory for s in self.splits}}
        if rec.get("kind") == "cuda":
            block["activation_peak_mib"] = rec.get("activation_peak_mib")
            block["max_reserved_mib"] = rec.get("max_reserved_mib")
        return block

    def _quality_block(self) -> dict[str, Any]:
        names = list(dict.fromkeys(["valid", "test", *[s.name for s in self.splits]]))
        psnr_db: dict[str, float | None] = dict.fromkeys(names)
        ssim_v: dict[str, float | None] = dict.fromkeys(names)
        per_image: dict[str, list[dict[str, Any]]] = {}
        notes: list[str] = []
        capped = 0
        for s in self.splits:
            if s.quality:
                summary = mean_psnr([q.psnr_db for q in s.quality])
                psnr_db[s.name] = summary.mean_db
                capped += summary.capped
                ssims = [q.ssim for q in s.quality if q.ssim is not None]
                ssim_v[s.name] = sum(ssims) / len(ssims) if ssims else None
                per_image[s.name] = [
                    {"image": q.image, "psnr_db": min(q.psnr_db, PSNR_CAP_DB), "ssim": q.ssim}
                    for q in s.quality
                ]
            if s.quality_note:
                notes.append(f"{s.name}: {s.quality_note}")
        if capped:
            notes.append(f"{capped} image(s) identical to HR: PSNR capped at {PSNR_CAP_DB:g} dB")
        return {
            "psnr_db": psnr_db,
            "ssim": ssim_v,
            "channel": "y" if self.config.psnr_y else "rgb",
            "pixel_range": self.pixel_range,
            "scale": self.scale,
            "shave": self.scale,
            "per_image": per_image,
            "note": "; ".join(notes) or None,
        }


def _finite(obj: Any) -> Any:
    """Replace inf/nan floats by None: results are written with allow_nan=False."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _needs_copy(model: nn.Module, device: torch.device, dtype: torch.dtype, cl: bool) -> bool:
    if cl:
        return True
    for t in [*model.parameters(), *model.buffers()]:
        if t.device != device or (t.is_floating_point() and t.dtype != dtype):
            return True
    return False


def _prepare(model: nn.Module, config: RunConfig, device: torch.device) -> nn.Module:
    """The model to run: the user's own when nothing needs converting, else a converted copy
    (so values, devices and strides of the user's tensors never change)."""
    dtype = DTYPES[config.dtype]
    if not _needs_copy(model, device, dtype, config.channels_last):
        return model
    try:
        work = copy.deepcopy(model)
    except Exception as exc:
        raise ModelError(
            f"cannot copy the model to move it to {device}/{config.dtype} ({describe(exc)}); "
            "move it there yourself"
        ) from None
    work = work.to(device=device, dtype=dtype)
    if config.channels_last:
        work = work.to(memory_format=torch.channels_last)
    return work


def _to_input(lr: torch.Tensor, config: RunConfig, pixel_range: int,
              device: torch.device) -> torch.Tensor:
    x = lr.float()
    if pixel_range == 1:
        x = x / 255.0
    x = x.unsqueeze(0).to(DTYPES[config.dtype])
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device)


# ------------------------------------------------------------------------------- images


def open_images(config: RunConfig, device: torch.device, scale: int | None) -> data_mod.ImageSet:
    """The image set the config asks for, limited to ``max_images``."""
    if config.data:
        images = data_mod.div2k(config.data, config.splits, scale=scale)
    elif config.lr_dir or config.hr_dir:
        images = data_mod.folder(config.lr_dir, config.hr_dir, scale=scale,
                                 split=config.splits[0])
    else:
        mode = config.synthetic
        quick = mode == "quick" or (mode == "auto" and device.type != "cuda")
        return data_mod.synthetic(config.splits, quick=quick, images_per_split=config.max_images,
                                  seed=config.seed)
    return data_mod.limit(images, config.max_images)


# ---------------------------------------------------------------------------------- run


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


@dataclass
class _Ctx:
    config: RunConfig
    device: torch.device
    clock: Clock
    forward: Callable[[torch.Tensor], torch.Tensor]
    pixel_range: int
    scale: int | None
    stopped: str | None = None


def _run_split(ctx: _Ctx, split: data_mod.Split) -> SplitResult:
    config, device = ctx.config, ctx.device
    refs: list[data_mod.ImageRef] = []
    lrs: list[torch.Tensor] = []
    unreadable: list[str] = []
    for ref in split.images:
        try:
            lrs.append(ref.load_lr())
            refs.append(ref)
        except data_mod.UnreadableImage as exc:
            warnings.warn(f"esrprof: skipping {exc}", stacklevel=2)
            unreadable.append(str(ref.lr_path or ref.hr_path))

    quality_note = None
    want_quality = False
    if not any(r.has_hr for r in refs):
        quality_note = "no HR references: no PSNR"
    elif not config.trained:
        quality_note = "random weights (no trained weights given): PSNR would be meaningless"
    elif ctx.scale is None:
        quality_note = "model scale unknown: no PSNR"
    else:
        want_quality = True

    def forward_once(x: torch.Tensor) -> torch.Tensor:
        try:
            return ctx.forward(x)
        except _OOM_ERRORS:
            raise
        except ModelError:
            raise
        except Exception as exc:
            shape = tuple(x.shape)
            raise ModelError(f"forward failed on a {shape} input: {describe(exc)}") from exc

    # Warm-up: the first image, or every distinct shape when cuDNN / the compiler tune per shape.
    per_shape = config.cudnn_benchmark or config.compile
    warm: list[int] = []
    seen: set[tuple[int, ...]] = set()
    for i, lr in enumerate(lrs):
        shape = tuple(lr.shape)
        if shape not in seen and (per_shape or not warm):
            seen.add(shape)
            warm.append(i)
    warmup_forwards = 0
    progress = _Progress(config.progress, len(lrs) * config.trials, split.name)
    try:
        for i in warm[: len(warm) if config.warmup else 0]:
            x = _to_input(lrs[i], config, ctx.pixel_range, device)
            for _ in range(config.warmup):
                try:
                    forward_once(x)
                except _OOM_ERRORS:
                    break  # the timed pass records it
                warmup_forwards += 1
            del x
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        _empty_cache(device)

        failed: set[int] = set()
        oom: list[dict[str, Any]] = []
        trials: list[dict[int, float]] = []
        states: list[dict[str, Any] | None] = []
        outputs: dict[int, torch.Tensor] = {}  # uint8 SR kept for PSNR on the CPU path
        quality: dict[int, ImageQuality] = {}
        with SplitMemory(device, use_nvml=config.nvml) as mem:
            for t in range(config.trials):
                samples: dict[int, float] = {}
                for i, lr in enumerate(lrs):
                    if i in failed:
                        continue
                    x = _to_input(lr, config, ctx.pixel_range, device)
                    holder: list[torch.Tensor] = []
                    oom_error = None
                    try:
                        ms = ctx.clock.time_ms(lambda x=x, h=holder: h.append(forward_once(x)))
                    except _OOM_ERRORS as exc:
                        oom_error = describe(exc)
                    if oom_error is not None:
                        # Outside the except block: the traceback's frames hold the forward's
                        # tensors until it ends, and the cache can only be emptied after.
                        del x, holder
                        _empty_cache(device)
                        failed.add(i)
                        oom.append({"image": refs[i].name, "lr_shape": list(lr.shape[-2:]),
                                    "trial": t, "error": oom_error})
                        if config.on_oom == "stop":
                            ctx.stopped = (f"out of memory on {split.name}/{refs[i].name} "
                                           f"({lr.shape[-2]}x{lr.shape[-1]})")
                            break
                        continue
                    host = first_tensor(holder[0]).to("cpu")  # copied back after the sync
                    del x, holder
                    samples[i] = ms
                    if t == 0 and want_quality and refs[i].has_hr:
                        sr = to_uint8(host, ctx.pixel_range)
                        if device.type == "cuda":
                            q = _image_quality(refs[i], sr, ctx.scale, config)
                            if q is not None:
                                quality[i] = q
                        else:  # keep HR decoding out of the CPU memory figure
                            outputs[i] = sr
                    del host
                    progress.update()
                trials.append(samples)
                states.append(read_gpu_state(device) if device.type == "cuda" and config.nvml
                              else None)
                if ctx.stopped:
                    break
        for i, sr in outputs.items():
            q = _image_quality(refs[i], sr, ctx.scale, config)
            if q is not None:
                quality[i] = q
    finally:
        progress.close()

    complete = [s for s in trials if len(s) + len(failed) >= len(lrs)] or trials[:1]
    keep = [i for i in range(len(lrs)) if i not in failed and all(i in s for s in complete)]
    return SplitResult(
        name=split.name,
        images=tuple(refs[i].name for i in keep),
        shapes=tuple((int(lrs[i].shape[-2]), int(lrs[i].shape[-1])) for i in keep),
        trials=Trials.of([[s[i] for i in keep] for s in complete]),
        warmup_forwards=warmup_forwards,
        memory=mem.record,
        unreadable=tuple(unreadable),
        oom=tuple(oom),
        gpu_states=tuple(states) if device.type == "cuda" else (),
        quality=tuple(quality[i] for i in sorted(quality) if i not in failed),
        quality_note=quality_note,
    )


def _image_quality(ref: data_mod.ImageRef, sr: torch.Tensor, scale: int,
                   config: RunConfig) -> ImageQuality | None:
    try:
        hr = ref.load_hr()
    except data_mod.UnreadableImage as exc:
        warnings.warn(f"esrprof: no PSNR for {ref.name}: {exc}", stacklevel=2)
        return None
    hr_h, hr_w = hr.shape[-2] - hr.shape[-2] % scale, hr.shape[-1] - hr.shape[-1] % scale
    if abs(hr_h - sr.shape[-2]) > scale or abs(hr_w - sr.shape[-1]) > scale:
        raise DataError(f"{ref.hr_path}: the SR output "
                        f"{tuple(sr.shape[-2:])} does not match"
                        f" the HR {(hr_h, hr_w)} (mod-cropped); wrong scale or wrong pairing?")
    value = psnr(sr, hr, scale=scale, y_channel=config.psnr_y)
    try:
        s = ssim(sr, hr, scale=scale, y_channel=config.psnr_y)
    except ValueError:
        s = None
    return ImageQuality(ref.name, value, s)


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
        work = _prepare(model, config, device)
        scale = config.scale or probe_scale(work, device, DTYPES[config.dtype])
        if config.scale is None:
            notes.append(f"scale x{scale} found by a probe forward" if scale
                         else "scale could not be found from a probe forward")
        if config.tile and scale is None:
            raise UsageError("tiling needs the model's scale: give --scale")
        images = open_images(config, device, scale)
        if not images.splits or not any(s.images for s in images.splits):
            raise DataError(f"no images to run: {images.description}")
        runner: Callable[[torch.Tensor], Any] = work
        if config.compile:
            runner = torch.compile(work)

        def forward(x: torch.Tensor) -> torch.Tensor:
            if config.tile and (x.shape[-2] > config.tile or x.shape[-1] > config.tile):
                return tiled_forward(runner, x, config.tile, config.tile_overlap, scale)
            return first_tensor(runner(x))

        clock = clock or make_clock(device)
        environment = collect(
            device, config.dtype, threads=threads, clock=clock.name,
            channels_last=config.channels_last, tile=config.tile,
            tile_overlap=config.tile_overlap if config.tile else None, compile=config.compile,
        )
        ctx = _Ctx(config, device, clock, forward, pixel_range, scale)
        results = []
        with torch.inference_mode():
            for split in images.splits:
                if not split.images:
                    continue
                results.append(_run_split(ctx, split))
                if ctx.stopped:
                    break
        if device.type == "cuda":
            _empty_cache(device)
    data_block = images.to_dict()
    unreadable = {s.name: list(s.unreadable) for s in results if s.unreadable}
    data_block["unreadable"] = sum(len(v) for v in unreadable.values())
    data_block["unreadable_files"] = unreadable
    return RunResult(
        config=config,
        device=str(device),
        clock=clock.name,
        threads=threads,
        scale=scale,
        pixel_range=pixel_range,
        splits=tuple(results),
        data=data_block,
        environment=environment,
        notes=tuple(notes),
        stopped=ctx.stopped,
    )
