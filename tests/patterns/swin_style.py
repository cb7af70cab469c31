"""A Swin-style SR model, written for esrprof's tests and benchmarks (not a third-party copy).

It has what makes SwinIR-family models hard on a profiler: window attention with a relative
position bias gathered by an index buffer, shifted windows whose attention mask is built in the
forward from the input's H and W (``torch.zeros`` + slice assignment + ``masked_fill``), a
reflect pad to a window multiple, and ``self.mean = self.mean.type_as(x)`` rebinding a tensor
attribute in every forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__()
        self.ws, self.heads, self.scale = ws, heads, (dim // heads) ** -0.5
        self.bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
        flat = coords.flatten(1)
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += ws - 1
        rel[:, :, 1] += ws - 1
        rel[:, :, 0] *= 2 * ws - 1
        self.register_buffer("index", rel.sum(-1), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.normal_(self.bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.bias_table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int, shift: int):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def calculate_mask(self, h: int, w: int) -> torch.Tensor:
        img_mask = torch.zeros((1, h, w, 1))
        cnt = 0
        spans = (slice(0, -self.ws), slice(-self.ws, -self.shift), slice(-self.shift, None))
        for hs in spans:
            for wsl in spans:
                img_mask[:, hs, wsl, :] = cnt
                cnt += 1
        windows = window_partition(img_mask, self.ws).view(-1, self.ws * self.ws)
        mask = windows.unsqueeze(1) - windows.unsqueeze(2)
        return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        mask = None
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = self.calculate_mask(h, w).to(x.device)
        windows = window_partition(x, self.ws).view(-1, self.ws * self.ws, c)
        x = window_reverse(self.attn(windows, mask).view(-1, self.ws, self.ws, c), self.ws, h, w)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class SwinStyleSR(nn.Module):
    """×``scale`` SR: conv, ``stages`` × ``depth`` Swin blocks (every other one shifted), conv,
    pixel-shuffle upsampler, with SwinIR's mean shift and padding to a window multiple."""

    def __init__(self, dim: int = 48, stages: int = 4, depth: int = 6, ws: int = 8,
                 heads: int = 4, scale: int = 4):
        super().__init__()
        self.ws, self.scale = ws, scale
        self.mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
        self.head = nn.Conv2d(3, dim, 3, 1, 1)
        self.stages = nn.ModuleList(
            nn.ModuleList(SwinBlock(dim, ws, heads, 0 if i % 2 == 0 else ws // 2)
                          for i in range(depth))
            for _ in range(stages)
        )
        self.stage_convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, 1, 1) for _ in range(stages))
        self.norm = nn.LayerNorm(dim)
        self.body = nn.Conv2d(dim, dim, 3, 1, 1)
        self.up = nn.Sequential(nn.Conv2d(dim, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0, w0 = x.shape[-2:]
        x = F.pad(x, (0, (-w0) % self.ws, 0, (-h0) % self.ws), mode="reflect")
        self.mean = self.mean.type_as(x)
        x = x - self.mean
        feat = self.head(x)
        b, c, h, w = feat.shape
        out = feat
        for blocks, conv in zip(self.stages, self.stage_convs):
            tokens = out.flatten(2).transpose(1, 2)
            for block in blocks:
                tokens = block(tokens, (h, w))
            out = out + conv(tokens.transpose(1, 2).view(b, c, h, w))
        tokens = self.norm(out.flatten(2).transpose(1, 2))
        out = self.body(tokens.transpose(1, 2).view(b, c, h, w)) + feat
        y = self.up(out) + self.mean
        return y[:, :, : h0 * self.scale, : w0 * self.scale]
