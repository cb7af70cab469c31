"""PSNR exactly as the NTIRE ESR challenge computed it, a Y-channel variant, and SSIM.

The challenge's PSNR: the SR output is clamped to the model's pixel range, scaled to 0-255 and
**rounded to uint8**; the HR reference is mod-cropped to the scale; a border of ``scale`` pixels
is shaved from both; one MSE over all three RGB channels; ``20*log10(255/sqrt(MSE))``; the
figure of a set is the mean of per-image PSNRs.

Identical images have an infinite PSNR. :func:`psnr` returns ``math.inf`` for them (it is the
right answer); :func:`mean_psnr` caps each image at ``PSNR_CAP_DB`` so a set's figure stays a
finite number that JSON can carry, and says how many were capped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

PSNR_CAP_DB = 100.0

# ITU-R BT.601 luma as MATLAB's rgb2ycbcr (and basicsr) compute it, on 0-255 values.
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0


def to_uint8(sr: torch.Tensor, pixel_range: int = 1) -> torch.Tensor:
    """A model output (``[1,]3,H,W`` float in 0..pixel_range) as the challenge saved it: clamped,
    scaled to 0-255, rounded, uint8, ``3,H,W`` on the CPU."""
    if pixel_range not in (1, 255):
        raise ValueError(f"pixel_range must be 1 or 255, got {pixel_range!r}")
    x = sr.detach()
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    x = x.to("cpu", torch.float32).clamp(0, pixel_range)
    if pixel_range == 1:
        x = x * 255.0
    return x.round().to(torch.uint8)


def mod_crop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop ``C,H,W`` so H and W are multiples of ``scale`` (from the bottom/right)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def _aligned(sr: torch.Tensor, hr: torch.Tensor, scale: int, shave: int | None):
    """uint8 SR and HR as float64 ``C,H,W``, HR mod-cropped, both cut to a common size, border
    shaved."""
    if sr.dtype != torch.uint8 or hr.dtype != torch.uint8:
        raise TypeError("psnr/ssim compare uint8 images; use to_uint8() on model outputs")
    hr = mod_crop(hr, scale)
    h = min(sr.shape[-2], hr.shape[-2])
    w = min(sr.shape[-1], hr.shape[-1])
    s = scale if shave is None else shave
    if h <= 2 * s or w <= 2 * s:
        raise ValueError(f"image {h}x{w} too small to shave a {s}-pixel border")
    crop = (..., slice(s, h - s), slice(s, w - s))
    return sr[..., :h, :w][crop].double(), hr[..., :h, :w][crop].double()


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """``3,H,W`` 0-255 RGB -> ``1,H,W`` Y (16-235), float64, as MATLAB's rgb2ycbcr."""
    r, g, b = img.double()[0], img.double()[1], img.double()[2]
    return (_Y_OFFSET + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b)[None]


def psnr(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    scale: int,
    y_channel: bool = False,
    shave: int | None = None,
) -> float:
    """PSNR in dB between a uint8 SR image and its uint8 HR reference (both ``3,H,W``).

    Border shave defaults to ``scale``; ``math.inf`` for identical images.
    """
    a, b = _aligned(sr, hr, scale, shave)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    mse = float(torch.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 20.0 * math.log10(255.0 / math.sqrt(mse))


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_plane(a: torch.Tensor, b: torch.Tensor) -> float:
    """Wang et al. 2004 SSIM of two ``H,W`` float64 planes on 0-255, valid-mode Gaussian window
    (11x11, sigma 1.5) as basicsr and the MATLAB reference compute it. The window is separable,
    so it is applied as a column then a row pass (11x cheaper on 2K images, same values)."""
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    g = _gaussian_1d()
    col, row = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)
    a, b = a[None, None], b[None, None]

    def filt(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, col), row)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    scale: int,
    y_channel: bool = False,
    shave: int | None = None,
) -> float:
    """SSIM between uint8 SR and HR (``3,H,W``), same alignment as :func:`psnr`; RGB is the mean
    of the three channels' SSIM."""
    a, b = _aligned(sr, hr, scale, shave)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if a.shape[-2] < 11 or a.shape[-1] < 11:
        raise ValueError("image too small for an 11x11 SSIM window")
    return sum(_ssim_plane(a[c], b[c]) for c in range(a.shape[0])) / a.shape[0]


@dataclass(frozen=True)
class PsnrSummary:
    mean_db: float | None
    capped: int  # images whose PSNR was infinite (identical to HR) and counted as PSNR_CAP_DB


def mean_psnr(values: Sequence[float], cap_db: float = PSNR_CAP_DB) -> PsnrSummary:
    """Mean of per-image PSNRs with infinities capped at ``cap_db`` (finite, JSON-safe)."""
    if not values:
        return PsnrSummary(None, 0)
    capped = sum(1 for v in values if v > cap_db)
    return PsnrSummary(sum(min(v, cap_db) for v in values) / len(values), capped)
