"""IMDN+ of team rainbow (NTIRE 2022 Efficient SR, 6th in the main track; Zhang et al.): IMDN
slimmed to 36 channels with eight progressive-distillation blocks. Each block splits one sixth
of the channels off after every 3x3 convolution (36 -> 30 -> 24 -> 18 -> 12 -> 6), activates
with SiLU and fuses the six distilled parts with a 1x1. A x4 pixel-shuffle tail. Input and
output in 0-1.

Parameter names follow the released checkpoint (``FEM`` feature extraction with a global skip,
``RM`` reconstruction). SiLU is not an activation the challenge's count knew, so its elements
are not in the published FLOPs.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ShortcutBlock, pixel_shuffle_upsampler, same_conv


class IMDBPlus(nn.Module):
    def __init__(self, channels: int = 36, parts: int = 6):
        super().__init__()
        d = channels // parts
        self.d = d
        self.c1 = same_conv(channels, channels, 3)
        self.c2 = same_conv(d * 5, d * 5, 3)
        self.c3 = same_conv(d * 4, d * 4, 3)
        self.c4 = same_conv(d * 3, d * 3, 3)
        self.c5 = same_conv(d * 2, d * 2, 3)
        self.c6 = same_conv(d, d, 3)
        self.act = nn.SiLU()
        self.c7 = same_conv(d * 6, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        out = x
        for conv in (self.c1, self.c2, self.c3, self.c4, self.c5):
            out = self.act(conv(out))
            part, out = torch.split(out, (self.d, out.shape[1] - self.d), dim=1)
            distilled.append(part)
        distilled.append(self.act(self.c6(out)))
        out = torch.cat(distilled, dim=1)  # alive through the residual add, as released
        return self.c7(out) + x


class IMDNPlus(nn.Module):
    """x4 IMDN+ (rainbow); input and output in the 0-1 pixel range."""

    def __init__(
        self, in_nc: int = 3, nf: int = 36, nb: int = 8, out_nc: int = 3, upscale: int = 4
    ):
        super().__init__()
        body = [IMDBPlus(nf) for _ in range(nb)]
        body.append(same_conv(nf, nf, 3))
        self.FEM = nn.Sequential(same_conv(in_nc, nf, 3), ShortcutBlock(nn.Sequential(*body)))
        self.RM = pixel_shuffle_upsampler(nf, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RM(self.FEM(x))
