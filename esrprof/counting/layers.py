"""The per-layer table, torchinfo-style: every module in the model's order, nested by depth,
with its type, output shape, parameters, MACs and activations.

Output shapes come from one more traced forward (shapes only, on the backend the count used);
MACs and activations are the count's own records summed over each module's subtree, so the
root's row equals the totals of :func:`esrprof.count`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from esrprof.counting.engine import Observer, trace
from esrprof.results import Counts


@dataclass(frozen=True)
class LayerRow:
    """One module: ``params`` and the counts are its whole subtree's (a parameter shared by two
    modules counts in each, once in their common parent)."""

    module: str  # dotted path, "" for the root
    depth: int  # 0 for the root
    module_type: str
    output_shape: tuple[int, ...] | None  # of its first call; None if it never ran
    calls: int
    params: int
    macs: int  # complete convention
    ntire2022_macs: int
    activations: int  # ntire2022 #Acts: conv outputs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return d


class _Shapes(Observer):
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.calls: dict[str, int] = {}

    def on_module(self, module: nn.Module, path: str, args: Any, out: Any) -> None:
        self.calls[path] = self.calls.get(path, 0) + 1
        if path not in self.shapes:
            first = out
            if isinstance(out, (tuple, list)) and out:
                first = out[0]
            self.shapes[path] = tuple(first.shape) if isinstance(first, torch.Tensor) else None


def _within(path: str, root: str) -> bool:
    return root == "" or path == root or path.startswith(root + ".")


def layer_rows(model: nn.Module, counts: Counts, depth: int | None = None) -> tuple[LayerRow, ...]:
    """The rows of the per-layer table, down to ``depth`` (None: every module), in the model's
    module order; modules that never ran and hold no parameters are left out."""
    backend = counts.backend if counts.backend in ("meta", "fake", "real") else "auto"
    seen = trace(model, counts.input_shape, lambda: [_Shapes()], backend=backend)
    shapes = seen.observers[0]
    assert isinstance(shapes, _Shapes)
    rows = []
    for path, module in model.named_modules():
        level = 0 if path == "" else path.count(".") + 1
        if depth is not None and level > depth:
            continue
        params = sum(p.numel() for p in module.parameters())
        if path not in shapes.calls and params == 0:
            continue
        rows.append(LayerRow(
            module=path,
            depth=level,
            module_type=type(module).__name__,
            output_shape=shapes.shapes.get(path),
            calls=shapes.calls.get(path, 0),
            params=params,
            macs=sum(r.macs for r in counts.ops if _within(r.module, path)),
            ntire2022_macs=sum(r.macs for r in counts.ntire2022_layers
                               if _within(r.module, path)),
            activations=sum(r.activations for r in counts.ntire2022_layers
                            if _within(r.module, path)),
        ))
    return tuple(rows)


__all__ = ["LayerRow", "layer_rows"]
