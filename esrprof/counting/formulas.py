"""One registry of shape-only cost formulas, keyed by aten operator.

A formula takes the op's arguments and output (anything with ``.shape``: real, fake or meta
tensors) and returns multiply-accumulates. Ops without a MAC formula are classified into a kind
(element-wise, normalization, ...) and tallied by output elements. Adding an op is one function.

The module-level ntire2022 rules use the same shape functions (``conv_macs``, ``matmul_macs``) so
the two conventions can only differ where their definitions differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from esrprof.errors import UsageError
from esrprof.kinds import ELEMENT_KINDS, MAC_KINDS, OP_KINDS

aten = torch.ops.aten

Shape = Sequence[int]
Formula = Callable[..., int]


# The op kinds live in esrprof/kinds.py (one vocabulary for counting, prediction and report).
KINDS = OP_KINDS


@dataclass(frozen=True)
class OpClass:
    """How the complete convention treats one aten overload."""

    kind: str
    formula: Formula | None = None  # MACs from (args, kwargs, out); None for element kinds

    def macs(self, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> int:
        return 0 if self.formula is None else int(self.formula(*args, out=out, **kwargs))


# Per-call formulas given to ``count(formulas=...)``: op -> formula, or op -> (kind, formula).
Formulas = Mapping[Any, "Formula | tuple[str, Formula]"]

_FORMULAS: dict[Any, tuple[str, Formula]] = {}
_KINDS: dict[Any, str] = {}


def _packet(op: Any) -> Any:
    return getattr(op, "overloadpacket", op)


def register_formula(*ops: Any, kind: str, override: bool = False) -> Callable[[Formula], Formula]:
    """Declare ``fn(*args, out=..., **kwargs) -> MACs`` for the given aten ops.

    Registering an op that already has a formula is refused unless ``override=True`` (as
    torch's ``register_flop_formula`` does): a silent overwrite would change every count.
    """
    if kind not in MAC_KINDS:
        raise UsageError(f"a formula's kind must be one of {', '.join(MAC_KINDS)}, got {kind!r}")

    def deco(fn: Formula) -> Formula:
        for op in map(_packet, ops):
            if op in _FORMULAS and not override:
                raise UsageError(f"{op_name(op)} already has a MAC formula; "
                                 "pass override=True to replace it")
        for op in map(_packet, ops):
            _FORMULAS[op] = (kind, fn)
        _classify.cache_clear()  # a formula registered after the first count must apply
        return fn

    return deco


def register_kind(kind: str, *ops: Any, override: bool = False) -> None:
    """Tally these ops by output elements under ``kind`` (no MAC formula)."""
    if kind not in (*ELEMENT_KINDS, "view"):
        raise UsageError(f"kind must be one of {', '.join((*ELEMENT_KINDS, 'view'))}, "
                         f"got {kind!r}")
    for op in map(_packet, ops):
        if not override and _KINDS.get(op, kind) != kind:
            raise UsageError(f"{op_name(op)} is already tallied as {_KINDS[op]!r}; "
                             "pass override=True to change it")
    for op in map(_packet, ops):
        _KINDS[op] = kind
    _classify.cache_clear()


_VIEW_NAMES = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "permute",
        "transpose",
        "t",
        "expand",
        "expand_as",
        "squeeze",
        "unsqueeze",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "unbind",
        "narrow",
        "as_strided",
        "flatten",
        "unflatten",
        "chunk",
        "movedim",
        "view_as",
        "_reshape_alias",
        "unsafe_split",
        "unsafe_split_with_sizes",
        "diagonal",
    }
)


def classify(func: Any, formulas: Formulas | None = None) -> OpClass:
    """The kind (and MAC formula, if any) of one aten overload; ``formulas`` (per call) win."""
    if formulas:
        given = formulas.get(func, formulas.get(_packet(func)))
        if given is not None:
            if isinstance(given, tuple):
                kind, fn = given
                if kind not in MAC_KINDS:
                    raise UsageError(f"a formula's kind must be one of {', '.join(MAC_KINDS)}")
                return OpClass(kind, fn)
            base = _classify(func).kind
            return OpClass(base if base in MAC_KINDS else "custom", given)
    return _classify(func)


@cache
def _classify(func: Any) -> OpClass:
    packet = _packet(func)
    if getattr(func, "namespace", "") == "prim":  # metadata queries (prim.device, ...)
        return OpClass("view")
    name = getattr(packet, "__name__", str(packet))
    # an in-place or out= variant (add_, masked_fill_) is the same work as its functional op
    base = getattr(aten, name.rstrip("_"), None) if name.endswith("_") else None
    for candidate in (packet, base):
        if candidate is None:
            continue
        if candidate in _FORMULAS:
            kind, formula = _FORMULAS[candidate]
            return OpClass(kind, formula)
        if candidate in _KINDS:
            return OpClass(_KINDS[candidate])
    stem = name.rstrip("_")
    if stem in _VIEW_NAMES:
        return OpClass("view")
    tags = getattr(func, "tags", ())
    if torch.Tag.pointwise in tags:
        return OpClass("elementwise")
    if torch.Tag.reduction in tags:
        return OpClass("reduction")
    if getattr(func, "is_view", False) or stem.endswith("_view"):
        return OpClass("view")
    if stem.endswith("_copy") and stem[:-5] in _VIEW_NAMES:  # view_copy, permute_copy, ...
        return OpClass("data_movement")
    return OpClass("other")


# ---------------------------------------------------------------------------- shape functions


def prod(shape: Shape) -> int:
    return math.prod(int(d) for d in shape)


def broadcast(*shapes: Shape) -> tuple[int, ...]:
    """numpy broadcasting of shapes (``torch.broadcast_shapes`` pulls in sympy on first use).

    Raises ValueError when the shapes do not broadcast.
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, d in enumerate(shape, start=ndim - len(shape)):
            d = int(d)
            if d != 1:
                if out[i] not in (1, d):
                    raise ValueError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
                out[i] = d
    return tuple(out)


def conv_macs(weight_shape: Shape, batch: int, spatial: Shape) -> int:
    """MACs of a convolution: every weight element meets every position of ``spatial`` once.

    ``spatial`` is the output size for a direct convolution and the *input* size for a
    transposed one (each input pixel scatters through the whole kernel); bias is not counted.
    """
    return int(batch) * prod(spatial) * prod(weight_shape)


def matmul_macs(a: Shape, b: Shape) -> int:
    """MACs of ``a @ b`` with numpy broadcasting over leading dims (1-D operands promoted)."""
    a, b = list(a), list(b)
    if len(a) == 1:
        a = [1, *a]
    if len(b) == 1:
        b = [*b, 1]
    m, k = a[-2], a[-1]
    n = b[-1]
    batch = broadcast(a[:-2], b[:-2])
    return prod(batch) * int(m) * int(k) * int(n)


def attention_macs(q: Shape, k: Shape, v: Shape) -> int:
    """MACs of softmax(q kᵀ) v for (..., L, E) queries, (..., S, E) keys and (..., S, Ev) values."""
    lead, seq_q, e = prod(q[:-2]), q[-2], q[-1]
    seq_k, ev = k[-2], v[-1]
    return lead * int(seq_q) * int(seq_k) * (int(e) + int(ev))


# --------------------------------------------------------------------------- aten formulas


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape)


@register_formula(aten.convolution, aten._convolution, kind="conv")
def _conv(x: Any, w: Any, _bias: Any, _stride: Any, _pad: Any, _dil: Any, transposed: bool,
          *_rest: Any, out: Any, **_kw: Any) -> int:
    spatial = _shape(x)[2:] if transposed else _shape(out)[2:]
    return conv_macs(_shape(w), _shape(x)[0], spatial)


@register_formula(aten.mm, aten.bmm, aten.matmul, aten.dot, aten.mv, kind="matmul")
def _mm(a: Any, b: Any, *_rest: Any, out: Any, **_kw: Any) -> int:
    return matmul_macs(_shape(a), _shape(b))


@register_formula(aten.addmm, aten.baddbmm, aten.addmv, aten.addbmm, kind="matmul")
def _addmm(_bias: Any, a: Any, b: Any, *_rest: Any, out: Any, **_kw: Any) -> int:
    return matmul_macs(_shape(a), _shape(b))


@register_formula(
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
    aten._scaled_dot_product_fused_attention_overrideable,
    kind="attention",
)
def _sdpa(q: Any, k: Any, v: Any, *_rest: Any, out: Any, **_kw: Any) -> int:
    return attention_macs(_shape(q), _shape(k), _shape(v))


@register_formula(aten._flash_attention_forward, aten._efficient_attention_forward,
                  kind="attention")
def _sdpa_blhe(q: Any, k: Any, v: Any, *_rest: Any, out: Any, **_kw: Any) -> int:
    # these kernels take (batch, seq, heads, dim): move heads before seq
    def bhle(s: tuple[int, ...]) -> tuple[int, ...]:
        return (s[0], s[2], s[1], s[3]) if len(s) == 4 else s

    return attention_macs(bhle(_shape(q)), bhle(_shape(k)), bhle(_shape(v)))


# nn.Linear reaches dispatch as mm/addmm: the engine re-labels those "linear" when the calling
# module is an nn.Linear, so by-kind totals keep layers and free-standing matmuls apart.

register_kind(
    "normalization",
    aten.native_batch_norm,
    aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_no_training,
    aten._native_batch_norm_legit_functional,
    aten.native_layer_norm,
    aten.native_group_norm,
    aten._batch_norm_with_update,
    aten._batch_norm_no_update,
    aten.batch_norm,
    aten.instance_norm,
    aten.layer_norm,
    aten.group_norm,
    aten._fused_rms_norm,
    aten.rms_norm,
)
register_kind(
    "resampling",
    aten.upsample_nearest1d,
    aten.upsample_nearest2d,
    aten.upsample_nearest3d,
    aten._upsample_nearest_exact1d,
    aten._upsample_nearest_exact2d,
    aten._upsample_nearest_exact3d,
    aten.upsample_linear1d,
    aten.upsample_bilinear2d,
    aten._upsample_bilinear2d_aa,
    aten.upsample_bicubic2d,
    aten._upsample_bicubic2d_aa,
    aten.upsample_trilinear3d,
    aten.grid_sampler_2d,
    aten.grid_sampler_3d,
    aten.grid_sampler,
    aten.affine_grid_generator,
)
register_kind(
    "pooling",
    aten.max_pool1d,
    aten.max_pool2d,
    aten.max_pool3d,
    aten.max_pool2d_with_indices,
    aten.max_pool3d_with_indices,
    aten.avg_pool1d,
    aten.avg_pool2d,
    aten.avg_pool3d,
    aten.adaptive_avg_pool1d,
    aten.adaptive_avg_pool2d,
    aten._adaptive_avg_pool2d,
    aten.adaptive_avg_pool3d,
    aten._adaptive_avg_pool3d,
    aten.adaptive_max_pool2d,
    aten.adaptive_max_pool3d,
)
register_kind("softmax", aten._softmax, aten._log_softmax, aten.softmax, aten.log_softmax,
              aten._safe_softmax)
# Moves or creates data without arithmetic: shown for completeness, never a cost.
register_kind(
    "data_movement",
    aten.cat,
    aten.stack,
    aten.clone,
    aten.copy,
    aten.copy_,
    aten._to_copy,
    aten.pixel_shuffle,
    aten.pixel_unshuffle,
    aten.constant_pad_nd,
    aten.reflection_pad1d,
    aten.reflection_pad2d,
    aten.reflection_pad3d,
    aten.replication_pad1d,
    aten.replication_pad2d,
    aten.replication_pad3d,
    aten._pad_circular,
    aten.roll,
    aten.flip,
    aten.repeat,
    aten.index_select,
    aten.gather,
    aten.index,
    aten.im2col,
    aten.col2im,
    aten.unfold,
    aten.fill,
    aten.fill_,
    aten.zero_,
    aten.empty,
    aten.empty_like,
    aten.empty_strided,
    aten.zeros,
    aten.zeros_like,
    aten.ones,
    aten.ones_like,
    aten.full,
    aten.full_like,
    aten.arange,
    aten.scalar_tensor,
    aten.lift_fresh,
    aten.lift_fresh_copy,
    aten.detach,
    aten.alias,
    aten.contiguous,
    aten.masked_fill,
    aten.where,
    aten._local_scalar_dense,
    aten.embedding,
    aten.new_empty,
    aten.new_empty_strided,
    aten.new_zeros,
    aten.new_ones,
    aten.new_full,
    aten.linspace,
    aten.eye,
    aten.tril,
    aten.triu,
    aten.scatter,
    aten.scatter_add,
    aten.index_put,
    aten.index_add,
    aten.index_fill,
    aten.index_copy,
    aten.masked_scatter,
    aten.masked_select,
    aten.select_scatter,
    aten.slice_scatter,
    aten.as_strided_scatter,
    aten.diagonal_scatter,
    aten._unsafe_index,
    aten._unsafe_index_put,
    aten.nonzero,
    aten.repeat_interleave,
    aten.tile,
    aten.channel_shuffle,
    aten.native_channel_shuffle,
    aten.set_,
    aten.resize_,
)
# Comparisons, scans and selections: work per element, but no multiply-accumulates.
register_kind(
    "reduction",
    aten.sort,
    aten.argsort,
    aten.topk,
    aten.kthvalue,
    aten.cumsum,
    aten.cumprod,
    aten.cummax,
    aten.cummin,
    aten.logcumsumexp,
    aten.bucketize,
    aten.searchsorted,
    aten.unique_dim,
    aten._unique2,
    aten.max,
    aten.min,
    aten.median,
    aten.mode,
    aten.norm,
    aten.linalg_vector_norm,
)
register_kind(
    "elementwise",
    aten._prelu_kernel,
    aten.prelu,
    aten.bernoulli,
    aten.native_dropout,
    aten.dropout,
    aten.rand,
    aten.randn,
    aten.rand_like,
    aten.randn_like,
    aten.randint,
    aten.normal,
    aten.uniform,
    aten.exponential,
    aten.clamp,
    aten.glu,
    aten.gelu,
    aten.silu,
    aten.hardswish,
    aten.hardsigmoid,
    aten.mish,
    aten.softplus,
    aten.elu,
    aten.leaky_relu,
    aten.hardtanh,
)

def op_name(func: Any) -> str:
    """``aten.convolution`` style name (overload dropped: totals should not split on it)."""
    packet = getattr(func, "overloadpacket", func)
    ns = getattr(packet, "__module__", "torch.ops.aten").rsplit(".", 1)[-1]
    return f"{ns}.{getattr(packet, '__name__', str(packet))}"


def ntire2022_linear_macs(in_shape: Shape, out_shape: Shape) -> int:
    """The challenge's Linear rule, kept exactly: batch · in.shape[1] · out.shape[1].

    Right for (batch, features) inputs only: for (B, N, C) tokens it counts N·C_out instead of
    N·C_in·C_out per sample, and for channels-last (B, H, W, C) it multiplies by H twice.
    """
    return int(in_shape[0]) * int(in_shape[1]) * int(out_shape[1])
