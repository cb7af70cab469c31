"""How to run: :class:`RunConfig`, checked when it is made."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from esrprof.challenges import RunProtocol, challenge
from esrprof.errors import UsageError
from esrprof.probe import DTYPE_LABELS, usable_device

DTYPES = {label: dtype for dtype, label in DTYPE_LABELS.items()}  # "fp32" -> torch.float32
ON_OOM = ("skip", "stop")
SYNTHETIC_MODES = ("auto", "quick", "full")


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
    # The NTIRE year whose run protocol to follow (esrprof/challenges/): "ntire2022" keeps the
    # best of ``trials`` and resets the memory peak per split (esrprof's fix); the 2024-2026
    # protocol averages the trials (the organisers' 5 runs) and never resets the peak.
    challenge: str = "ntire2022"

    @classmethod
    def for_challenge(cls, name: str | None = None, **kwargs: Any) -> RunConfig:
        """The config of a challenge year's protocol (default the latest): its number of runs
        unless ``trials`` is given."""
        rules = challenge(name)
        kwargs.setdefault("trials", rules.protocol.trials)
        return cls(challenge=rules.name, **kwargs)

    @property
    def protocol(self) -> RunProtocol:
        return challenge(self.challenge).protocol

    @property
    def resets_memory_per_split(self) -> bool:
        """esrprof resets the peak per split under the 2022 rules (as it always has); a later
        year's protocol is followed as the organisers ran it."""
        return self.protocol.name == "ntire2022" or self.protocol.memory_reset_per_split

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "challenge", challenge(self.challenge).name)
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
        """The device to run on; one that cannot be used is a UsageError (exit 2)."""
        return usable_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["splits"] = list(self.splits)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """The config a ``to_dict()`` (or a result's ``run_config`` block) describes; keys that
        are not fields (what the run resolved, such as ``device_resolved``) are ignored."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if not _is_a(value, str(f.type)):
                raise UsageError(f"run config field {f.name} is {value!r}, not {f.type}")
            kwargs[f.name] = value
        return cls(**kwargs)


def _is_a(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation (the few kinds RunConfig uses)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        return "None" in kinds
    if isinstance(value, bool):
        return "bool" in kinds
    if isinstance(value, int) and "int" in kinds:
        return True
    if isinstance(value, str):
        return "str" in kinds
    if isinstance(value, (list, tuple)) and "tuple[str, ...]" in kinds:
        return all(isinstance(v, str) for v in value)
    return False
