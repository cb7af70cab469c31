"""One image through the model: the output tensor, tiled inference, the upscaling factor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from esrprof.errors import USER_CODE_ERRORS, ModelError, user_code_failed
from esrprof.probe import probe_input


def first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ModelError(f"the model returned {type(out).__name__}, not an image tensor")


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def tiled_forward(
    model: Callable[[torch.Tensor], Any], x: torch.Tensor, tile: int, overlap: int, scale: int
) -> torch.Tensor:
    """Run ``model`` on overlapping ``tile``x``tile`` LR tiles and average the overlaps of the
    upscaled tiles (SwinIR's test-time tiling)."""
    _, _, h, w = x.shape
    stride = tile - overlap
    out = weight = None
    for top in _starts(h, tile, stride):
        for left in _starts(w, tile, stride):
            patch = x[..., top : top + tile, left : left + tile]
            y = first_tensor(model(patch))
            if out is None:
                out = y.new_zeros((y.shape[0], y.shape[1], h * scale, w * scale))
                weight = y.new_zeros((1, 1, h * scale, w * scale))
            rows = slice(top * scale, top * scale + y.shape[-2])
            cols = slice(left * scale, left * scale + y.shape[-1])
            out[..., rows, cols] += y
            weight[..., rows, cols] += 1
    return out / weight


def probe_scale(model: nn.Module, device: torch.device, dtype: torch.dtype) -> int | None:
    """The model's upscaling factor from a small forward (None when it cannot be told)."""
    for size in (16, 32, 64):
        x = probe_input((1, 3, size, size), device, dtype)
        try:
            with torch.inference_mode():
                y = first_tensor(model(x))
        except ModelError:
            raise
        except SystemExit as exc:  # user code never decides esrprof's exit code
            raise user_code_failed(f"the probe forward on a {tuple(x.shape)} input", exc) from None
        except USER_CODE_ERRORS:
            continue  # too small for the model, perhaps: try a larger input
        h, w = y.shape[-2:]
        if h % size == 0 and w % size == 0 and h // size == w // size and h >= size:
            return h // size
        return None
    return None
