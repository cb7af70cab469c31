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
from collections.abc import Iterable, Sequence
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
        ))


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
) -> list[OpTime]:
    """Each row's compute, traffic and floor time. ``peak_flops(dtype, kind)`` gives FLOP/s."""
    out = []
    for r in rows:
        compute = 0.0
        if r.flops:
            kind = "conv" if r.kind == "conv" else "matmul"
            compute = r.flops / (peak_flops(r.dtype, kind) * compute_efficiency)
        traffic = r.bytes_moved / (bandwidth * bandwidth_efficiency)
        out.append(OpTime(r, compute, traffic, floor_s))
    return out


def total_seconds(
    rows: Sequence[OpRow], peak_flops: Any, bandwidth: float, constants: Sequence[float]
) -> float:
    """Predicted seconds of ``rows`` under (compute eff., bandwidth eff., floor in µs)."""
    ec, eb, floor_us = constants
    return sum(t.seconds for t in op_times(
        rows, peak_flops=peak_flops, bandwidth=bandwidth, compute_efficiency=ec,
        bandwidth_efficiency=eb, floor_s=floor_us * 1e-6,
    ))


__all__ = ["CostObserver", "OpRow", "OpTime", "op_times", "total_seconds"]
