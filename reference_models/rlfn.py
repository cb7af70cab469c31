"""RLFN as ByteESR submitted it to NTIRE 2022 (Kong et al., "Residual Local Feature Network for
Efficient Super-Resolution", CVPR Workshops 2022; 1st in the main track): 46 feature channels,
48 inside each block, four residual local feature blocks (RLFB: three 3x3 convolutions with a
local residual, a 1x1, and a slimmed ESA of 16 channels), a x4 pixel-shuffle tail. Input and
output in 0-1. Also the NTIRE 2024 baseline.

Parameter names follow the released checkpoint, which kept RFDN's names (``fea_conv``,
``B1``..``B4``, ``LR_conv``, ``upsampler``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import clipped_max_pool, pixel_shuffle_upsampler, same_conv


class ESA(nn.Module):
    """RFDN's spatial attention without its conv_max / conv3_ layers (RLFN's simplification)."""

    def __init__(self, esa_channels: int = 16, channels: int = 46):
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = same_conv(f, f, 3)
        self.conv4 = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # named locals as in the released code: cf, c4 and m stay alive until the gate
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v_max = clipped_max_pool(c1)
        c3 = self.conv3(v_max)
        c3 = F.interpolate(c3, size=x.shape[2:], mode="bilinear", align_corners=False)
        cf = self.conv_f(c1_)
        c4 = self.conv4(c3 + cf)
        m = torch.sigmoid(c4)
        return x * m


class RLFB(nn.Module):
    def __init__(self, channels: int = 46, mid_channels: int = 48, esa_channels: int = 16):
        super().__init__()
        self.c1_r = same_conv(channels, mid_channels, 3)
        self.c2_r = same_conv(mid_channels, mid_channels, 3)
        self.c3_r = same_conv(mid_channels, channels, 3)
        self.c5 = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(esa_channels, channels)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        out = out + x  # alive through c5 and ESA, as released
        return self.esa(self.c5(out))


class RLFN(nn.Module):
    """x4 RLFN (ByteESR's NTIRE 2022 entry); input and output in the 0-1 pixel range."""

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 46,
        mid_nf: int = 48,
        out_nc: int = 3,
        upscale: int = 4,
    ):
        super().__init__()
        self.fea_conv = same_conv(in_nc, nf, 3)
        self.B1 = RLFB(nf, mid_nf)
        self.B2 = RLFB(nf, mid_nf)
        self.B3 = RLFB(nf, mid_nf)
        self.B4 = RLFB(nf, mid_nf)
        self.LR_conv = same_conv(nf, nf, 3)
        self.upsampler = pixel_shuffle_upsampler(nf, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        out = self.B4(self.B3(self.B2(self.B1(fea))))
        return self.upsampler(self.LR_conv(out) + fea)
