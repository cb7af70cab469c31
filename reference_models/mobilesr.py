"""MobileSR of NJUST_ESR (NTIRE 2022 Efficient SR; 1st in sub-track 1 with BSRN), a convolution +
attention hybrid: 40 channels, five stages of (window transformer, inverted-residual conv block)
with MLP / expansion ratios (4, 2, 2, 2, 4), a 3x3 fusion with the head's features, two 1x1 +
pixel-shuffle x2 steps, a 3x3 tail, and a global bilinear x4 skip. Input and output in 0-1.

The transformer attends within non-overlapping 8x8 windows (8 heads; the feature map is zero-padded
to a multiple of 8 and cropped back), after a depthwise 3x3 positional convolution. Its linear
layers act on (windows, 64 tokens, C) tensors and its attention is an ``einsum``: the challenge's
count misses the attention products and counts each Linear as ``batch * 64 * out_features`` —
which is how the report's 8.73 G arose (PROTOCOL.md: about 15.4 G counting them properly).

Parameter names follow the released checkpoint, including its spelling ``upsapling``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttn(nn.Module):
    def __init__(self, dim: int, num_heads: int = 8, bias: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=bias)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        # (b, n, 3c) -> 3 x (b, heads, n, c / heads)
        q, k, v = (
            self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        attn = torch.einsum("bhnd,bhmd->bhnm", q, k) * self.scale
        attn = attn.softmax(dim=-1)  # the scores die before the second product, as released
        out = torch.einsum("bhnm,bhmd->bhnd", attn, v)
        return self.proj_out(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Linear(dim * ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Transformer(nn.Module):
    """Positional depthwise conv, then windowed self-attention and an MLP (pre-norm, residual)."""

    def __init__(self, dim: int, num_heads: int = 8, window_size: int = 8, mlp_ratio: int = 4):
        super().__init__()
        self.window_size = window_size
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttn(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x + self.pos_embed(x)).permute(0, 2, 3, 1)  # (b, h, w, c)
        b, h, w, c = x.shape
        s = self.window_size
        y = F.pad(self.norm1(x), (0, 0, 0, (s - w % s) % s, 0, (s - h % s) % s))
        hp, wp = y.shape[1], y.shape[2]
        windows = (
            y.view(b, hp // s, s, wp // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        )
        y = self.attn(windows)
        y = y.view(b, hp // s, wp // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        x = x + y[:, :h, :w, :]
        x = x + self.mlp(self.norm2(x))
        return x.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise 3x3, 1x1 reduce, LeakyReLU(0.2) between."""

    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        hidden = dim * ratio
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + x


class BaseBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ratios: tuple[int, ...], window_size: int = 8):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Transformer(dim, num_heads, window_size, r), ResBlock(dim, r)])
            for r in ratios
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transformer, resblock in self.layers:
            x = resblock(transformer(x))
        return x


class MobileSR(nn.Module):
    """x4 MobileSR (NJUST_ESR); input and output in the 0-1 pixel range."""

    def __init__(
        self,
        n_feats: int = 40,
        n_heads: int = 8,
        ratios: tuple[int, ...] = (4, 2, 2, 2, 4),
        upscale: int = 4,
    ):
        super().__init__()
        if upscale != 4:
            raise ValueError("the released MobileSR layout is x4 (two pixel-shuffle x2 steps)")
        self.scale = upscale
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = BaseBlock(n_feats, n_heads, tuple(ratios))
        self.fuse = nn.Conv2d(n_feats * 2, n_feats, 3, padding=1)
        self.upsapling = nn.Sequential(
            nn.Conv2d(n_feats, n_feats * 4, 1),
            nn.PixelShuffle(2),
            nn.Conv2d(n_feats, n_feats * 4, 1),
            nn.PixelShuffle(2),
        )
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.head(x)
        x0 = self.fuse(torch.cat([x0, self.body(x0)], dim=1))
        x0 = self.tail(self.act(self.upsapling(x0)))
        skip = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return x0 + skip
