"""Image sets for runs: the DIV2K layout, any folder, HR-only folders, a synthetic default.

Images are referenced, not loaded, when a set is opened; a run loads each LR image once (outside
timing) and the HR reference only when it computes PSNR. Images are ``3,H,W`` uint8 RGB tensors.

The synthetic default exists so that ``--run`` works on a fresh machine: deterministic images with
DIV2K-like LR shapes (510 px on the long side, varied short side, some portrait). On a GPU it is
the protocol's shape (100 valid + 100 test); on a CPU a quick set (a few images a fifth that
size), because a full DIV2K pass of a baseline model takes minutes per image there.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esrprof.challenges import challenge as challenge_rules
from esrprof.errors import DataError
from esrprof.extras import require

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLITS = ("valid", "test")
FULL_IMAGES_PER_SPLIT = 100  # DIV2K valid and test both have 100 images
QUICK_IMAGES_PER_SPLIT = 2
QUICK_DIVISOR = 5  # quick synthetic images are DIV2K-like shapes divided by this
DIV2K_LR_LONG_SIDE = 510
# DIV2K's first index per split (0801x4.png ... 0900x4.png; test 0901 ... 1000).
DIV2K_FIRST_INDEX = {"valid": 801, "test": 901}
_SCALE_SUFFIX = re.compile(r"x(\d+)$", re.IGNORECASE)


class UnreadableImage(DataError):
    """One image file that cannot be decoded; a run skips it and counts it."""


@dataclass(frozen=True)
class ImageRef:
    """One LR image and, when known, its HR reference. Exactly one way of producing the LR:
    a file, an HR file downscaled by ``scale``, or a synthetic ``(h, w, seed)``."""

    name: str
    lr_path: Path | None = None
    hr_path: Path | None = None
    downscale: int | None = None  # LR = bicubic(HR, 1/downscale)
    synthetic: tuple[int, int, int] | None = None

    @property
    def has_hr(self) -> bool:
        return self.hr_path is not None

    def load_lr(self) -> torch.Tensor:
        if self.synthetic is not None:
            return synthetic_image(*self.synthetic)
        if self.lr_path is not None:
            return read_image(self.lr_path)
        if self.hr_path is not None and self.downscale:
            return bicubic_downscale(read_image(self.hr_path), self.downscale)
        raise DataError(f"{self.name}: no LR source")

    def load_hr(self) -> torch.Tensor | None:
        return None if self.hr_path is None else read_image(self.hr_path)


@dataclass(frozen=True)
class Split:
    name: str
    images: tuple[ImageRef, ...]

    @property
    def n_with_hr(self) -> int:
        return sum(1 for i in self.images if i.has_hr)


@dataclass(frozen=True)
class ImageSet:
    source: str  # "synthetic" | "div2k" | "folder"
    description: str
    splits: tuple[Split, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "description": self.description,
            **self.details,
            "splits": {
                s.name: {"images": len(s.images), "with_hr": s.n_with_hr} for s in self.splits
            },
        }


# ------------------------------------------------------------------------------ reading


def read_image(path: Path) -> torch.Tensor:
    """An image file as a ``3,H,W`` uint8 RGB tensor; UnreadableImage names the file."""
    Image = require("PIL.Image", "reading images")
    UnidentifiedImageError = Image.UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            array = np.asarray(rgb, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR from HR the way DIV2K made it, as closely as Pillow allows: mod-crop, then an
    anti-aliased bicubic resize by 1/scale (MATLAB's ``imresize`` differs by rounding only)."""
    Image = require("PIL.Image", "writing images")

    h, w = hr.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if h < scale or w < scale:
        raise DataError(f"HR image {tuple(hr.shape[-2:])} is smaller than the scale {scale}")
    im = Image.fromarray(hr[:, :h, :w].permute(1, 2, 0).numpy())
    lr = im.resize((w // scale, h // scale), Image.BICUBIC)
    return torch.from_numpy(np.asarray(lr, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _key(path: Path) -> str:
    """Pairing key: the stem without a trailing ``x4`` (``0801x4.png`` <-> ``0801.png``)."""
    return _SCALE_SUFFIX.sub("", path.stem)


# ----------------------------------------------------------------------------- synthetic


def div2k_like_shapes(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` deterministic (h, w) LR shapes like DIV2K x4: long side 510, the short side mostly
    339 (HR 2040x1356) and otherwise varied, about one in five portrait."""
    rng = random.Random(seed)
    shapes = []
    for _ in range(n):
        short = 339 if rng.random() < 0.6 else rng.randrange(255, DIV2K_LR_LONG_SIDE + 1)
        long = DIV2K_LR_LONG_SIDE
        shapes.append((long, short) if rng.random() < 0.2 else (short, long))
    return shapes


def synthetic_image(h: int, w: int, seed: int) -> torch.Tensor:
    """A deterministic, image-like (smooth plus fine noise) ``3,h,w`` uint8 picture."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 16), max(2, w // 16), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                             align_corners=False)[0]
    noisy = smooth + 0.05 * torch.randn(3, h, w, generator=g)
    return (noisy.clamp(0, 1) * 255).round().to(torch.uint8)


def synthetic(
    splits: Sequence[str] = SPLITS,
    *,
    quick: bool = False,
    images_per_split: int | None = None,
    seed: int = 0,
    challenge: str = "ntire2022",
) -> ImageSet:
    """The default set: LR-only synthetic images with DIV2K-like shapes (no HR, so no PSNR),
    as many per split as the ``challenge`` year's sets hold (100 for DIV2K, 200 for the
    DIV2K+LSDIR sets of 2024-2026)."""
    rules = challenge_rules(challenge)
    full = {s.name: s.images for s in rules.data.splits}
    n = images_per_split or (QUICK_IMAGES_PER_SPLIT if quick
                             else max(full.get(s, FULL_IMAGES_PER_SPLIT) for s in splits))
    out = []
    for k, name in enumerate(splits):
        first = DIV2K_FIRST_INDEX.get(name, 1 + 1000 * (k + 1))
        shapes = div2k_like_shapes(n, seed=seed * 1000 + k)
        refs = []
        for i, (h, w) in enumerate(shapes):
            if quick:
                h, w = max(16, h // QUICK_DIVISOR), max(16, w // QUICK_DIVISOR)
            image_seed = seed * 100003 + first + i
            refs.append(ImageRef(name=f"{first + i:04d}", synthetic=(h, w, image_seed)))
        out.append(Split(name, tuple(refs)))
    mode = "quick" if quick else "full"
    long_side = DIV2K_LR_LONG_SIDE // (QUICK_DIVISOR if quick else 1)
    shrink = f" / {QUICK_DIVISOR}" if quick else ""
    size = f"DIV2K-like LR shapes{shrink} (long side {long_side} px)"
    mix = " + ".join(f"{count} {name}" for name, count in rules.data.splits[0].mix)
    desc = (f"synthetic ({mode}): {n} images per split, {size}, no HR; the {rules.title} sets "
            f"hold {mix} images a split")
    return ImageSet("synthetic", desc, tuple(out),
                    {"synthetic": mode, "seed": seed, "challenge": rules.name})


# ------------------------------------------------------------------------------ on disk


def _find_dir(root: Path, split: str, kind: str, scale: int | None) -> Path | None:
    """The split's LR or HR folder under a DIV2K-style root: ``DIV2K_valid_LR``,
    ``DIV2K_valid_LR_bicubic/X4``, or any ``*_valid_LR*`` / ``*_valid_HR`` folder."""
    candidates = sorted(p for p in root.iterdir() if p.is_dir()
                        and re.search(rf"(^|_){split}_{kind}($|_)", p.name, re.IGNORECASE))
    for d in candidates:
        sub = d / f"X{scale}" if scale else None
        if sub is not None and sub.is_dir():
            return sub
        if _images_in(d):
            return d
        subs = [s for s in sorted(d.iterdir()) if s.is_dir() and _images_in(s)]
        if len(subs) == 1:
            return subs[0]
    return None


def div2k(
    root: str | Path, splits: Sequence[str] = SPLITS, *, scale: int | None = None
) -> ImageSet:
    """DIV2K (or DIV2K+LSDIR) layout: ``DIV2K_valid_LR/0801x4.png`` paired with
    ``DIV2K_valid_HR/0801.png``; a split without an HR folder (test) runs LR-only."""
    base = Path(root)
    if not base.is_dir():
        raise DataError(_not_a_folder(base))
    out = []
    details: dict[str, Any] = {"root": str(base)}
    for name in splits:
        lr_dir = _find_dir(base, name, "LR", scale)
        hr_dir = _find_dir(base, name, "HR", None)
        if lr_dir is None and hr_dir is None:
            raise DataError(f"{base}: no {name} LR or HR folder (expected e.g. DIV2K_{name}_LR)")
        out.append(_pair(name, lr_dir, hr_dir, scale))
        details[f"{name}_lr_dir"] = str(lr_dir) if lr_dir else None
        details[f"{name}_hr_dir"] = str(hr_dir) if hr_dir else None
    desc = f"DIV2K layout at {base}: " + ", ".join(
        f"{s.name} {len(s.images)} images ({s.n_with_hr} with HR)" for s in out
    )
    return ImageSet("div2k", desc, tuple(out), details)


def _not_a_folder(path: Path) -> str:
    return f"{path}: not a folder" if path.exists() else f"{path}: no such folder"


def folder(
    lr_dir: str | Path | None = None,
    hr_dir: str | Path | None = None,
    *,
    scale: int | None = None,
    split: str = "valid",
) -> ImageSet:
    """Any folder of LR images, optionally paired by name with an HR folder; or an HR folder
    alone, with LR made by bicubic downscaling (needs ``scale``). One split, named ``split``."""
    lr = Path(lr_dir) if lr_dir else None
    hr = Path(hr_dir) if hr_dir else None
    for p in (lr, hr):
        if p is not None and not p.is_dir():
            raise DataError(_not_a_folder(p))
    if lr is None and hr is None:
        raise DataError("give an LR folder, an HR folder, or both")
    s = _pair(split, lr, hr, scale)
    parts = [f"LR {lr}" if lr else f"LR = bicubic x1/{scale} of HR"]
    if hr:
        parts.append(f"HR {hr}")
    desc = f"folder ({', '.join(parts)}): {len(s.images)} images, {s.n_with_hr} with HR"
    details = {"lr_dir": str(lr) if lr else None, "hr_dir": str(hr) if hr else None,
               "split": split}
    return ImageSet("folder", desc, (s,), details)


def _pair(name: str, lr_dir: Path | None, hr_dir: Path | None, scale: int | None) -> Split:
    hr_files = {_key(p): p for p in _images_in(hr_dir)} if hr_dir else {}
    if lr_dir is not None:
        lr_files = _images_in(lr_dir)
        if not lr_files:
            raise DataError(f"{lr_dir}: no images ({', '.join(IMAGE_EXTS)})")
        refs = [ImageRef(_key(p), lr_path=p, hr_path=hr_files.get(_key(p))) for p in lr_files]
    else:
        if not scale:
            raise DataError("LR from HR needs the model's scale (--scale or a reference model)")
        if not hr_files:
            raise DataError(f"{hr_dir}: no images ({', '.join(IMAGE_EXTS)})")
        refs = [ImageRef(k, hr_path=p, downscale=scale) for k, p in sorted(hr_files.items())]
    return Split(name, tuple(refs))


def limit(images: ImageSet, max_images: int | None) -> ImageSet:
    """The first ``max_images`` of each split."""
    if not max_images:
        return images
    splits = tuple(Split(s.name, s.images[:max_images]) for s in images.splits)
    desc = images.description
    if any(len(s.images) < len(o.images) for s, o in zip(splits, images.splits)):
        desc += f" (first {max_images} per split)"
    return ImageSet(images.source, desc, splits, {**images.details, "max_images": max_images})
