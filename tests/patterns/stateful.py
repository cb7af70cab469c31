"""Small models with the habits of real SR forwards that a profiler must survive.

Each keeps or builds state in its forward the way popular architectures do; esrprof must leave
every one of them exactly as it found it.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class RebindsMean(nn.Module):
    """``self.mean = self.mean.type_as(x)``: every SwinIR-family model does this."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.tail = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mean = self.mean.type_as(x)
        return self.tail(F.relu(self.conv(x - self.mean))) + self.mean


class Counters(nn.Module):
    """A Python call counter, a buffer updated in place, a list and a dict kept as caches."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.register_buffer("seen", torch.zeros(1))
        self.history: list[tuple[int, ...]] = []
        self.cache: dict[str, torch.Tensor] = {}
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.add_(1)
        self.history.append(tuple(x.shape))
        self.cache["last"] = x.mean(dim=1, keepdim=True)
        return self.conv(x) * (1 + 0 * self.seen) + self.cache["last"]


class MaskFromSize(nn.Module):
    """Builds an attention-style mask from the input's H and W: ``torch.zeros``, slice
    assignment, ``masked_fill``, as shifted-window models do in every forward."""

    def __init__(self, shift: int = 2) -> None:
        super().__init__()
        self.shift = shift
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def mask(self, h: int, w: int) -> torch.Tensor:
        img = torch.zeros((1, 1, h, w))
        cnt = 0
        for hs in (slice(0, -self.shift), slice(-self.shift, None)):
            for ws in (slice(0, -self.shift), slice(-self.shift, None)):
                img[:, :, hs, ws] = cnt
                cnt += 1
        return img.masked_fill(img != 0, -1.0).masked_fill(img == 0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.mask(*x.shape[-2:]).to(x.device)


class Router(nn.Module):
    """A mixture-of-experts router that picks a branch with ``.item()``: it needs values."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Conv2d(3, 2, 1)
        self.experts = nn.ModuleList([nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 5, padding=2)])
        self.mean = torch.zeros(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mean = self.mean.type_as(x)  # rebinding first: the fallback must start clean
        pick = int(self.gate(x).mean(dim=(0, 2, 3)).argmax().item())
        return self.experts[pick](x - self.mean)


class RaisesAfterAssign(nn.Module):
    """Assigns to itself, then raises: the failure must leave nothing behind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state = self.conv(x)
        self.conv.weight.data = self.conv.weight.data * 2
        raise ValueError("the model gave up")


class Reparam(nn.Module):
    """Re-parameterises in eval: on its first eval forward it fuses two branches into a new
    conv, deletes one, and swaps a weight's ``.data``."""

    def __init__(self) -> None:
        super().__init__()
        self.branch3 = nn.Conv2d(3, 3, 3, padding=1)
        self.branch1 = nn.Conv2d(3, 3, 1)
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not self.fused:
            fused = nn.Conv2d(3, 3, 3, padding=1)
            fused.weight.data = self.branch3.weight.data + F.pad(self.branch1.weight.data,
                                                                 (1, 1, 1, 1))
            fused.bias.data = self.branch3.bias.data + self.branch1.bias.data
            self.reparam = fused
            self.branch3.weight.data = fused.weight.data
            del self.branch1
            self.fused = True
        if self.fused:
            return self.reparam(x)
        return self.branch3(x) + self.branch1(x)


class ScalesInputInPlace(nn.Module):
    """Scales its input to 0-255 in place, as some challenge entries did."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(255.0)
        return self.conv(x) / 255.0


class _Store:
    """A plain Python object a model keeps its cache in."""

    def __init__(self) -> None:
        self.tensors: dict[tuple[int, int], torch.Tensor] = {}
        self.hits = 0


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> torch.Tensor:
    # cached by size alone, without the device: a meta grid cached here would poison the
    # next real forward
    return torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) / (h * w)


class Caches(nn.Module):
    """Caches in the places real code keeps them: a helper object, a class-level dict keyed by
    size, and an ``lru_cache`` function in the model's file."""

    _masks: ClassVar[dict[tuple[int, int], torch.Tensor]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.store = _Store()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (h, w) not in Caches._masks:
            Caches._masks[(h, w)] = torch.ones(1, 1, h, w) * 0.5
        self.store.tensors[(h, w)] = x.sum(dim=1, keepdim=True)
        self.store.hits += 1
        return self.conv(x) * Caches._masks[(h, w)] + _grid(h, w) + self.store.tensors[(h, w)]


class SysExit(nn.Module):
    """Calls ``sys.exit(0)`` in its forward: esrprof's exit code must not follow."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import sys

        sys.exit(0)
