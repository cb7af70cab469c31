"""EFDN of NKU-ESR (Wang, "Edge-enhanced Feature Distillation Network for Efficient
Super-Resolution", CVPR Workshops 2022), in the deploy form the NTIRE 2022 challenge measured and
NTIRE 2025 took as its baseline: 48 channels, four cells, three 1x1 local fusions, a x4
pixel-shuffle tail. Output clamped to 0-1.

Each cell is a 1x1 conv + PReLU, then two 3x3 conv + PReLU whose 3x3s are the deployed
edge-oriented diverse branch blocks (EDBB: 1x1, 3x3, 1x3, 3x1, Sobel and Laplacian branches
folded into one ``rep_conv`` after training), a feature-distillation fusion (four 1x1 branches
of half width, one 1x1 fuse) and RFDN's ESA attention, with a residual connection.

Self-contained (ESA repeated from rfdn.py) so this file can be copied alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import clipped_max_pool, pixel_shuffle_upsampler


class ESA(nn.Module):
    """RFDN's enhanced spatial attention (same layers and names)."""

    def __init__(self, channels: int = 48):
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
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


class Conv1x1PReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1x1 = nn.Conv2d(channels, channels, 1)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv1x1(x))


class EDBB(nn.Module):
    """Deployed edge-oriented diverse branch block: one 3x3 convolution and a PReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.rep_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.rep_conv(x))


class Cell(nn.Module):
    def __init__(self, channels: int = 48):
        super().__init__()
        self.conv1 = Conv1x1PReLU(channels)
        self.conv2 = EDBB(channels, channels)
        self.conv3 = EDBB(channels, channels)
        self.fuse = nn.Conv2d(channels * 2, channels, 1)
        self.att = ESA(channels)
        self.branch = nn.ModuleList([nn.Conv2d(channels, channels // 2, 1) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(x)
        out2 = self.conv2(out1)
        out3 = self.conv3(out2)
        # the branch outputs die with the concatenation; out1..out3 live on, as released
        out = self.fuse(torch.cat(
            [branch(t) for branch, t in zip(self.branch, (x, out1, out2, out3))], dim=1))
        out = self.att(out)
        out += x  # in place, as released
        return out


class EFDN(nn.Module):
    """x4 EFDN (deploy form); input and output in the 0-1 pixel range."""

    def __init__(
        self, scale: int = 4, in_channels: int = 3, n_feats: int = 48, out_channels: int = 3
    ):
        super().__init__()
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.cells = nn.ModuleList([Cell(n_feats) for _ in range(4)])
        self.local_fuse = nn.ModuleList([nn.Conv2d(n_feats * 2, n_feats, 1) for _ in range(3)])
        self.tail = pixel_shuffle_upsampler(n_feats, out_channels, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # every intermediate is a named local, alive to the end, as released
        out0 = self.head(x)
        out1 = self.cells[0](out0)
        out2 = self.cells[1](out1)
        out2_fuse = self.local_fuse[0](torch.cat([out1, out2], dim=1))
        out3 = self.cells[2](out2_fuse)
        out3_fuse = self.local_fuse[1](torch.cat([out2, out3], dim=1))
        out4 = self.cells[3](out3_fuse)
        # The released network fuses out2 (not out3) with the last cell; kept as released.
        out4_fuse = self.local_fuse[2](torch.cat([out2, out4], dim=1))
        out = out4_fuse + out0
        return self.tail(out).clamp(0, 1)
