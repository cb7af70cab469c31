"""Stand-in for ``esrprof.counting.engine.trace`` until the engine exposes it (to be removed).

One forward under no_grad with every module in eval; real tensors that meet a meta tensor are
replaced by one meta stand-in each (kept alive for the pass); observers see every aten op.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from esrprof.errors import ModelError, describe
from esrprof.probe import check_shape, device_dtype, probe_input
from esrprof.state import preserved


@dataclass(frozen=True)
class Trace:
    backend: str
    fallback_reason: str | None
    observers: tuple[Any, ...]
    seconds: float


class _Mode(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False

    def __init__(self, observers: Sequence[Any], stack: list[str], to_meta: bool,
                 dtype: torch.dtype | None = None):
        super().__init__()
        self.dtype = dtype
        self.observers = observers
        self.stack = stack
        self.to_meta = to_meta
        self._meta: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _as_meta(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return t
        hit = self._meta.get(id(t))
        if hit is None or hit[0] is not t:
            dt = self.dtype if self.dtype is not None and t.is_floating_point() else t.dtype
            hit = (t, torch.empty_strided(t.shape, t.stride(), dtype=dt, device="meta"))
            self._meta[id(t)] = hit
        return hit[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.to_meta:
            args, kwargs = tree_map(self._as_meta, (args, kwargs))
            if "device" in kwargs and kwargs["device"] is not None:
                kwargs["device"] = torch.device("meta")
        out = func(*args, **kwargs)
        for obs in self.observers:
            obs.on_op(func, args, kwargs, out, self.stack[-1])
        return out


def trace(
    model: nn.Module,
    input_shape: Sequence[int],
    observers: Callable[[], Sequence[Any]],
    *,
    backend: str = "auto",
    dtype: torch.dtype | None = None,
) -> Trace:
    shape = check_shape(input_shape)
    _, param_dtype = device_dtype(model)
    dtype = dtype or param_dtype
    used = "real" if backend == "real" else "meta"
    started = time.perf_counter()
    obs = tuple(observers())
    stack = [""]
    handles = []
    for path, module in model.named_modules():
        def pre(_m, _a, path=path):
            stack.append(path)

        def post(_m, _a, _o, path=path):
            if stack and stack[-1] == path:
                stack.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    try:
        with preserved(model, eval_mode=True), torch.no_grad():
            if used == "real":
                x = probe_input(shape, next(iter(model.parameters())).device, dtype)
            else:
                x = torch.empty(shape, dtype=dtype, device="meta")
            for o in obs:
                o.on_input(x)
            state = None
            if used == "meta" and dtype is not None:
                state = {
                    k: torch.empty(v.shape, device="meta",
                                   dtype=dtype if v.is_floating_point() else v.dtype)
                    for k, v in {**dict(model.named_parameters()),
                                 **dict(model.named_buffers())}.items()
                }
            with _Mode(obs, stack, to_meta=used == "meta", dtype=dtype):
                if state is not None:
                    out = torch.func.functional_call(model, state, (x,))
                else:
                    out = model(x)
            del x
            for o in obs:
                o.on_output(out)
            del out
    except Exception as exc:
        raise ModelError(f"forward failed: {describe(exc)}") from exc
    finally:
        for h in handles:
            h.remove()
    return Trace(used, None, obs, time.perf_counter() - started)

