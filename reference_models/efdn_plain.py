"""The plain deploy form of NEESR's EFDN (NTIRE 2022 Efficient SR, 3rd in the main track and
1st in sub-track 2): an RFDN layout at 42 channels whose 3x3 refinement convolutions were
trained as edge-oriented re-parameterisable blocks and deployed as single 3x3 convolutions
(``conv3x3``), without RFDN's local residuals and without the final 1x1 fusion over the four
blocks. Its ESA pools the full-resolution map directly (7x7, stride 7) and fuses two parallel
3x3 branches. A x4 pixel-shuffle tail. Input and output in 0-1.

Parameter names follow the released checkpoint (``fea_conv``, ``B1``..``B4``, ``LR_conv``,
``upsampler``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import clipped_max_pool, pixel_shuffle_upsampler, same_conv


class ESA(nn.Module):
    """Spatial attention: pool the 1x1-reduced map, two 3x3 branches, fuse, upsample, gate."""

    def __init__(self, channels: int = 42):
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_2 = same_conv(f, f, 3)
        self.conv_3 = same_conv(f, f, 3)
        self.conv_23 = same_conv(f * 2, f, 3)
        self.conv4 = nn.Conv2d(f, channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # named locals as in the released code: c2, cf, c4 and m stay alive until the gate
        c1_ = self.conv1(x)
        v_max = clipped_max_pool(c1_, kernel=7, stride=7, padding=1)
        c2 = self.relu(self.conv_2(v_max))  # a named local as released: alive until the gate
        c23 = torch.cat([c2, self.relu(self.conv_3(v_max))], dim=1)
        c3 = F.interpolate(self.conv_23(c23), size=x.shape[2:], mode="bilinear",
                           align_corners=False)
        cf = self.conv_f(c1_)
        c4 = self.conv4(c3 + cf)
        m = torch.sigmoid(c4)
        return x * m


class Conv3x3(nn.Module):
    """A deployed edge-oriented block: one 3x3 convolution, no activation of its own."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv3x3 = same_conv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3x3(x)


class PlainRFDB(nn.Module):
    def __init__(self, channels: int = 42, distilled: int = 10):
        super().__init__()
        self.c1_d = nn.Conv2d(channels, distilled, 1)
        self.c1_r = Conv3x3(channels, channels)
        self.c2_d = nn.Conv2d(channels, distilled, 1)
        self.c2_r = Conv3x3(channels, channels)
        self.c3_d = nn.Conv2d(channels, distilled, 1)
        self.c3_r = Conv3x3(channels, channels)
        self.c4 = Conv3x3(channels, distilled)
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.c5 = nn.Conv2d(distilled * 4, channels, 1)
        self.esa = ESA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.act(self.c1_d(x))
        r1 = self.act(self.c1_r(x))
        d2 = self.act(self.c2_d(r1))
        r2 = self.act(self.c2_r(r1))
        d3 = self.act(self.c3_d(r2))
        r3 = self.act(self.c3_r(r2))
        r4 = self.act(self.c4(r3))
        out = torch.cat([d1, d2, d3, r4], dim=1)  # kept alive through ESA, as released
        return self.esa(self.c5(out))


class PlainEFDN(nn.Module):
    """x4 plain EFDN (NEESR, deploy form); input and output in the 0-1 pixel range."""

    def __init__(self, in_nc: int = 3, nf: int = 42, out_nc: int = 3, upscale: int = 4):
        super().__init__()
        self.fea_conv = same_conv(in_nc, nf, 3)
        self.B1 = PlainRFDB(nf)
        self.B2 = PlainRFDB(nf)
        self.B3 = PlainRFDB(nf)
        self.B4 = PlainRFDB(nf)
        self.LR_conv = same_conv(nf, nf, 3)
        self.upsampler = pixel_shuffle_upsampler(nf, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # every block output is a named local, alive to the end, as released
        fea = self.fea_conv(x)
        b1 = self.B1(fea)
        b2 = self.B2(b1)
        b3 = self.B3(b2)
        b4 = self.B4(b3)
        return self.upsampler(self.LR_conv(b4) + fea)
