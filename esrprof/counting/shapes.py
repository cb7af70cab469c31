"""Running an aten op on meta tensors, fast and without torch's compiler stack.

Most aten ops have C++ meta kernels. Element-wise ops without one fall back to torch's Python
references, whose type-promotion wrapper imports ``torch._dynamo`` on first use: 1–2 s and
~70 MiB before the first count (LeakyReLU is enough to trigger it). For element-wise ops the
output's metadata is simple — the broadcast shape of the inputs, the dtype the op gives — so
:func:`meta_call` derives it here: the dtype from the same op on one-element CPU tensors (exact,
microseconds), the shape from broadcasting, the layout from the input that already has that shape.
Anything else, or any doubt, goes to the op's own meta kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from esrprof.counting.formulas import broadcast


@cache
def schema_facts(func: Any) -> tuple[bool, tuple[int, ...], bool]:
    """(takes a ``device`` argument, positions of the arguments it writes, is element-wise)."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return False, (), False
    has_device = any(a.name == "device" for a in schema.arguments)
    written = tuple(
        i for i, a in enumerate(schema.arguments)
        if a.alias_info is not None and a.alias_info.is_write
    )
    tags = getattr(func, "tags", ())
    pointwise = torch.Tag.pointwise in tags and torch.Tag.nondeterministic_seeded not in tags
    return has_device, written, pointwise


def meta_call(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)`` where every tensor argument is a meta tensor (the engine's
    tracer swaps real ones for stand-ins before it calls this)."""
    _, written, pointwise = schema_facts(func)
    out = None
    if "out" not in kwargs:
        if pointwise:
            out = _pointwise(func, args, kwargs, written)
        else:
            rule = _RULES.get(func)
            if rule is not None:
                try:
                    out = rule(*args, **kwargs)
                except (TypeError, ValueError, IndexError):  # an odd call: the kernel decides
                    out = None
    return out if out is not None else func(*args, **kwargs)


def _like(t: torch.Tensor, shape: Sequence[int], dtype: torch.dtype | None = None) -> torch.Tensor:
    """A meta tensor of ``shape`` in ``t``'s memory format (channels-last stays channels-last)."""
    fmt = (torch.channels_last if t.dim() == 4 and len(shape) == 4 and not t.is_contiguous()
           and t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
    return torch.empty(tuple(shape), dtype=dtype or t.dtype, device="meta", memory_format=fmt)


# Output rules for the non-element-wise ops whose meta kernels are Python references (found by
# tracing the reference models and common layers): each returns the op's output, or None to
# leave the call to the kernel, which also raises the right error for a bad call.


def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor | None:
    parts = [t for t in tensors if not (t.dim() == 1 and t.numel() == 0)]  # legacy empties
    if not parts or any(t.dim() != parts[0].dim() for t in parts):
        return None
    ndim = parts[0].dim()
    d = dim % ndim
    rest = [s for i, s in enumerate(parts[0].shape) if i != d]
    if any([s for i, s in enumerate(t.shape) if i != d] != rest for t in parts):
        return None
    shape = list(parts[0].shape)
    shape[d] = sum(t.shape[d] for t in parts)
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in parts))
    channels_last = all(t.dim() == 4 and not t.is_contiguous()
                        and t.is_contiguous(memory_format=torch.channels_last) for t in parts)
    return _like(parts[0], shape, dtype) if channels_last else torch.empty(
        shape, dtype=dtype, device="meta")


def _addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *_: Any,
           **__: Any) -> torch.Tensor | None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    try:
        broadcast(bias.shape, (a.shape[0], b.shape[1]))
    except ValueError:
        return None
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")


def _layer_norm(x: torch.Tensor, normalized: Sequence[int], *_: Any,
                **__: Any) -> tuple[torch.Tensor, ...] | None:
    n = len(normalized)
    if n == 0 or n > x.dim() or tuple(x.shape[x.dim() - n:]) != tuple(normalized):
        return None
    stats = (*x.shape[: x.dim() - n], *([1] * n))
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return (torch.empty(x.shape, dtype=x.dtype, device="meta"),
            torch.empty(stats, dtype=acc, device="meta"),
            torch.empty(stats, dtype=acc, device="meta"))


def _same(x: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
    return _like(x, x.shape)


def _upsample(x: torch.Tensor, output_size: Sequence[int] | None = None, *_: Any,
              **__: Any) -> torch.Tensor | None:
    if output_size is None or len(output_size) != x.dim() - 2:
        return None
    return _like(x, (*x.shape[:2], *output_size))


def _convolution(x: torch.Tensor, w: torch.Tensor, bias: Any, stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int], transposed: bool,
                 output_padding: Sequence[int], groups: int) -> torch.Tensor | None:
    nd = w.dim() - 2
    if x.dim() != w.dim() or nd < 1 or groups < 1:
        return None
    stride, padding, dilation, output_padding = (
        _expand(v, nd) for v in (stride, padding, dilation, output_padding))
    if None in (stride, padding, dilation, output_padding):
        return None
    k = w.shape[2:]
    if transposed:
        if x.shape[1] != w.shape[0]:
            return None
        channels = w.shape[1] * groups
        spatial = [(i - 1) * s - 2 * p + d * (kk - 1) + op + 1 for i, s, p, d, kk, op
                   in zip(x.shape[2:], stride, padding, dilation, k, output_padding)]
    else:
        if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
            return None
        channels = w.shape[0]
        spatial = [(i + 2 * p - d * (kk - 1) - 1) // s + 1
                   for i, s, p, d, kk in zip(x.shape[2:], stride, padding, dilation, k)]
    if any(v <= 0 for v in spatial) or x.dtype != w.dtype:
        return None
    return _like(x, (x.shape[0], channels, *spatial))


def _expand(value: Any, n: int) -> list[int] | None:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) == 1:
        values = values * n
    if len(values) != n or not all(isinstance(v, int) for v in values):
        return None
    return values


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    if (a.dim() != 3 or b.dim() != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]
            or a.dtype != b.dtype):
        return None
    return torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device="meta")


def _softmax(x: torch.Tensor, dim: int, half_to_float: bool) -> torch.Tensor:
    return _like(x, x.shape, torch.float32 if half_to_float else x.dtype)


def _unsafe_view(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor | None:
    try:
        return x.view(size)  # shares the storage, as the real op does
    except RuntimeError:
        return None


def _pixel_shuffle(x: torch.Tensor, r: int) -> torch.Tensor | None:
    if x.dim() < 3 or r < 1 or x.shape[-3] % (r * r):
        return None
    c, h, w = x.shape[-3:]
    return torch.empty((*x.shape[:-3], c // (r * r), h * r, w * r), dtype=x.dtype, device="meta")


def _pad2d(x: torch.Tensor, padding: Sequence[int]) -> torch.Tensor | None:
    if len(padding) != 4 or x.dim() not in (3, 4):
        return None
    left, right, top, bottom = padding
    h, w = x.shape[-2] + top + bottom, x.shape[-1] + left + right
    if h <= 0 or w <= 0:
        return None
    return torch.empty((*x.shape[:-2], h, w), dtype=x.dtype, device="meta")


def _pool_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:  # the last window must start inside the input
        out -= 1
    return out


def _max_pool2d(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int] = (),
                padding: Sequence[int] = (0,), dilation: Sequence[int] = (1,),
                ceil_mode: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
    k = _expand(kernel, 2)
    st = _expand(stride, 2) if len(stride) else k
    p, d = _expand(padding, 2), _expand(dilation, 2)
    if None in (k, st, p, d) or x.dim() not in (3, 4):
        return None
    hw = [_pool_size(n, *a, ceil_mode) for n, *a in zip(x.shape[-2:], k, st, p, d)]
    if any(v <= 0 for v in hw):
        return None
    shape = (*x.shape[:-2], *hw)
    return _like(x, shape), _like(x, shape, torch.int64)


def _index(x: torch.Tensor, indices: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    used = [i for i, t in enumerate(indices) if t is not None]
    if not used or len(indices) > x.dim():
        return None
    tensors = [indices[i] for i in used]
    if any(t.dtype not in (torch.int64, torch.int32) for t in tensors):  # masks: data-dependent
        return None
    try:
        middle = broadcast(*(t.shape for t in tensors))
    except ValueError:
        return None
    rest = list(x.shape[len(indices):])
    before = [x.shape[i] for i in range(len(indices)) if indices[i] is None and i < used[0]]
    after = [x.shape[i] for i in range(len(indices)) if indices[i] is None and i > used[0]]
    if used != list(range(used[0], used[-1] + 1)):  # split advanced indices go first
        shape = [*middle, *before, *after, *rest]
    else:
        shape = [*before, *middle, *after, *rest]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _scalar_tensor(value: Any, *, dtype: torch.dtype | None = None, **_: Any) -> torch.Tensor:
    return torch.empty((), dtype=dtype or torch.get_default_dtype(), device="meta")


def _filled(size: Sequence[int], *, dtype: torch.dtype | None = None,
            **_: Any) -> torch.Tensor:
    return torch.empty(tuple(size), dtype=dtype or torch.get_default_dtype(), device="meta")


_aten = torch.ops.aten
_RULES: dict[Any, Callable[..., Any]] = {
    _aten.convolution.default: _convolution,
    _aten.cat.default: _cat,
    _aten.mm.default: _mm,
    _aten.bmm.default: _bmm,
    _aten._softmax.default: _softmax,
    _aten._unsafe_view.default: _unsafe_view,
    _aten.pixel_shuffle.default: _pixel_shuffle,
    _aten.reflection_pad2d.default: _pad2d,
    _aten.replication_pad2d.default: _pad2d,
    _aten.max_pool2d_with_indices.default: _max_pool2d,
    _aten.index.Tensor: _index,
    _aten.scalar_tensor.default: _scalar_tensor,
    _aten.zeros.default: _filled,
    _aten.ones.default: _filled,
    _aten.addmm.default: _addmm,
    _aten.native_layer_norm.default: _layer_norm,
    _aten.roll.default: _same,
    _aten._prelu_kernel.default: _same,
    _aten.upsample_bilinear2d.default: _upsample,
    _aten.upsample_bicubic2d.default: _upsample,
    _aten.upsample_nearest2d.default: _upsample,
}


def _pointwise(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               written: tuple[int, ...]) -> Any:
    flat, spec = tree_flatten((args, kwargs))
    tensors = [t for t in flat if isinstance(t, torch.Tensor)]
    if not tensors or any(t.device.type != "meta" or t.is_complex() for t in tensors):
        return None
    try:
        shape = broadcast(*(t.shape for t in tensors))
        # ones, not zeros: integer division by zero would raise where the real op would not
        mini = [torch.ones((1,) * v.dim(), dtype=v.dtype) if isinstance(v, torch.Tensor) else v
                for v in flat]
        mini_args, mini_kwargs = tree_unflatten(mini, spec)
        mini_out = func(*mini_args, **mini_kwargs)
    except Exception:  # let the op's own kernel raise (or succeed) with its own message
        return None
    if written:
        target = args[written[0]] if written[0] < len(args) else None
        if not isinstance(target, torch.Tensor) or tuple(target.shape) != tuple(shape):
            return None
        if isinstance(mini_out, torch.Tensor) and mini_out.dtype != target.dtype:
            return None
        return target
    outs = mini_out if isinstance(mini_out, (tuple, list)) else (mini_out,)
    if not all(isinstance(o, torch.Tensor) and o.dim() == len(shape) for o in outs):
        return None
    like = next((t for t in tensors if tuple(t.shape) == tuple(shape)), None)
    made = [
        _like(like, shape, o.dtype) if like is not None
        else torch.empty(shape, dtype=o.dtype, device="meta")
        for o in outs
    ]
    return type(mini_out)(made) if isinstance(mini_out, (tuple, list)) else made[0]
