"""One forward pass that yields both conventions at once.

Module hooks keep a stack of module paths (for attribution) and apply the ntire2022 rules; a
TorchDispatchMode sees every aten op and applies the shape-only formula registry. By default the
pass runs on fake tensors (FakeTensorMode): the user's real parameters are read as shapes only, no
arithmetic is done and no activation memory is allocated, so the cost does not grow with the
input size. A model that needs real values (``.item()``, data-dependent branches, custom ops)
falls back to one real forward, and the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from esrprof.counting import ntire2022
from esrprof.counting.divergence import find_divergences
from esrprof.counting.formulas import classify, op_cost, op_name, prod
from esrprof.errors import InputShapeError, ModelError, UsageError, describe
from esrprof.results import Counts, NtireRecord, OpRecord
from esrprof.state import preserved

BACKENDS = ("auto", "fake", "real")


@dataclass
class _Tally:
    """Mutable accumulator used only while the forward runs."""

    module_types: dict[str, str] = field(default_factory=dict)
    ops: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # kind, calls, macs, el
    ntire: dict[str, list[Any]] = field(default_factory=dict)  # rule, calls, macs, acts, convs
    stack: list[str] = field(default_factory=lambda: [""])

    def add_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        kind = classify(func).kind
        if kind == "view":  # aliasing only: no cost and no data worth a row
            return
        kind, macs = op_cost(func, args, kwargs, out)
        module = self.stack[-1]
        if kind == "matmul" and self.module_types.get(module) == "Linear":
            kind = "linear"
        key = (module, op_name(func))
        row = self.ops.setdefault(key, [kind, 0, 0, 0])
        row[1] += 1
        row[2] += macs
        row[3] += _numel(out)

    def add_ntire(self, path: str, rule: ntire2022.Rule, call: ntire2022.Call) -> None:
        row = self.ntire.setdefault(path, [rule.name, 0, 0, 0, 0])
        row[1] += 1
        row[2] += call.macs
        row[3] += call.activations
        row[4] += call.convs


def _numel(out: Any) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item.numel()
    return 0


def _shape_of(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape)
    return None


class _OpCounter(TorchDispatchMode):
    """Counts every aten op. With ``to_meta``, real tensors that meet the meta input (the
    model's parameters, constants it keeps as attributes) are replaced by meta stand-ins at
    the op boundary, so nothing is computed and the model itself is never touched."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps __torch_dispatch__ in a dynamo-disable that imports torch._dynamo on the
        # first op (~1.3 s, ~70 MiB). Counting never runs under torch.compile, so opt out.
        return False

    def __init__(self, tally: _Tally, to_meta: bool = False):
        super().__init__()
        self.tally = tally
        self.to_meta = to_meta
        self._meta: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _as_meta(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return t
        hit = self._meta.get(id(t))
        if hit is None or hit[0] is not t:  # keep the original alive so its id stays unique
            hit = (t, torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta"))
            self._meta[id(t)] = hit
        return hit[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.to_meta and _touches_meta(args, kwargs):
            args, kwargs = tree_map(self._as_meta, (args, kwargs))
        out = func(*args, **kwargs)
        self.tally.add_op(func, args, kwargs, out)
        return out


def _touches_meta(args: Any, kwargs: Any) -> bool:
    return any(
        isinstance(t, torch.Tensor) and t.device.type == "meta"
        for t in tree_flatten((args, kwargs))[0]
    )


def _install_hooks(model: nn.Module, tally: _Tally) -> list[Any]:
    handles: list[Any] = []
    for path, module in model.named_modules():  # a shared instance appears (and counts) once
        tally.module_types[path] = type(module).__name__
        rule = ntire2022.rule_for(module)

        def pre(_m: nn.Module, _args: Any, path: str = path) -> None:
            tally.stack.append(path)

        def post(m: nn.Module, args: Any, out: Any, rule: Any = rule, path: str = path) -> None:
            if tally.stack and tally.stack[-1] == path:
                tally.stack.pop()
            if rule is None:
                return
            in_shape, out_shape = _shape_of(args), _shape_of(out)
            if in_shape is not None and out_shape is not None:
                tally.add_ntire(path, rule, rule.count(m, in_shape, out_shape))

        handles.append(module.register_forward_pre_hook(pre))
        # always_call: the stack unwinds even when the forward raises
        handles.append(module.register_forward_hook(post, always_call=True))
    return handles


def _probe_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    device, dtype = torch.device("cpu"), torch.float32
    for t in (*model.parameters(), *model.buffers()):
        device = t.device
        if t.is_floating_point():
            return device, t.dtype
    return device, dtype


def check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise InputShapeError(f"input shape must be integers, got {input_shape!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise InputShapeError(f"input shape must be positive integers, got {shape}")
    return shape


def _forward(model: nn.Module, tally: _Tally, make_input: Any, backend: str) -> None:
    handles = _install_hooks(model, tally)
    try:
        with torch.no_grad():
            if backend == "fake":
                # imported here: FakeTensorMode pulls in torch._dynamo (~1 s, ~100 MB)
                from torch._subclasses.fake_tensor import FakeTensorMode

                with FakeTensorMode(allow_non_fake_inputs=True):
                    x = make_input()
                    with _OpCounter(tally):
                        model(x)
            else:
                x = make_input()
                with _OpCounter(tally, to_meta=backend == "meta"):
                    model(x)
    finally:
        for h in handles:
            h.remove()


def _worth_faking(meta_failure: str) -> bool:
    """Fake tensors help where meta kernels are missing, not where values or shapes are wrong."""
    text = meta_failure.lower()
    needs_values = ("item()", "_local_scalar_dense", "data-dependent", "cannot be called on meta")
    if any(k in text for k in needs_values):
        return False
    return "meta" in text or "notimplemented" in text or "not implemented" in text


def count(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    *,
    backend: str = "auto",
    dtype: torch.dtype | None = None,
) -> Counts:
    """Count params, both MAC conventions, activations and convs of one forward.

    ``backend``: "auto" (meta tensors; fake tensors where a meta kernel is missing; one real
    forward if the model needs values, recorded in ``fallback_reason``), "fake" (never compute:
    raise if shapes alone cannot do it) or "real" (always one real forward).
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if backend not in BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    shape = check_shape(input_shape)
    device, param_dtype = _probe_device_dtype(model)
    dtype = dtype or param_dtype
    started = time.perf_counter()
    if device.type == "meta":
        backend = "fake" if backend == "auto" else backend  # meta weights: no real forward

    def fake_input() -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=device)

    def real_input() -> torch.Tensor:
        gen = torch.Generator(device="cpu").manual_seed(0)  # never touch the global RNG
        return torch.rand(shape, generator=gen, dtype=torch.float32).to(device, dtype)

    def meta_input() -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device="meta")

    chain = {"auto": ("meta", "fake", "real"), "fake": ("meta", "fake"), "real": ("real",)}
    inputs = {"meta": meta_input, "fake": fake_input, "real": real_input}
    with preserved(model, eval_mode=True):
        failures: list[str] = []
        last: Exception | None = None
        for used in chain[backend]:
            if used == "fake" and last is not None and not _worth_faking(failures[-1]):
                continue
            tally = _Tally()
            try:
                _forward(model, tally, inputs[used], used)
                break
            except Exception as exc:
                failures.append(describe(exc))
                last = exc
        else:
            assert last is not None
            raise ModelError(_forward_failed(shape, last, used)) from last
    reason = failures[0] if failures else None

    ops = tuple(
        OpRecord(module, tally.module_types.get(module, ""), op, kind, calls, macs, elements)
        for (module, op), (kind, calls, macs, elements) in tally.ops.items()
    )
    ntire = tuple(
        NtireRecord(path, tally.module_types.get(path, ""), rule, calls, macs, acts, convs)
        for path, (rule, calls, macs, acts, convs) in tally.ntire.items()
    )
    return Counts(
        params=sum(p.numel() for p in model.parameters()),
        buffers=sum(b.numel() for b in model.buffers()),
        input_shape=shape,
        backend=used,
        fallback_reason=reason,
        ops=ops,
        ntire2022_layers=ntire,
        divergences=find_divergences(ops, ntire, tally.module_types),
        seconds=time.perf_counter() - started,
    )



def _forward_failed(shape: tuple[int, ...], exc: BaseException, backend: str) -> str:
    where = "" if backend == "real" else f" ({backend} tensors; backend='real' computes for real)"
    return f"forward failed on input {'x'.join(map(str, shape))}{where}: {describe(exc)}"


__all__ = ["BACKENDS", "check_shape", "count", "prod"]
