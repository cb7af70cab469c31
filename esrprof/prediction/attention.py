"""``F.scaled_dot_product_attention`` as a GPU runs it: flash, memory-efficient or math.

On a CPU or on meta tensors PyTorch runs SDPA as its math path (``q @ k^T``, softmax, ``@ v``),
which stores an L×L score matrix per head. On a CUDA GPU it picks a fused kernel when it can,
and a fused kernel never stores that matrix. :func:`sdpa_backend` predicts the choice the way
PyTorch's ``sdp_utils.cpp`` makes it (priority flash, then memory-efficient, then math):

- **flash** (FlashAttention-2): compute capability 8.0 or newer (Ampere, Ada, Hopper), fp16 or
  bf16, head size at most 256 and a multiple of 8, no explicit ``attn_mask`` (``is_causal`` is
  fine), q/k/v of the same head size.
- **memory-efficient** (xFormers' kernel): compute capability 5.0 or newer (Pascal on), fp32,
  fp16, or bf16 on 8.0+, head size a multiple of 4 (fp32) or 8 (fp16/bf16), any mask.
- **math** otherwise; on a CPU (a ``cpu`` spec from ``esrprof calibrate``) the fused CPU flash
  kernel, costed as flash.
- **math** otherwise (and on a GPU of unknown generation with a dtype no fused kernel takes).

While a prediction traces the forward, :class:`FusedAttention` (a ``TorchFunctionMode``) routes
SDPA calls on meta tensors to the fused aten op the GPU would run
(``_scaled_dot_product_flash_attention`` / ``_scaled_dot_product_efficient_attention``): their
meta kernels give the output and the per-row log-sum-exp, never an L×L tensor, and the formula
registry costs them as one attention kernel (2 × L × S × E MACs per head, q, k, v and the output
read and written once). Manual ``q @ k.transpose(-2, -1)`` attention is left as it is: a GPU runs
it as written.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# Compute capability of each generation (the lowest part of it: A100 is 8.0, GA102 8.6).
CAPABILITY = {"pascal": (6, 1), "turing": (7, 5), "ampere": (8, 0), "ada": (8, 9),
              "hopper": (9, 0)}
BACKENDS = ("flash", "efficient", "math")


def sdpa_backend(generation: str, dtype: torch.dtype, head_dim: int, *, has_mask: bool,
                 head_dim_v: int | None = None) -> str:
    """The SDPA kernel PyTorch picks on a GPU of ``generation`` (see the module docstring)."""
    if generation == "cpu":  # PyTorch 2.x: the fused flash kernel for CPUs, any mask
        return "flash" if dtype in (torch.float32, torch.float16, torch.bfloat16) else "math"
    cap = CAPABILITY.get(generation)
    if cap is None:
        return "math"
    same = head_dim_v is None or head_dim_v == head_dim
    half = dtype in (torch.float16, torch.bfloat16)
    if (cap >= (8, 0) and half and not has_mask and same and head_dim <= 256
            and head_dim % 8 == 0):
        return "flash"
    if dtype == torch.bfloat16 and cap < (8, 0):
        return "math"
    if dtype in (torch.float32, torch.float16, torch.bfloat16) and cap >= (5, 0):
        align = 8 if half else 4
        if head_dim % align == 0 and (head_dim_v is None or head_dim_v % align == 0):
            return "efficient"
    return "math"


class FusedAttention(TorchFunctionMode):
    """Routes SDPA on meta tensors to the fused kernel ``generation`` would run, and records
    each choice in :attr:`choices` (``(backend, dtype, head size, has mask)``)."""

    def __init__(self, generation: str) -> None:
        super().__init__()
        self.generation = generation
        self.choices: list[tuple[str, str, int, bool]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
        bound = dict(zip(names, args))
        bound.update(kwargs)
        q, k, v = bound.get("query"), bound.get("key"), bound.get("value")
        mask = bound.get("attn_mask")
        if not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in (q, k, v)):
            return func(*args, **kwargs)  # real or fake tensors: run as PyTorch would here
        assert isinstance(q, torch.Tensor) and isinstance(v, torch.Tensor)
        backend = sdpa_backend(self.generation, q.dtype, q.shape[-1],
                               has_mask=mask is not None, head_dim_v=v.shape[-1])
        self.choices.append((backend, str(q.dtype).removeprefix("torch."), int(q.shape[-1]),
                             mask is not None))
        if backend == "math" or q.dim() != 4 or bound.get("enable_gqa"):
            return func(*args, **kwargs)
        dropout = float(bound.get("dropout_p", 0.0) or 0.0)
        causal = bool(bound.get("is_causal", False))
        scale = bound.get("scale")
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
            mask = torch.empty(mask.shape, dtype=q.dtype, device="meta")  # as PyTorch converts it
        if backend == "flash":
            out = torch.ops.aten._scaled_dot_product_flash_attention(
                q, k, v, dropout, causal, False, scale=scale)
        else:
            out = torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, v, mask, False, dropout, causal, scale=scale)
        return out[0]


__all__ = ["BACKENDS", "CAPABILITY", "FusedAttention", "sdpa_backend"]
