"""IMDN, the NTIRE 2022 Efficient SR baseline (Hui et al., "Lightweight Image Super-Resolution
with Information Multi-distillation Network", ACM MM 2019), in the speed-oriented form the
challenge shipped: eight information multi-distillation blocks without contrast-aware channel
attention, 64 channels, a x4 pixel-shuffle tail. Parameter names follow the released checkpoint
(``model.0`` head, ``model.1.sub`` body with a global skip, ``model.2`` tail convolution)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import ShortcutBlock, same_conv


class IMDBlock(nn.Module):
    """Split off a quarter of the channels after each of three convolutions, fuse with a 1x1."""

    def __init__(self, channels: int = 64, distill_rate: float = 0.25, neg_slope: float = 0.05):
        super().__init__()
        self.distilled = int(channels * distill_rate)
        self.remaining = channels - self.distilled
        self.conv1 = nn.Sequential(same_conv(channels, channels, 3), nn.LeakyReLU(neg_slope))
        self.conv2 = nn.Sequential(same_conv(self.remaining, channels, 3), nn.LeakyReLU(neg_slope))
        self.conv3 = nn.Sequential(same_conv(self.remaining, channels, 3), nn.LeakyReLU(neg_slope))
        self.conv4 = same_conv(self.remaining, self.distilled, 3)
        self.conv1x1 = same_conv(self.distilled * 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.conv1(x), split, dim=1)
        d2, r2 = torch.split(self.conv2(r1), split, dim=1)
        d3, r3 = torch.split(self.conv3(r2), split, dim=1)
        d4 = self.conv4(r3)
        return self.conv1x1(torch.cat([d1, d2, d3, d4], dim=1)) + x


class IMDN(nn.Module):
    """x4 IMDN baseline; input and output in the 0-1 pixel range."""

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 64,
        num_modules: int = 8,
        out_nc: int = 3,
        upscale: int = 4,
    ):
        super().__init__()
        body = [IMDBlock(nf) for _ in range(num_modules)]
        body.append(same_conv(nf, nf, 3))
        self.model = nn.Sequential(
            same_conv(in_nc, nf, 3),
            ShortcutBlock(nn.Sequential(*body)),
            same_conv(nf, out_nc * upscale**2, 3),
            nn.PixelShuffle(upscale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
