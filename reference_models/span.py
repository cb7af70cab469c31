"""SPAN as the NTIRE Efficient SR challenges use it (Wan et al., "Swift Parameter-free Attention
Network for Efficient Super-Resolution", CVPR Workshops 2024): 1st in the NTIRE 2024 main track
and the NTIRE 2026 baseline. 28 feature channels; a 3x3 head, six SPABs (three 3x3 convolutions
each, SiLU between them, a parameter-free attention ``sigmoid(out) - 0.5`` applied to
``out + x``), a 3x3 on the last block, a 1x1 over four concatenated feature maps, a x4
pixel-shuffle tail.

Every 3x3 is in its deploy form: training used an expanded 1x1-3x3-1x1 branch plus a 1x1
shortcut, folded into one 3x3 (``eval_conv``) for the challenge, whose checkpoint holds only
those. Parameter names follow that checkpoint (``conv_1.eval_conv``, ``block_1.c1_r.eval_conv``,
``conv_cat``, ``upsampler.0``). Input in 0-1: the head subtracts the DIV2K mean and scales by
``img_range``.

Lifetimes follow the released forward too, because the challenge measures them: it binds the
normalised input and each block's three outputs (result, first convolution, attention) to
locals of their own, so all of them stay allocated until the forward returns. That is what
puts SPAN's published peak at 705.24 MiB (NTIRE 2026 results.txt) where a forward that frees
them as it goes would peak at about 311 MiB on the same image.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import pixel_shuffle_upsampler, same_conv

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class Conv3XC(nn.Module):
    """A re-parameterised 3x3 convolution in deploy form (only ``eval_conv`` remains)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.eval_conv = same_conv(in_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Swift parameter-free attention block. Returns the block output, the first
    convolution's output (SPAN concatenates the last block's) and the attention map."""

    def __init__(self, channels: int):
        super().__init__()
        self.c1_r = Conv3XC(channels, channels)
        self.c2_r = Conv3XC(channels, channels)
        self.c3_r = Conv3XC(channels, channels)
        self.act1 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        first = self.c1_r(x)
        out = self.c3_r(self.act1(self.c2_r(self.act1(first))))
        attention = torch.sigmoid(out) - 0.5
        return (out + x) * attention, first, attention


class SPAN(nn.Module):
    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 28,
                 upscale: int = 4, img_range: float = 255.0,
                 rgb_mean: tuple[float, float, float] = DIV2K_MEAN):
        super().__init__()
        c = feature_channels
        self.img_range = img_range
        # a plain attribute, as released: not in the checkpoint
        self.mean = torch.tensor(rgb_mean).view(1, 3, 1, 1)
        self.conv_1 = Conv3XC(num_in_ch, c)
        for i in range(1, 7):
            self.add_module(f"block_{i}", SPAB(c))
        self.conv_cat = nn.Conv2d(4 * c, c, 1)
        self.conv_2 = Conv3XC(c, c)
        self.upsampler = pixel_shuffle_upsampler(c, num_out_ch, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(dtype=x.dtype, device=x.device)
        normalised = (x - mean) * self.img_range
        head = self.conv_1(normalised)
        # every block's outputs stay referenced until the return, as in the release (above)
        held = []
        out = head
        for i in range(1, 7):
            held.append(getattr(self, f"block_{i}")(out))
            out = held[-1][0]
        tail = self.conv_2(out)
        after_first, last_first = held[0][0], held[-1][1]
        return self.upsampler(self.conv_cat(torch.cat([head, tail, after_first, last_first], 1)))
