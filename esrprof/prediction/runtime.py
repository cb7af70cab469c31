"""Runtime from the op trace: a roofline per kernel plus a per-kernel floor.

Every non-view op is one kernel. Its arithmetic (2 × MACs from the formula registry, for
convolutions, matmuls and attention) and its traffic (bytes of every tensor it reads and
writes, counted from the tensors' sizes) give two times on a GPU spec; the kernel takes the
larger of the two, at the calibrated efficiencies, plus the calibrated floor (launch and
dispatch). The efficiencies and the floor are the three constants of ``calibration.py``.

Generic byte rules, none per op:

- a tensor read counts the distinct elements it addresses: a view counts its own elements, a
  broadcast (stride-0) dimension counts once;
- an op writes the elements of its outputs (an in-place op writes its ``self``);
- ops that only alias (views, ``detach``, ``alias``, a ``contiguous`` that returns its input)
  and bare allocations (``empty``) launch no kernel and move nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from esrprof.counting.engine import Observer
from esrprof.counting.formulas import op_name
from esrprof.kinds import ARITHMETIC_PEAK, group_of
from esrprof.prediction.memory import tensors_in

_ALLOCATION_ONLY = frozenset({"aten.empty", "aten.empty_like", "aten.empty_strided",
                              "aten.new_empty", "aten.new_empty_strided"})


@dataclass(frozen=True)
class OpRow:
    """One kernel of the forward: where it ran, what it computes and what it moves."""

    module: str
    op: str
    kind: str  # the registry's kind ("conv", "elementwise", ...; "linear" inside nn.Linear)
    flops: int  # 2 x MACs; 0 for ops costed by traffic alone
    read_bytes: int
    write_bytes: int
    dtype: torch.dtype
    cost_class: str = ""  # the microbenchmarked class (COST_CLASSES), "" for none

    @property
    def group(self) -> str:
        return group_of(self.kind)

    @property
    def bytes_moved(self) -> int:
        return self.read_bytes + self.write_bytes


class CostObserver(Observer):
    """An engine observer that turns every kernel-launching op into an :class:`OpRow`."""

    def __init__(self) -> None:
        self.rows: list[OpRow] = []

    def on_input(self, x: torch.Tensor) -> None:
        pass

    def on_output(self, out: Any) -> None:
        pass

    def on_op(self, func: Any, args: tuple, kwargs: dict, out: Any, module: str) -> None:
        kind, op_class = self.op_kind(func, module)
        if kind == "view":
            return
        name = op_name(func)
        if name in _ALLOCATION_ONLY:
            return
        ins = list(tensors_in((args, kwargs)))
        outs = list(tensors_in(out))
        mutates = bool(getattr(getattr(func, "_schema", None), "is_mutable", False))
        if not mutates and outs:
            read_from = {_sid(t) for t in ins}
            if all(_sid(t) in read_from for t in outs):  # aliases an input: no kernel
                return
        macs = op_class.macs(args, kwargs, out)
        written = {_sid(t) for t in outs}
        # an in-place op's ``self`` is both read and written; count its write once, below
        read = sum(_distinct_bytes(t) for t in ins if not (mutates and _sid(t) in written))
        if mutates:
            read += sum(_distinct_bytes(t) for t in outs)
        dtype = next((t.dtype for t in (*outs, *ins) if t.is_floating_point()), torch.float32)
        self.rows.append(OpRow(
            module, name, kind, 2 * macs if kind in ARITHMETIC_PEAK else 0,
            read, sum(_distinct_bytes(t) for t in outs), dtype,
            cost_class(name, kind, args, dtype),
        ))


# The op cost classes a microbenchmark measures (microbench.py); a calibrated device's
# ``class_factors`` scale each class's roofline time.
COST_CLASSES = ("conv_dense", "conv_1x1", "conv_depthwise", "conv_few_channels", "conv_half",
                "conv_half_unaligned", "linear",
                "adaptive_pool", "interpolate", "pixel_shuffle", "layer_norm", "gelu", "softmax",
                "copy", "attention")
_BY_OP = {
    "aten._adaptive_avg_pool2d": "adaptive_pool", "aten.adaptive_avg_pool2d": "adaptive_pool",
    "aten.adaptive_max_pool2d": "adaptive_pool",
    "aten.upsample_bilinear2d": "interpolate", "aten.upsample_bicubic2d": "interpolate",
    "aten.upsample_nearest2d": "interpolate",
    "aten.pixel_shuffle": "pixel_shuffle", "aten.pixel_unshuffle": "pixel_shuffle",
    "aten.native_layer_norm": "layer_norm", "aten.layer_norm": "layer_norm",
    "aten.gelu": "gelu", "aten._softmax": "softmax", "aten._safe_softmax": "softmax",
    "aten.clone": "copy", "aten.copy_": "copy", "aten._to_copy": "copy",
}


def cost_class(name: str, kind: str, args: Sequence[Any], dtype: torch.dtype) -> str:
    """The cost class of one kernel: convolutions by shape, the rest by op."""
    if kind == "conv" and len(args) > 1 and isinstance(args[1], torch.Tensor):
        weight = args[1]
        groups = args[-1] if isinstance(args[-1], int) else 1
        c_in = weight.shape[1] * groups
        if dtype in (torch.float16, torch.bfloat16):
            # tensor cores take 16-bit convolutions whose channels come in multiples of 8
            aligned = weight.shape[0] % 8 == 0 and weight.shape[1] % 8 == 0
            return "conv_half" if aligned else "conv_half_unaligned"
        if groups > 1 and groups == c_in:
            return "conv_depthwise"
        if tuple(weight.shape[2:]) in ((1, 1), (1,)):
            return "conv_1x1"
        if c_in <= 4:
            return "conv_few_channels"
        return "conv_dense"
    if kind == "attention":
        return "attention"
    if kind == "linear":  # the GEMM of an nn.Linear: in SR models, tall and skinny
        return "linear"
    return _BY_OP.get(name, "")


def _sid(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _distinct_bytes(t: torch.Tensor) -> int:
    """Bytes of the elements a tensor addresses (broadcast dimensions counted once)."""
    if t.numel() == 0:
        return 0
    elements = math.prod(s for s, st in zip(t.shape, t.stride()) if st != 0)
    return int(elements) * t.element_size()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class OpTime:
    """One row's predicted time on a GPU."""

    row: OpRow
    compute_s: float
    traffic_s: float
    floor_s: float

    @property
    def memory_bound(self) -> bool:
        return self.traffic_s >= self.compute_s

    @property
    def roofline_s(self) -> float:
        return max(self.compute_s, self.traffic_s)

    @property
    def seconds(self) -> float:
        return self.roofline_s + self.floor_s


def op_times(
    rows: Iterable[OpRow],
    *,
    peak_flops: Any,
    bandwidth: float,
    compute_efficiency: float,
    bandwidth_efficiency: float,
    floor_s: float,
    class_factors: Mapping[str, float] | None = None,
) -> list[OpTime]:
    """Each row's compute, traffic and floor time. ``peak_flops(dtype, kind)`` gives FLOP/s;
    ``class_factors`` (a calibrated device's) scale the roofline time of a cost class."""
    factors = class_factors or {}
    out = []
    for r in rows:
        compute = 0.0
        if r.flops:
            kind = "conv" if r.kind == "conv" else "matmul"
            if r.cost_class == "conv_half_unaligned":
                # tensor cores cannot take it: the CUDA cores' rate (the plain fp32 rate, as
                # an fp32 matmul gets it: no tensor-core or TF32 path)
                peak = peak_flops(torch.float32, "matmul")
            else:
                peak = peak_flops(r.dtype, kind)
            compute = r.flops / (peak * compute_efficiency)
        traffic = r.bytes_moved / (bandwidth * bandwidth_efficiency)
        f = factors.get(r.cost_class, 1.0)
        out.append(OpTime(r, compute * f, traffic * f, floor_s))
    return out


def total_seconds(
    rows: Sequence[OpRow], peak_flops: Any, bandwidth: float, constants: Sequence[float],
    class_factors: Mapping[str, float] | None = None,
) -> float:
    """Predicted seconds of ``rows`` under (compute eff., bandwidth eff., floor in µs) and
    the cost classes' factors."""
    ec, eb, floor_us = constants
    return sum(t.seconds for t in op_times(
        rows, peak_flops=peak_flops, bandwidth=bandwidth, compute_efficiency=ec,
        bandwidth_efficiency=eb, floor_s=floor_us * 1e-6, class_factors=class_factors,
    ))


__all__ = ["COST_CLASSES", "CostObserver", "OpRow", "OpTime", "cost_class", "op_times",
           "total_seconds"]
