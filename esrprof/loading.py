"""Model specs (``file.py:Class`` or ``package.module:Class``), constructor kwargs and checkpoints.

Checkpoints load with ``torch.load(weights_only=True)``: a file that needs pickle is refused
unless the caller says it trusts it (``allow_pickle`` / ``--allow-pickle``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pickle
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from esrprof.errors import (
    USER_CODE_ERRORS,
    CheckpointError,
    SpecError,
    describe,
    user_code_failed,
)
from esrprof.results import ModelInfo
from esrprof.specs import check_file, check_weights, is_file_target, split_spec
from esrprof.specs import parse_kwargs as parse_kwargs  # its home is specs (no torch there)
from esrprof.stay import moves_note, stay_on_device

# Keys under which training frameworks nest the weights (BasicSR, Lightning, plain dicts).
_WRAPPER_KEYS = ("params", "params_ema", "state_dict", "model_state_dict", "model", "net",
                 "network", "generator", "g_ema", "ema")
# Prefixes added by DataParallel / DistributedDataParallel and torch.compile.
_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    info: ModelInfo
    notes: tuple[str, ...] = ()  # one line each, for the command line to print


def resolve(spec: str) -> type[nn.Module]:
    """The ``nn.Module`` subclass a spec names (anything else is refused before it is called)."""
    target, attr = split_spec(spec)
    if is_file_target(target):
        module = _import_file(Path(target), attr)
        where = target
    else:
        module = _import_module(target)
        where = target
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            classes = sorted(n for n, v in vars(module).items()
                             if inspect.isclass(v) and issubclass(v, nn.Module)
                             and v.__module__ == module.__name__)
            hint = f" (nn.Module classes there: {', '.join(classes)})" if classes else ""
            raise SpecError(f"{where} has no {attr!r}{hint}")
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        # checked before anything is called: a spec (or a baseline's) must not run os:system
        raise SpecError(f"{spec} is not a torch.nn.Module class")
    return obj


def _import_file(path: Path, attr: str = "Class") -> Any:
    check_file(path, attr)
    resolved = path.resolve()
    root, dotted = package_root(resolved)
    if dotted is not None:
        return _import_in_package(path, root, dotted)
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"_esrprof_user_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    try:
        source = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {describe(exc)}") from None
    # siblings of the file import as they would when the user runs it
    return exec_source(name, source, str(resolved), folder=resolved.parent,
                       what=f"importing {path}")


def package_root(path: Path) -> tuple[Path, str | None]:
    """The folder to put on ``sys.path`` and the dotted module name of a ``.py`` file.

    A file whose folder has an ``__init__.py`` belongs to a package: walk up while the parent is
    a package too, so ``pkg/archs/swinir.py`` imports as ``pkg.archs.swinir`` from the folder
    holding ``pkg`` and its relative imports resolve. Otherwise (``None``) it is a lone script.
    """
    parts = [path.stem] if path.stem != "__init__" else []
    folder = path.parent
    if not (folder / "__init__.py").is_file():
        return folder, None
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        if folder.parent == folder:
            break
        folder = folder.parent
    if not parts or not all(p.isidentifier() for p in parts):
        return path.parent, None
    return folder, ".".join(parts)


def _import_in_package(path: Path, root: Path, dotted: str) -> Any:
    top = dotted.partition(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None:
        where = [Path(p).resolve() for p in getattr(loaded, "__path__", [])]
        if where and (root / top).resolve() not in where:
            raise SpecError(
                f"{path} belongs to package {top!r}, but another {top!r} is already imported "
                f"from {where[0]}; use the module form {dotted}:Class from the right folder"
            )
    folder = str(root)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return _import_module(dotted)
    finally:
        if added:
            sys.path.remove(folder)


def _import_module(target: str) -> Any:
    """``importlib.import_module`` with user-code failures turned into one-line errors."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise SpecError(f"no module named {target!r}") from None
        raise user_code_failed(f"importing {target}", exc) from exc
    except USER_CODE_ERRORS as exc:
        raise user_code_failed(f"importing {target}", exc) from exc


def exec_source(
    name: str,
    source: str,
    filename: str,
    *,
    folder: Path | None = None,
    package: str = "",
    what: str,
) -> types.ModuleType:
    """Run ``source`` as module ``name`` (registered in ``sys.modules``), with ``folder`` on
    ``sys.path`` while it runs so sibling imports resolve. Whatever the code raises, ``sys.exit``
    included, becomes a one-line ModelError that starts with ``what``."""
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__package__ = package
    added = folder is not None and str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    sys.modules[name] = module  # dataclasses and typing look the module up while executing
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except USER_CODE_ERRORS as exc:
        sys.modules.pop(name, None)
        raise user_code_failed(what, exc) from exc
    finally:
        if added:
            sys.path.remove(str(folder))
    return module


def build(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    return _build(spec, kwargs)[0]


def _build(spec: str, kwargs: Mapping[str, Any] | None = None) -> tuple[nn.Module, int]:
    """The model, and how many moves to CUDA its import and constructor asked for where
    there is no CUDA (esrprof.stay: they leave tensors on the CPU)."""
    kwargs = dict(kwargs or {})
    with stay_on_device(not torch.cuda.is_available()) as stay:
        factory = resolve(spec)
        try:
            model = factory(**kwargs)
        except USER_CODE_ERRORS as exc:
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            name = getattr(factory, "__name__", spec)
            raise user_code_failed(f"{name}({args})", exc) from exc
    if not isinstance(model, nn.Module):
        raise SpecError(f"{spec} built a {type(model).__name__}, not a torch.nn.Module")
    return model, stay.moves if stay is not None else 0


def read_checkpoint(path: str | Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """A flat state dict from a checkpoint file, unwrapped from the usual containers."""
    p = Path(path)
    check_weights(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as exc:
        # weights_only names the Python global it refused; a corrupt file fails on an opcode
        if allow_pickle or "global" not in str(exc).lower():
            raise CheckpointError(f"{p}: unreadable checkpoint ({_last_line(exc)})") from None
        raise CheckpointError(
            f"{p} needs pickle to load (it stores Python objects, not just tensors); "
            "if you trust its source, re-run with --allow-pickle"
        ) from None
    except Exception as exc:
        raise CheckpointError(f"{p}: unreadable checkpoint ({describe(exc)})") from None
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    return _unwrap(obj, p)


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # {"state_dict": {"model": {...}}} and similar
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor)
                                                    for v in obj.values()):
            break
        if isinstance(obj, Mapping):
            key = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if key is not None:
                obj = obj[key]
                continue
        raise CheckpointError(f"{path}: no state dict found (top-level: {_describe(obj)})")
    state = {str(k): v for k, v in obj.items()}
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _last_line(exc: BaseException) -> str:
    """The informative line of torch's multi-paragraph unpickling errors."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Check the documentation", "Please file"))]
    return (useful[-1] if useful else type(exc).__name__)[:200]


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)[:6]
        return "keys " + ", ".join(map(str, keys)) + (" ..." if len(obj) > 6 else "")
    return type(obj).__name__


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line account of any mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if shapes:
        k = shapes[0]
        problems.append(
            f"{len(shapes)} of another shape ({k}: checkpoint {tuple(state[k].shape)}, "
            f"model {tuple(own[k].shape)})"
        )
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: "
                              + "; ".join(problems))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: {describe(exc)}") from exc


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_model(
    spec: str,
    kwargs: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    *,
    allow_pickle: bool = False,
    name: str | None = None,
) -> LoadedModel:
    """Build ``spec(**kwargs)`` and, if given, load ``weights`` strictly."""
    model, moves = _build(spec, kwargs)
    if weights is not None:
        load_weights(model, read_checkpoint(weights, allow_pickle=allow_pickle), str(weights))
    cls = type(model).__name__
    info = ModelInfo(
        name=name or spec.rpartition(":")[2],
        spec=spec,
        kwargs=dict(kwargs or {}),
        weights=str(weights) if weights is not None else None,
        class_name=cls,
    )
    notes = (moves_note(moves, "while it was built"),) if moves else ()
    return LoadedModel(model, info, notes)

