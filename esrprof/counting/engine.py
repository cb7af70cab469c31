"""One forward pass, traced op by op, that never touches the user's model.

:func:`trace` runs the model once under a TorchDispatchMode that shows every aten op to a set of
observers, while module hooks keep a stack of module paths for attribution. Observers that ask
for them also see each outermost torch-level call (``F.linear``, ``x @ y``, ``F.interpolate``)
through a TorchFunctionMode on the same forward: the level fvcore's JIT trace counts at, which
the ntire2024 convention needs. Counting (:func:`count`) is one such observer; the GPU
predictions are others.

Backends, tried in this order by ``"auto"``:

* ``meta`` — the input is a meta tensor, every real tensor that reaches an op (parameters,
  buffers, constants kept as attributes) is swapped for one meta stand-in at the op boundary,
  and every tensor the forward creates (``torch.zeros`` for a mask, ``arange`` for an index) is
  created on meta too. Nothing is computed and nothing real is written, so the cost does not
  grow with the input size.
* ``fake`` — the same on FakeTensors, for models whose ops lack a meta kernel.
* ``real`` — one real forward on a seeded input, for models that need values (``.item()``,
  data-dependent branches); the model's tensors are copied first so values written in place
  come back.

Every attempt runs inside :func:`esrprof.state.preserved`, so each one starts from the untouched
model and the model is as it was afterwards, attributes included, whatever the forward did.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from esrprof import kinds
from esrprof.counting import ntire2022, ntire2024, shapes
from esrprof.counting.divergence import find_divergences, find_ntire2024_divergences
from esrprof.counting.formulas import Formulas, OpClass, classify, op_name
from esrprof.errors import USER_CODE_ERRORS, ModelError, UsageError, describe
from esrprof.probe import check_shape, device_dtype, shape_text
from esrprof.results import Counts, Ntire2024Record, NtireRecord, OpRecord
from esrprof.state import preserved
from esrprof.stay import stay_on_device

BACKENDS = ("auto", "fake", "real")
_CHAINS = {"auto": ("meta", "fake", "real"), "fake": ("meta", "fake"), "real": ("real",),
           "meta": ("meta",)}


class Observer:
    """Sees one traced forward. Override what you need; every method defaults to nothing.

    ``on_op`` is called for every aten op, views included, after it ran, with the arguments and
    output as the op saw them (meta stand-ins on the meta backend); ``module`` is the dotted
    path of the innermost module running ("" for the root). ``on_module`` is called when a
    module's forward returns (or raises: ``out`` is then None).
    """

    # paths of the modules that are nn.Linear (or a subclass), set by the engine before the
    # forward: the one place where a Linear's matmul is told from a free-standing one
    linear_modules: frozenset[str] = frozenset()

    def op_kind(self, func: Any, module: str, formulas: Formulas | None = None
                ) -> tuple[str, OpClass]:
        """The op's kind as every observer books it (``matmul`` inside an ``nn.Linear`` is
        ``linear``; see :mod:`esrprof.kinds`), with its registry class for the MACs."""
        op = classify(func, formulas)
        return kinds.label(op.kind, module in self.linear_modules), op

    def on_input(self, x: torch.Tensor) -> None:
        """The input, before the forward."""

    def on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
              module: str) -> None:
        """One aten op."""

    def on_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                module: str) -> None:
        """One outermost torch-level call (``F.linear``, ``x @ y``, ``F.interpolate``), after
        the aten ops beneath it were shown to ``on_op``. Only observers that override this
        method make the engine watch torch-level calls."""

    def on_module(self, module: nn.Module, path: str, args: Any, out: Any) -> None:
        """A module's forward returned."""

    def on_output(self, out: Any) -> None:
        """The forward's return value."""


@dataclass(frozen=True)
class Trace:
    """How a traced forward went: the backend that worked and the observers that saw it."""

    backend: str
    fallback_reason: str | None
    observers: tuple[Observer, ...]
    module_types: dict[str, str]
    seconds: float


# --------------------------------------------------------------------------- the dispatch mode


class _Tracer(TorchDispatchMode):
    """Shows every aten op to the observers. With ``to_meta``, real tensors that reach an op are
    replaced by meta stand-ins and factory ops create meta tensors, so nothing is computed."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps __torch_dispatch__ in a dynamo-disable that imports torch._dynamo on the
        # first op (~1.3 s, ~70 MiB). Tracing never runs under torch.compile, so opt out.
        return False

    def __init__(self, observers: Sequence[Observer], stack: list[str], *, to_meta: bool,
                 dtype: torch.dtype | None = None):
        super().__init__()
        self.observers = observers
        self.stack = stack
        self.to_meta = to_meta
        self.dtype = dtype
        # one stand-in per real tensor, keyed by id; the original is kept so the id stays unique
        self._meta: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _as_meta(self, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return t
        hit = self._meta.get(id(t))
        if hit is None or hit[0] is not t:
            dtype = self.dtype if self.dtype is not None and t.is_floating_point() else t.dtype
            stand_in = torch.empty_strided(t.shape, t.stride(), dtype=dtype, device="meta")
            if isinstance(t, nn.Parameter):
                stand_in = nn.Parameter(stand_in, requires_grad=t.requires_grad)
            hit = (t, stand_in)
            self._meta[id(t)] = hit
        return hit[1]

    def _all_meta(self, value: Any) -> Any:
        """``_as_meta`` through the lists and tuples an aten op takes (pytree's tree_map did
        the same at several times the cost)."""
        if isinstance(value, torch.Tensor):
            return self._as_meta(value)
        if type(value) in (tuple, list):
            return type(value)(self._all_meta(v) for v in value)
        return value

    def swap_in(self, model: nn.Module) -> None:
        """Put meta stand-ins in the modules' parameter and buffer slots for the pass, so a
        forward that re-parameterises (``self.w.data = fused``) works on meta like on real
        tensors. The caller's :func:`preserved` puts the real ones back."""
        for module in model.modules():
            for slots in (module._parameters, module._buffers):
                for name, value in list(slots.items()):
                    if value is not None:
                        slots[name] = self._as_meta(value)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if self.to_meta:
            args = self._all_meta(args)
            kwargs = {k: self._all_meta(v) for k, v in kwargs.items()}
            has_device = shapes.schema_facts(func)[0]
            if has_device:
                # factory ops (zeros for a mask, arange for an index) and .to(device) copies
                kwargs["device"] = torch.device("meta")
                kwargs.pop("pin_memory", None)
                kwargs.pop("generator", None)
            out = shapes.meta_call(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        module = self.stack[-1] if self.stack else ""
        for observer in self.observers:
            observer.on_op(func, args, kwargs, out, module)
        return out


class _Calls(TorchFunctionMode):
    """Shows every outermost torch-level call to the observers that want them.

    Why a function mode: the ntire2024 convention is fvcore's, and fvcore counts the ops the
    JIT tracer records, which are the calls made from Python (``aten::linear``,
    ``aten::matmul``, ``aten::layer_norm``), not the aten ops the dispatcher runs beneath them
    (``mm``, ``native_layer_norm``). A TorchFunctionMode is handed exactly those calls: torch
    turns the mode off while a call runs, so the calls nested inside one are not shown, just as
    the tracer does not record them. The dispatch mode beneath still sees every aten op, so
    both views come from the one forward.
    """

    def __init__(self, observers: Sequence[Observer], stack: list[str]):
        super().__init__()
        self.observers = observers
        self.stack = stack

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        module = self.stack[-1] if self.stack else ""
        for observer in self.observers:
            observer.on_call(func, args, kwargs, out, module)
        return out


def _watch_calls(observers: Sequence[Observer], stack: list[str]) -> Any:
    wanted = [o for o in observers if type(o).on_call is not Observer.on_call]
    return _Calls(wanted, stack) if wanted else contextlib.nullcontext()


def _install_hooks(model: nn.Module, observers: Sequence[Observer], stack: list[str],
                   module_types: dict[str, str]) -> list[Any]:
    handles: list[Any] = []
    linear = frozenset(p for p, m in model.named_modules() if isinstance(m, nn.Linear))
    for observer in observers:
        observer.linear_modules = linear
    for path, module in model.named_modules():  # a shared instance appears (and counts) once
        module_types[path] = type(module).__name__

        def pre(_m: nn.Module, _args: Any, path: str = path) -> None:
            stack.append(path)

        def post(m: nn.Module, args: Any, out: Any = None, path: str = path) -> None:
            if stack and stack[-1] == path:
                stack.pop()
            for observer in observers:
                observer.on_module(m, path, args, out)

        handles.append(module.register_forward_pre_hook(pre))
        # always_call: the stack unwinds even when the forward raises
        handles.append(module.register_forward_hook(post, always_call=True))
    return handles


# ------------------------------------------------------------------------------- the trace


def _make_input(backend: str, shape: tuple[int, ...], dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
    if backend == "meta":
        return torch.empty(shape, dtype=dtype, device="meta")
    if backend == "fake":
        return torch.empty(shape, dtype=dtype, device=device)
    gen = torch.Generator(device="cpu").manual_seed(0)  # never touch the global RNG
    return torch.rand(shape, generator=gen, dtype=torch.float32).to(device, dtype)



PROTOCOL_GRAD = "protocol"  # trace(grad=...): the challenge scripts' autograd state

def _forward(model: nn.Module, observers: Sequence[Observer], backend: str,
             shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
             module_types: dict[str, str], grad: bool | str = False) -> None:
    stack: list[str] = [""]
    # the challenges' scripts: every registered parameter frozen, then no no_grad around the
    # forward, so only what the forward itself makes requiring grad is recorded
    frozen = [p for p in model.parameters() if p.requires_grad] if grad == PROTOCOL_GRAD else []
    handles = _install_hooks(model, observers, stack, module_types)
    try:
        for p in frozen:
            p.requires_grad_(False)
        # grad: autograd records as in a forward run without no_grad (saved tensors live on)
        with torch.set_grad_enabled(bool(grad)):
            if backend == "fake":
                # imported here: FakeTensorMode pulls in torch._dynamo (~1 s, ~100 MB)
                from torch._subclasses.fake_tensor import FakeTensorMode

                with FakeTensorMode(allow_non_fake_inputs=True):
                    x = _make_input(backend, shape, dtype, device)
                    _run(model, x, observers, _Tracer(observers, stack, to_meta=False), stack)
            else:
                x = _make_input(backend, shape, dtype, device)
                tracer = _Tracer(observers, stack, to_meta=backend == "meta", dtype=dtype)
                if backend == "meta":
                    tracer.swap_in(model)
                _run(model, x, observers, tracer, stack)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        for h in handles:
            h.remove()


def _run(model: nn.Module, x: torch.Tensor, observers: Sequence[Observer],
         tracer: _Tracer, stack: list[str]) -> None:
    for observer in observers:
        observer.on_input(x)
    with _watch_calls(observers, stack), tracer:
        out = model(x)
    for observer in observers:
        observer.on_output(out)


def _worth_faking(meta_failure: str) -> bool:
    """Fake tensors help where meta kernels are missing, not where values or shapes are wrong."""
    text = meta_failure.lower()
    needs_values = ("item()", "_local_scalar_dense", "data-dependent", "cannot be called on meta",
                    "systemexit")
    if any(k in text for k in needs_values):
        return False
    return "meta" in text or "notimplemented" in text or "not implemented" in text


def trace(
    model: nn.Module,
    input_shape: Sequence[int],
    observers: Callable[[], Sequence[Observer]],
    *,
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    grad: bool | str = False,
) -> Trace:
    """One forward of ``model`` on ``input_shape`` shown to fresh ``observers()`` per attempt.

    ``backend``: "auto" (meta; fake where a meta kernel is missing; real if the model needs
    values, recorded in ``fallback_reason``), "fake" (never compute: raise if shapes alone
    cannot do it), "meta" (meta only) or "real" (one real forward). ``dtype``: the input's
    dtype, and on meta the dtype of floating stand-ins too (as ``model.to(dtype)`` would);
    default the model's own. ``grad``: let autograd record (parameters that require grad keep
    the tensors they save alive, as a forward without ``no_grad`` does); default no_grad;
    ``"protocol"``: as the NTIRE scripts run it, grad on with the model's parameters frozen
    for the pass, so autograd records only from tensors the forward makes requiring grad (a
    ``Parameter`` built in forward, an unregistered tensor that requires grad).
    """
    if grad not in (True, False, PROTOCOL_GRAD):
        raise UsageError(f"grad must be True, False or {PROTOCOL_GRAD!r}, got {grad!r}")
    if not isinstance(model, nn.Module):
        raise UsageError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if backend not in _CHAINS:
        raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    shape = check_shape(input_shape)
    device, param_dtype = device_dtype(model)
    dtype = dtype or param_dtype
    chain = _CHAINS[backend]
    if device.type == "meta":  # meta weights: there is nothing real to compute with
        chain = tuple(b for b in chain if b != "real") or ("meta", "fake")
    started = time.perf_counter()
    failures: list[tuple[str, BaseException]] = []
    for used in chain:
        if used == "fake" and failures and not _worth_faking(describe(failures[-1][1])):
            continue
        # a forward that moves tensors to CUDA itself is traced again with those moves left
        # out (esrprof.stay): only then, since the mode costs ~40 % of a count
        for stay in (False, True):
            attempt = tuple(observers())
            module_types: dict[str, str] = {}
            try:
                # values: only a real forward can write a real tensor; meta and fake never do
                with preserved(model, eval_mode=True, values=used == "real"), \
                        stay_on_device(stay):
                    _forward(model, attempt, used, shape, dtype, device, module_types, grad)
            except USER_CODE_ERRORS as exc:
                if not stay and _asks_for_cuda(describe(exc)):
                    continue
                failures.append((used, exc))
                break
            return Trace(
                backend=used,
                fallback_reason=describe(failures[0][1]) if failures else None,
                observers=attempt,
                module_types=module_types,
                seconds=time.perf_counter() - started,
            )
    raise ModelError(_forward_failed(shape, failures)) from failures[-1][1]


# What a forward that moves its own tensors to CUDA fails with: no CUDA here, a meta tensor
# asked for its data, or a CUDA tensor beside the model's CPU or meta ones.
_ASKS_FOR_CUDA = ("not compiled with cuda", "cannot copy out of meta tensor",
                  "expected all tensors to be on the same device", "no nvidia driver",
                  "cuda driver", "no cuda gpus are available")


def _asks_for_cuda(text: str) -> bool:
    low = text.lower()
    return any(k in low for k in _ASKS_FOR_CUDA)


def _forward_failed(shape: tuple[int, ...], failures: list[tuple[str, BaseException]]) -> str:
    used, exc = failures[-1]
    where = "" if used == "real" else f" ({used} tensors; backend='real' computes for real)"
    cause = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else describe(exc)
    return f"forward failed on input {shape_text(shape)}{where}: {cause}"


# ----------------------------------------------------------------------------------- count


class _Tally(Observer):
    """Both conventions' raw records, keyed by (module, op) and by module."""

    def __init__(self, modules: dict[str, nn.Module], formulas: Formulas | None = None):
        self.modules = modules
        self.formulas = formulas
        self.ops: dict[tuple[str, str], list[Any]] = {}  # kind, calls, macs, elements
        self.ntire: dict[str, list[Any]] = {}  # rule, calls, macs, activations, convs
        self.fvcore: dict[tuple[str, str], list[int]] = {}  # (module, op) -> calls, macs
        # dispatch ops beneath the running torch-level call, as fvcore might have seen them:
        # used only when that call is a Python-level function ntire2024 does not know
        self.beneath: list[tuple[str, int]] = []

    def on_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                module: str) -> None:
        beneath, self.beneath = self.beneath, []
        recorded = ntire2024.fvcore_calls(func, args, kwargs, out, self.modules.get(module))
        found = beneath if recorded is None else recorded
        for op, macs in found:
            if macs and ntire2024.in_autograd_function():
                op, macs = "PythonOp", 0  # one opaque node to the tracer: fvcore counts 0
            if not macs and op not in ntire2024.HANDLES and op not in ntire2024.NOTED:
                continue  # an op fvcore has no handle for: nothing to record
            row = self.fvcore.setdefault((module, op), [0, 0])
            row[0] += 1
            row[1] += macs

    def on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
              module: str) -> None:
        fallback = ntire2024.dispatch_count(func, args, kwargs, out)
        if fallback is not None:
            self.beneath.append(fallback)
        kind, op = self.op_kind(func, module, self.formulas)
        if kind == "view":  # aliasing only: no cost and no data worth a row
            return
        macs = op.macs(args, kwargs, out)
        row = self.ops.setdefault((module, op_name(func)), [kind, 0, 0, 0])
        row[1] += 1
        row[2] += macs
        row[3] += _numel(out)

    def on_module(self, module: nn.Module, path: str, args: Any, out: Any) -> None:
        rule = ntire2022.rule_for(module)
        if rule is None or out is None:
            return
        in_shape, out_shape = _shape_of(args), _shape_of(out)
        if in_shape is None or out_shape is None:
            return
        call = rule.count(module, in_shape, out_shape)
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


def count(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    *,
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    formulas: Formulas | None = None,
) -> Counts:
    """Count params, the MAC conventions (ntire2022, ntire2024, complete), activations and
    convs of one forward.

    ``backend`` as for :func:`trace`. ``formulas``: per-call MAC formulas by aten op that
    override or extend the registry for this count only (see
    :func:`esrprof.counting.formulas.formulas`).
    """
    modules = dict(model.named_modules()) if isinstance(model, nn.Module) else {}

    def tally() -> list[Observer]:
        return [_Tally(modules, formulas)]

    result = trace(model, input_shape, tally, backend=backend, dtype=dtype)
    t = result.observers[0]
    assert isinstance(t, _Tally)
    types_ = result.module_types
    ops = tuple(
        OpRecord(module, types_.get(module, ""), op, kind, calls, macs, elements)
        for (module, op), (kind, calls, macs, elements) in t.ops.items()
    )
    ntire = tuple(
        NtireRecord(path, types_.get(path, ""), rule, calls, macs, acts, convs)
        for path, (rule, calls, macs, acts, convs) in t.ntire.items()
    )
    fvcore = tuple(
        Ntire2024Record(module, types_.get(module, ""), op, calls, macs)
        for (module, op), (calls, macs) in t.fvcore.items()
    )
    return Counts(
        params=sum(p.numel() for p in model.parameters()),
        buffers=sum(b.numel() for b in model.buffers()),
        input_shape=check_shape(input_shape),
        backend=result.backend,
        fallback_reason=result.fallback_reason,
        ops=ops,
        ntire2022_layers=ntire,
        divergences=find_divergences(ops, ntire, types_),
        ntire2024_layers=fvcore,
        ntire2024_divergences=find_ntire2024_divergences(ops, fvcore, types_),
        seconds=result.seconds,
    )


__all__ = ["BACKENDS", "Observer", "Trace", "check_shape", "count", "trace"]
