"""BSRN of XPixel (Li et al., "Blueprint Separable Residual Network for Efficient Image
Super-Resolution", CVPR Workshops 2022; 1st in NTIRE 2022 sub-track 1), as its released
checkpoint is built: 48 channels, five residual feature distillation blocks, a x4 pixel-shuffle
tail. Input and output in 0-1.

Every 3x3 convolution is blueprint-separable (BSConvU: a pointwise 1x1 then a depthwise 3x3), and
every 1x1 convolution is an ``nn.Linear`` applied to a channels-last (B, H, W, C) tensor. The
challenge's Linear rule, ``batch * in.shape[1] * out.shape[1]``, reads the height twice there
instead of the channels, so its count of this model (2.02 G) is far below the true one (9.43 G);
the report printed 9.50 G. See ``docs/reference_models.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import clipped_max_pool, pixel_shuffle_upsampler


def _cl(x: torch.Tensor) -> torch.Tensor:
    """NCHW -> NHWC (channels last, for nn.Linear)."""
    return x.permute(0, 2, 3, 1)


def _cf(x: torch.Tensor) -> torch.Tensor:
    """NHWC -> NCHW."""
    return x.permute(0, 3, 1, 2)


class BSConvU(nn.Module):
    """Blueprint-separable convolution: pointwise (a Linear over channels), then depthwise k x k."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.pw = nn.Linear(in_channels, out_channels)
        self.dw = nn.Conv2d(
            out_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=out_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(_cf(self.pw(_cl(x))))


class ESA(nn.Module):
    """RFDN's spatial attention with BSConvU 3x3s, Linear 1x1s and GELU."""

    def __init__(self, channels: int = 48):
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Linear(channels, f)
        self.conv_f = nn.Linear(f, f)
        self.conv_max = BSConvU(f, f)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = BSConvU(f, f)
        self.conv3_ = BSConvU(f, f)
        self.conv4 = nn.Linear(f, channels)
        self.GELU = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # named locals as in the released code: cf, c4 and m stay alive until the gate
        c1_ = self.conv1(_cl(x))
        c1 = self.conv2(_cf(c1_))
        v_max = clipped_max_pool(c1)
        v_range = self.GELU(self.conv_max(v_max))
        c3 = self.GELU(self.conv3(v_range))
        c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, size=x.shape[2:], mode="bilinear", align_corners=False)
        cf = self.conv_f(c1_)
        c4 = self.conv4(_cl(c3) + cf)
        m = torch.sigmoid(_cf(c4))
        return x * m


class ESDB(nn.Module):
    """BSRN's efficient separable distillation block (RFDB layout: distill, refine, fuse, ESA)."""

    def __init__(self, channels: int = 48):
        super().__init__()
        dc = channels // 2
        self.c1_d = nn.Linear(channels, dc)
        self.c1_r = BSConvU(channels, channels)
        self.c2_d = nn.Linear(channels, dc)
        self.c2_r = BSConvU(channels, channels)
        self.c3_d = nn.Linear(channels, dc)
        self.c3_r = BSConvU(channels, channels)
        self.c4 = BSConvU(channels, dc)
        self.act = nn.GELU()
        self.c5 = nn.Linear(dc * 4, channels)
        self.esa = ESA(channels)
        # A learned per-channel scale; its initial value is overwritten by the checkpoint.
        self.cw = nn.Parameter(torch.normal(mean=1.0, std=0.2, size=(1, channels)))
        self.conv_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the released code's named locals: each conv output lives until its GELU, and the
        # block's c5 output until the final add (peak memory depends on it)
        d1 = self.act(self.c1_d(_cl(x)))
        r1 = self.c1_r(x)
        r1 = self.act(r1 + x)
        d2 = self.act(self.c2_d(_cl(r1)))
        r2 = self.c2_r(r1)
        r2 = self.act(r2 + r1)
        d3 = self.act(self.c3_d(_cl(r2)))
        r3 = self.c3_r(r2)
        r3 = self.act(r3 + r2)
        r4 = self.act(self.c4(r3))
        out = _cf(self.c5(torch.cat([d1, d2, d3, _cl(r4)], dim=3)))
        fused = self.conv_out(_cl(self.esa(out)) * self.cw)
        return _cf(fused) + x


class _PixelShuffleDirect(nn.Module):
    """3x3 convolution + pixel shuffle, nested as the checkpoint names it."""

    def __init__(self, scale: int, channels: int, out_channels: int):
        super().__init__()
        self.upsampleOneStep = pixel_shuffle_upsampler(channels, out_channels, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampleOneStep(x)


class BSRN(nn.Module):
    """x4 BSRN (the NTIRE 2022 entry); input and output in the 0-1 pixel range."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_feat: int = 48,
        num_block: int = 5,
        num_out_ch: int = 3,
        upscale: int = 4,
    ):
        super().__init__()
        if num_block != 5:
            raise ValueError("BSRN's released layout has exactly five blocks (B1..B5)")
        # The input is repeated four times along channels before the first convolution.
        self.fea_conv = BSConvU(num_in_ch * 4, num_feat)
        self.B1 = ESDB(num_feat)
        self.B2 = ESDB(num_feat)
        self.B3 = ESDB(num_feat)
        self.B4 = ESDB(num_feat)
        self.B5 = ESDB(num_feat)
        self.c1 = nn.Linear(num_feat * num_block, num_feat)
        self.GELU = nn.GELU()
        self.c2 = BSConvU(num_feat, num_feat)
        self.upsampler = _PixelShuffleDirect(upscale, num_feat, num_out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, x, x, x], dim=1)  # alive to the end, as released
        fea = self.fea_conv(x)
        b1 = self.B1(fea)
        b2 = self.B2(b1)
        b3 = self.B3(b2)
        b4 = self.B4(b3)
        b5 = self.B5(b4)
        trunk = torch.cat([b1, b2, b3, b4, b5], dim=1)
        out = self.GELU(_cf(self.c1(_cl(trunk))))
        return self.upsampler(self.c2(out) + fea)
