"""Leave the user's model and torch exactly as they were.

Every measuring path (count, run, monitor, gate, peers) enters :func:`preserved`. On the way out,
even when the model raises, it restores:

* the train/eval flag of *every* module, grad mode, CPU/CUDA RNG streams and cuDNN flags;
* every attribute a forward set, rebound or deleted, on every module and on the plain Python
  objects and containers they hold (``self.mean = self.mean.type_as(x)``, a call counter, a
  list or dict kept as a cache, a submodule swapped by a re-parameterisation);
* every tensor's data: a ``.data`` swap is undone, and (with ``values=True``) a tensor written in
  place, a buffer counter say, gets its values back.

Why attributes and not just the ``state_dict``: Swin-style models rebind a plain tensor attribute
in every forward; on meta input that leaves a meta tensor on the module, invisible to a
state_dict comparison, and the user's next real forward fails.

State outside the model is found through the code the forward runs (:func:`_outside_state`):
the globals of the files that define its classes, the globals and closures of the functions
those classes and the model's hooks name (a mask cache in a helper module, a hook appending
outputs to a list), followed a few calls deep. Containers are read and restored through the
storage of their built-in base type (``dict.items(d)``, ``OrderedDict.__setitem__``), never
through methods a subclass overrides: ``transformers.activations.ACT2FN`` is an ``OrderedDict``
whose ``__getitem__`` builds a new instance on every lookup, and going through it would
restore instances over the classes it holds.
"""

from __future__ import annotations

import collections
import sys
import threading
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# How far the walk follows plain objects held by modules (a cache object holding a dict of
# tensors is depth 2), and how many objects it visits at most: enough for real models, bounded
# for pathological object graphs.
_MAX_DEPTH = 6
_MAX_OBJECTS = 200_000
_VALUE_DEPTH = 2  # module -> _buffers dict -> tensor; module -> list attribute -> tensor

# Values that hold no state a forward could change.
_ATOMIC = (str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device,
           torch.Size, torch.memory_format, torch.layout, type, types.FunctionType,
           types.BuiltinFunctionType, types.ModuleType, types.MethodType, range, slice)
_MUTABLE_CONTAINERS = (list, dict, set, collections.deque, bytearray)


@dataclass
class _TensorState:
    tensor: torch.Tensor
    data: torch.Tensor  # an alias of the original data: keeps it alive for a .data swap back
    version: int | None
    saved: torch.Tensor | None = None  # a copy of the values, when asked for


@dataclass
class Snapshot:
    """Everything a forward could change, captured by reference (values only on request)."""

    dicts: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    containers: list[tuple[Any, Any]] = field(default_factory=list)
    tensors: list[_TensorState] = field(default_factory=list)
    caches: list[tuple[Any, int]] = field(default_factory=list)

    @classmethod
    def of_model(cls, model: nn.Module, *, values: bool = False) -> Snapshot:
        """The model's objects, plus the class- and file-level caches its classes keep."""
        containers, caches, objects = _outside_state(model)
        snap = cls.take([model, *containers, *objects], values=values)
        snap.caches = [(fn, fn.cache_info().currsize) for fn in caches]
        return snap

    @classmethod
    def take(cls, roots: Any, *, values: bool = False) -> Snapshot:
        snap = cls()
        seen: set[int] = set()
        stack: list[tuple[Any, int]] = [(root, 0) for root in roots]
        while stack and len(seen) < _MAX_OBJECTS:
            obj, depth = stack.pop()
            if id(obj) in seen or isinstance(obj, _ATOMIC):
                continue
            seen.add(id(obj))
            if isinstance(obj, torch.Tensor):
                # values are copied for the module's own tensors (parameters, buffers, tensor
                # attributes, tensors in its lists and dicts), not for data a helper object
                # holds (a dataset kept on the model must not be copied on every measurement)
                snap._tensor(obj, values and depth <= _VALUE_DEPTH)
                continue
            children = snap._remember(obj)
            if children is not None and depth < _MAX_DEPTH:
                # modules are roots of their own: their depth starts again
                stack.extend((c, 0 if isinstance(c, nn.Module) else depth + 1) for c in children)
        return snap

    def _remember(self, obj: Any) -> Any:
        if isinstance(obj, _MUTABLE_CONTAINERS):
            saved = _raw_items(obj)
            self.containers.append((obj, saved))
            return [v for _, v in saved] if isinstance(obj, dict) else saved
        if isinstance(obj, (tuple, frozenset)):
            return obj
        d = getattr(obj, "__dict__", None)
        if not isinstance(d, dict) or not _plain_object(obj):
            return None
        self.dicts.append((obj, dict(d)))
        return d.values()

    def _tensor(self, t: torch.Tensor, values: bool) -> None:
        try:
            version: int | None = t._version
        except RuntimeError:  # inference tensors keep no version counter
            version = None
        saved = None
        if values and t.device.type != "meta" and not _is_fake(t):
            with torch.no_grad():
                saved = t.detach().to("cpu", copy=True)
        self.tensors.append(_TensorState(t, t.detach(), version, saved))

    def restore(self) -> None:
        for obj, saved in self.dicts:
            current = obj.__dict__
            for key in [k for k in current if k not in saved]:
                del current[key]
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        for container, saved in self.containers:
            _restore_container(container, saved)
        with torch.no_grad():
            for state in self.tensors:
                _restore_tensor(state)
        for fn, size in self.caches:
            # entries cannot be removed one by one; a cache that grew may hold meta tensors
            if fn.cache_info().currsize != size:
                fn.cache_clear()

    def leaked(self) -> list[str]:
        """Descriptions of meta or fake tensors reachable now that were not there before."""
        before = {id(s.tensor) for s in self.tensors}
        out = []
        for state in Snapshot.take([obj for obj, _ in self.dicts]).tensors:
            t = state.tensor
            if id(t) not in before and (t.device.type == "meta" or _is_fake(t)):
                out.append(f"{type(t).__name__}{tuple(t.shape)} on {t.device}")
        return out


_MISSING = object()


# Library internals a forward does not keep its state in (and whose objects can be huge).
_FOREIGN = ("torch", "builtins", "functools", "weakref", "collections", "typing", "abc",
            "threading", "logging", "numpy", "pandas", "_io", "_thread", "_weakref", "enum")


def _plain_object(obj: Any) -> bool:
    """Modules and user objects (caches, configs) are walked; torch and builtin internals,
    generators, weakrefs and the like are not."""
    if isinstance(obj, nn.Module):
        return True
    module = type(obj).__module__ or ""
    return module.partition(".")[0] not in _FOREIGN


# How many functions the walk through the forward's code follows (classes' methods, hooks,
# the helpers they call), and how many calls deep.
_MAX_FUNCTIONS = 2000
_CODE_DEPTH = 4
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                 "_global_backward_hooks", "_global_backward_pre_hooks")


def _foreign(module_name: str | None) -> bool:
    return (module_name or "").partition(".")[0] in _FOREIGN


class _Outside:
    """What a forward can reach outside the model: mutable containers, ``lru_cache``
    functions, and user objects (a recorder whose bound method is a hook)."""

    def __init__(self) -> None:
        self.containers: list[Any] = []
        self.caches: list[Any] = []
        self.objects: list[Any] = []
        self.seen: set[int] = set()
        self.functions: list[tuple[Any, int]] = []

    def add(self, value: Any, depth: int, names: frozenset[str] = frozenset()) -> None:
        if id(value) in self.seen or isinstance(value, (str, bytes, int, float, bool)):
            return
        if isinstance(value, _MUTABLE_CONTAINERS) and not isinstance(value, bytearray):
            self.seen.add(id(value))
            self.containers.append(value)
        elif hasattr(value, "cache_info") and hasattr(value, "cache_clear"):
            self.seen.add(id(value))
            self.caches.append(value)
            self.add(getattr(value, "__wrapped__", None), depth)
        elif isinstance(value, (types.FunctionType, types.MethodType)):
            self.seen.add(id(value))
            if isinstance(value, types.MethodType):
                self.add(value.__self__, depth)
                value = value.__func__
            if not _foreign(value.__module__) and depth <= _CODE_DEPTH:
                self.functions.append((value, depth))
        elif isinstance(value, types.ModuleType):
            # a helper module the code names: the attributes that code names in it
            if _foreign(value.__name__) or value.__name__ == "sys":
                return
            space = vars(value)
            for name in names:
                if name in space and not isinstance(space[name], types.ModuleType):
                    self.add(space[name], depth)
        elif isinstance(value, type):
            self.seen.add(id(value))
            if _foreign(value.__module__) or issubclass(value, nn.Module):
                return  # module classes are walked by _class_spaces
            for item in vars(value).values():
                self.add(_unwrap(item), depth)
        elif isinstance(value, nn.Module):
            return  # the model's own, or another model: not outside state of this one
        elif not isinstance(value, _ATOMIC) and not _foreign(type(value).__module__):
            self.seen.add(id(value))
            self.objects.append(value)
            call = vars(type(value)).get("__call__")
            if isinstance(call, types.FunctionType):
                self.add(call, depth)

    def walk_functions(self) -> None:
        done = 0
        while self.functions and done < _MAX_FUNCTIONS:
            fn, depth = self.functions.pop()
            done += 1
            names = frozenset(_code_names(fn.__code__))
            space = fn.__globals__
            for cell in fn.__closure__ or ():
                try:
                    self.add(cell.cell_contents, depth + 1, names)
                except ValueError:  # an empty cell
                    continue
            for name in names:
                if name in space:
                    self.add(space[name], depth + 1, names)


def _code_names(code: types.CodeType) -> Iterator[str]:
    """Every global and attribute name a function's code (and the code nested in it) uses."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _unwrap(item: Any) -> Any:
    if isinstance(item, (staticmethod, classmethod)):
        return item.__func__
    if isinstance(item, property):
        return item.fget
    return item


def _outside_state(model: nn.Module) -> tuple[list[Any], list[Any], list[Any]]:
    """Containers, ``lru_cache`` functions and user objects outside the model that its forward
    may write: those kept on its classes and in the globals of the files that define them
    (where a forward caches masks by input size), and those the code of its classes and hooks
    names, in helper modules and closures (a hook appending outputs to a list)."""
    out = _Outside()
    modules = list(model.modules())
    for space in _class_spaces(modules):
        for name, value in list(space.items()):
            if name.startswith("__"):  # __builtins__, __all__, ...
                continue
            value = _unwrap(value)
            if isinstance(value, (types.FunctionType, *_MUTABLE_CONTAINERS)) or hasattr(
                value, "cache_clear"
            ):
                out.add(value, 0)
    from torch.nn.modules import module as torch_module

    hooks = [getattr(torch_module, name, {}) for name in _GLOBAL_HOOKS]
    hooks += [getattr(m, name, None) or {} for m in modules for name in _HOOK_DICTS]
    for table in hooks:
        for hook in dict.values(table) if isinstance(table, dict) else ():
            out.add(hook, 0)
    out.walk_functions()
    return out.containers, out.caches, out.objects


def _class_spaces(modules: list[nn.Module]) -> Iterator[dict[str, Any]]:
    """The namespaces of the model's classes (through their MRO) and of the files defining
    them, each once."""
    seen: set[int] = set()
    for cls in {type(m) for m in modules}:
        for klass in cls.__mro__:
            if _foreign(klass.__module__) or klass is object:
                continue
            owner = sys.modules.get(klass.__module__)
            for space in [vars(klass)] + ([vars(owner)] if owner is not None else []):
                if id(space) not in seen:
                    seen.add(id(space))
                    yield space


def _is_fake(t: torch.Tensor) -> bool:
    return type(t).__name__ == "FakeTensor"


def _builtin(container: Any) -> type:
    """The built-in container type whose own methods read and write ``container``'s storage
    (a subclass's ``__getitem__``, ``__iter__`` or ``__setitem__`` are never called)."""
    for kind in (collections.OrderedDict, dict, list, bytearray, set, collections.deque):
        if isinstance(container, kind):
            return kind
    raise TypeError(type(container).__name__)


def _raw_items(container: Any) -> list[Any]:
    """What ``container`` holds, read from its storage: (key, value) pairs for a mapping."""
    kind = _builtin(container)
    if issubclass(kind, dict):
        return list(kind.items(container))
    return list(kind.__iter__(container))


def _restore_container(container: Any, saved: list[Any]) -> None:
    kind = _builtin(container)
    now = _raw_items(container)
    if issubclass(kind, dict):
        if len(now) == len(saved) and all(
            a[0] is b[0] and a[1] is b[1] for a, b in zip(now, saved)
        ):
            return
        kind.clear(container)
        for key, value in saved:
            kind.__setitem__(container, key, value)
    elif kind is set:
        if len(now) != len(saved) or set.symmetric_difference(container, saved):
            set.clear(container)
            set.update(container, saved)
    elif len(now) != len(saved) or any(a is not b for a, b in zip(now, saved)):
        if kind is collections.deque:
            collections.deque.clear(container)
            collections.deque.extend(container, saved)
        else:  # list, bytearray
            kind.__setitem__(container, slice(None), saved)


def _restore_tensor(state: _TensorState) -> None:
    t, data = state.tensor, state.data
    if (
        t.device != data.device
        or t.dtype != data.dtype
        or t.shape != data.shape
        or t.stride() != data.stride()
        or _is_fake(t)
        or (t.device.type != "meta" and t.data_ptr() != data.data_ptr())
    ):
        t.data = data  # a .data swap during the forward (re-parameterisation, meta stand-in)
    if state.saved is None or state.version is None:
        return
    try:
        changed = data._version != state.version
    except RuntimeError:
        changed = True
    if changed:
        data.copy_(state.saved)


_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


@contextmanager
def exclusive(model: nn.Module | None) -> Iterator[None]:
    """Hold ``model`` for the block: another thread measuring the same model waits. Without
    it, two monitors of one model in two threads each save the flags the other has just set
    (eval), and the model is left in eval mode."""
    if model is None:
        yield
        return
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
    with lock:
        yield


@contextmanager
def preserved(
    model: nn.Module | None = None, *, eval_mode: bool = False, values: bool = True
) -> Iterator[Snapshot | None]:
    """Save and restore module flags and attributes, grad mode, CPU/CUDA RNG and cuDNN flags.

    With ``eval_mode`` every module is put in eval for the duration (each module's own flag is
    restored afterwards, not just the root's). With ``values`` (the default) a copy of every
    tensor the model holds is kept (on the CPU) so that values written in place come back;
    the counting engine turns it off where it guarantees no real tensor is ever written.
    One thread at a time holds a model here (:func:`exclusive`).
    """
    with exclusive(model), _preserved(model, eval_mode=eval_mode, values=values) as snapshot:
        yield snapshot


@contextmanager
def _preserved(
    model: nn.Module | None, *, eval_mode: bool, values: bool
) -> Iterator[Snapshot | None]:
    modes = [(m, m.training) for m in model.modules()] if model is not None else []
    snapshot = Snapshot.of_model(model, values=values) if model is not None else None
    grad_enabled = torch.is_grad_enabled()
    cpu_rng = torch.get_rng_state()
    cuda_rng = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else None
    )
    cudnn = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.enabled,
    )
    try:
        if eval_mode:
            for m, _ in modes:
                m.training = False
        yield snapshot
    finally:
        if snapshot is not None:
            snapshot.restore()
        for m, flag in modes:
            m.training = flag
        torch.set_grad_enabled(grad_enabled)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.enabled,
        ) = cudnn
