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
"""

from __future__ import annotations

import collections
import sys
import types
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
        containers, caches = _class_state(model)
        snap = cls.take([model, *containers], values=values)
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
            saved = dict(obj) if isinstance(obj, dict) else list(obj)
            self.containers.append((obj, saved))
            return saved.values() if isinstance(saved, dict) else saved
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


def _class_state(model: nn.Module) -> tuple[list[Any], list[Any]]:
    """Mutable containers and ``lru_cache`` functions kept on the model's classes and in the
    globals of the files that define them: where a forward may cache masks by input size."""
    containers: list[Any] = []
    caches: list[Any] = []
    seen: set[int] = set()
    for cls in {type(m) for m in model.modules()}:
        for klass in cls.__mro__:
            owner = sys.modules.get(klass.__module__)
            if klass.__module__.partition(".")[0] in _FOREIGN or klass is object:
                continue
            spaces = [vars(klass)] + ([vars(owner)] if owner is not None else [])
            for space in spaces:
                if id(space) in seen:
                    continue
                seen.add(id(space))
                for name, value in list(space.items()):
                    if name.startswith("__"):  # __builtins__, __all__, ...
                        continue
                    if isinstance(value, _MUTABLE_CONTAINERS) and not isinstance(value, bytearray):
                        containers.append(value)
                    elif hasattr(value, "cache_info") and hasattr(value, "cache_clear"):
                        caches.append(value)
    return containers, caches


def _is_fake(t: torch.Tensor) -> bool:
    return type(t).__name__ == "FakeTensor"


def _restore_container(container: Any, saved: Any) -> None:
    if isinstance(container, dict):
        if container.keys() != saved.keys() or any(
            container[k] is not v for k, v in saved.items()
        ):
            container.clear()
            container.update(saved)
    elif isinstance(container, (list, bytearray)):
        if len(container) != len(saved) or any(a is not b for a, b in zip(container, saved)):
            container[:] = saved
    elif isinstance(container, set):
        if container != set(saved):
            container.clear()
            container.update(saved)
    elif isinstance(container, collections.deque) and (
        len(container) != len(saved) or any(a is not b for a, b in zip(container, saved))
    ):
        container.clear()
        container.extend(saved)


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


@contextmanager
def preserved(
    model: nn.Module | None = None, *, eval_mode: bool = False, values: bool = True
) -> Iterator[Snapshot | None]:
    """Save and restore module flags and attributes, grad mode, CPU/CUDA RNG and cuDNN flags.

    With ``eval_mode`` every module is put in eval for the duration (each module's own flag is
    restored afterwards, not just the root's). With ``values`` (the default) a copy of every
    tensor the model holds is kept (on the CPU) so that values written in place come back;
    the counting engine turns it off where it guarantees no real tensor is ever written.
    """
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
