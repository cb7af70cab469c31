"""RFDN, the AIM 2020 Efficient SR winner (Liu, Tang and Wu, "Residual Feature Distillation
Network for Lightweight Image Super-Resolution", ECCV Workshops 2020), as the NTIRE 2022 report
listed it: 50 channels, four residual feature distillation blocks (RFDB), each ending in an
enhanced spatial attention (ESA) block, a x4 pixel-shuffle tail. Input and output in 0-1.

Parameter names follow the released checkpoint (``fea_conv``, ``B1``..``B4``, ``c``,
``LR_conv``, ``upsampler``). ESA's pooling and resampling are functional (``F.max_pool2d``,
``F.interpolate``), so the challenge's module-hook count does not see them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import clipped_max_pool, pixel_shuffle_upsampler, same_conv


class ESA(nn.Module):
    """Enhanced spatial attention: a strided, max-pooled branch computes a sigmoid mask."""

    def __init__(self, channels: int = 50):
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = same_conv(f, f, 3)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = same_conv(f, f, 3)
        self.conv3_ = same_conv(f, f, 3)
        self.conv4 = nn.Conv2d(f, channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # named locals as in the released code: cf, c4 and m stay alive until the gate
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v_max = clipped_max_pool(c1)
        v_range = self.relu(self.conv_max(v_max))
        c3 = self.relu(self.conv3(v_range))
        c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, size=x.shape[2:], mode="bilinear", align_corners=False)
        cf = self.conv_f(c1_)
        c4 = self.conv4(c3 + cf)
        m = torch.sigmoid(c4)
        return x * m


class RFDB(nn.Module):
    """Three distill (1x1) / refine (3x3 + residual) steps, a last 3x3, a 1x1 fusion and ESA."""

    def __init__(self, channels: int = 50):
        super().__init__()
        dc = channels // 2
        self.c1_d = nn.Conv2d(channels, dc, 1)
        self.c1_r = same_conv(channels, channels, 3)
        self.c2_d = nn.Conv2d(channels, dc, 1)
        self.c2_r = same_conv(channels, channels, 3)
        self.c3_d = nn.Conv2d(channels, dc, 1)
        self.c3_r = same_conv(channels, channels, 3)
        self.c4 = same_conv(channels, dc, 3)
        # One activation module called seven times; the challenge's hooks count every call.
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.c5 = nn.Conv2d(dc * 4, channels, 1)
        self.esa = ESA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.act(self.c1_d(x))
        r1 = self.act(self.c1_r(x) + x)
        d2 = self.act(self.c2_d(r1))
        r2 = self.act(self.c2_r(r1) + r1)
        d3 = self.act(self.c3_d(r2))
        r3 = self.act(self.c3_r(r2) + r2)
        r4 = self.act(self.c4(r3))
        out = torch.cat([d1, d2, d3, r4], dim=1)  # kept alive through ESA, as released
        return self.esa(self.c5(out))


class RFDN(nn.Module):
    """x4 RFDN; input and output in the 0-1 pixel range."""

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 50,
        num_modules: int = 4,
        out_nc: int = 3,
        upscale: int = 4,
    ):
        super().__init__()
        if num_modules != 4:
            raise ValueError("RFDN's released layout has exactly four blocks (B1..B4)")
        self.fea_conv = same_conv(in_nc, nf, 3)
        self.B1 = RFDB(nf)
        self.B2 = RFDB(nf)
        self.B3 = RFDB(nf)
        self.B4 = RFDB(nf)
        self.c = nn.Sequential(nn.Conv2d(nf * num_modules, nf, 1), nn.LeakyReLU(0.05, inplace=True))
        self.LR_conv = same_conv(nf, nf, 3)
        self.upsampler = pixel_shuffle_upsampler(nf, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        b1 = self.B1(fea)
        b2 = self.B2(b1)
        b3 = self.B3(b2)
        b4 = self.B4(b3)
        out_b = self.c(torch.cat([b1, b2, b3, b4], dim=1))  # alive through the tail, as released
        out_lr = self.LR_conv(out_b) + fea
        return self.upsampler(out_lr)
