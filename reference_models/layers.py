"""Layers several reference architectures share (names inside them follow the checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_conv(in_ch: int, out_ch: int, k: int) -> nn.Conv2d:
    """A k x k convolution that keeps the spatial size (odd k)."""
    return nn.Conv2d(in_ch, out_ch, k, padding=k // 2)


def clipped_max_pool(
    x: torch.Tensor, kernel: int = 7, stride: int = 3, padding: int = 0
) -> torch.Tensor:
    """ESA's max-pooling; the window is clipped to maps smaller than it, where the released code
    failed (inputs under 15 px). On larger inputs this is exactly the released pooling."""
    k = (min(kernel, x.shape[2] + 2 * padding), min(kernel, x.shape[3] + 2 * padding))
    return F.max_pool2d(x, k, stride=stride, padding=padding)


def pixel_shuffle_upsampler(in_ch: int, out_ch: int, scale: int) -> nn.Sequential:
    """The usual x``scale`` tail: a 3x3 conv to ``out_ch·scale²`` channels, then PixelShuffle
    (checkpoint names ``<tail>.0.weight``, ``<tail>.0.bias``)."""
    return nn.Sequential(same_conv(in_ch, out_ch * scale**2, 3), nn.PixelShuffle(scale))


class ShortcutBlock(nn.Module):
    """``x + sub(x)``; ``sub`` is the checkpoint's name for the wrapped body."""

    def __init__(self, sub: nn.Module):
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sub(x)
