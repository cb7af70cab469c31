"""The entries of a sweep: a TOML file of ``[[entry]]`` tables, or a folder of ``*.py`` files.

Nothing here imports or runs an entry's code: a folder's model classes are found by reading the
files' syntax (``ast``), so a submission that calls ``os._exit`` at import time can only end its
own worker, never the sweep that lists it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from esrprof.errors import UsageError
from esrprof.jsonio import jsonable

# An entry's name is a file name (DIR/<name>.json, DIR/logs/<name>.log): nothing else allowed.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_KEYS = {"name", "model", "weights", "kwargs", "data_range", "tile", "team", "input_shape"}


@dataclass(frozen=True)
class Entry:
    """One submission: a model spec esrprof accepts, and what it needs to be built and run."""

    name: str
    model: str
    weights: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    data_range: int | None = None  # 1 or 255: the pixel range the model works in
    tile: int | None = None  # LR tile size for runs, where the entry asks for tiling
    team: str | None = None
    input_shape: tuple[int, ...] = (1, 3, 256, 256)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        values = dict(data)
        values["input_shape"] = tuple(values.get("input_shape") or (1, 3, 256, 256))
        return cls(**{k: v for k, v in values.items() if k in _KEYS})


def read_entries(path: str | Path) -> list[Entry]:
    """The entries a TOML file or a folder of model files lists, checked; UsageError (exit 2)
    with one line for anything malformed, a name used twice, or an ambiguous model file."""
    source = Path(path)
    if source.is_dir():
        entries = _from_folder(source)
    elif source.is_file():
        entries = _from_toml(source)
    else:
        raise UsageError(f"ENTRIES {source}: no such file or folder")
    if not entries:
        raise UsageError(f"ENTRIES {source}: lists no entry")
    seen: dict[str, int] = {}
    for entry in entries:
        seen[entry.name.lower()] = seen.get(entry.name.lower(), 0) + 1
    twice = sorted(n for n, k in seen.items() if k > 1)
    if twice:
        raise UsageError(f"ENTRIES {source}: entry name used twice: {', '.join(twice)} "
                         "(names are file names, compared without case)")
    return entries


def _from_toml(path: Path) -> list[Entry]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"ENTRIES {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"ENTRIES {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"entry"})
    if unknown:
        raise UsageError(f"ENTRIES {path}: unknown top-level key {unknown[0]!r} "
                         "(one [[entry]] table per submission)")
    tables = data.get("entry", [])
    if not isinstance(tables, list):
        raise UsageError(f"ENTRIES {path}: 'entry' must be [[entry]] tables")
    base = path.resolve().parent
    return [_entry(t, f"{path} entry {i + 1}", base) for i, t in enumerate(tables)]


def _entry(table: Any, where: str, base: Path) -> Entry:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: not a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key in ("name", "model"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise UsageError(f"{where}: '{key}' must be a non-empty string")
    name = table["name"]
    if not _NAME.match(name):
        raise UsageError(f"{where}: name {name!r} must be letters, digits and . _ + - "
                         "(it names the entry's files)")
    where = f"{where} ({name})"
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise UsageError(f"{where}: 'kwargs' must be a table")
    data_range = table.get("data_range")
    if data_range is not None and data_range not in (1, 255):
        raise UsageError(f"{where}: 'data_range' must be 1 or 255, got {data_range!r}")
    tile = table.get("tile")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise UsageError(f"{where}: 'tile' must be a positive whole number of LR pixels")
    shape = table.get("input_shape", [1, 3, 256, 256])
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise UsageError(f"{where}: 'input_shape' must be a list of positive integers")
    for key in ("weights", "team"):
        if table.get(key) is not None and not isinstance(table[key], str):
            raise UsageError(f"{where}: '{key}' must be a string")
    return Entry(
        name=name,
        model=_relative_spec(table["model"], base),
        weights=str(base / table["weights"]) if table.get("weights") else None,
        kwargs=kwargs,
        data_range=data_range,
        tile=tile,
        team=table.get("team"),
        input_shape=tuple(shape),
    )


def _relative_spec(spec: str, base: Path) -> str:
    """A ``file.py:Class`` spec relative to the ENTRIES file becomes absolute (the workers may
    start elsewhere); a module spec stays as it is."""
    target, sep, attr = spec.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target) and not Path(target).is_absolute():
        return f"{base / target}:{attr}"
    return spec


def _from_folder(folder: Path) -> list[Entry]:
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))
    if not files:
        raise UsageError(f"ENTRIES {folder}: folder holds no *.py model file")
    out = []
    for path in files:
        name = re.sub(r"[^A-Za-z0-9_.+-]", "_", path.stem)
        out.append(Entry(name=name, model=f"{path.resolve()}:{model_class(path)}"))
    return out


def model_class(path: Path) -> str:
    """The one obvious ``nn.Module`` class a model file defines, read from its syntax.

    Among the top-level classes that derive (directly or through another class of the file)
    from ``nn.Module``, the one no other of them uses; failing that, the one named like the
    file. Anything else is ambiguous: a UsageError naming the candidates.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise UsageError(f"{path}: cannot read its classes: {exc}") from None
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    modules = {name for name in classes if _is_module(name, classes, set())}
    if not modules:
        raise UsageError(f"{path}: defines no nn.Module class")
    if len(modules) == 1:
        return next(iter(modules))
    used = set()
    for name in modules:
        for node in ast.walk(classes[name]):
            if isinstance(node, ast.Name) and node.id in modules and node.id != name:
                used.add(node.id)
    top = sorted(modules - used)
    if len(top) == 1:
        return top[0]
    named = [n for n in (top or sorted(modules)) if n.lower() == path.stem.lower()]
    if len(named) == 1:
        return named[0]
    raise UsageError(
        f"{path}: which model class? {', '.join(top or sorted(modules))} are all candidates; "
        "list the file in a TOML ENTRIES file with model = \"FILE.py:Class\""
    )


def _is_module(name: str, classes: dict[str, ast.ClassDef], seen: set[str]) -> bool:
    if name in seen:
        return False
    seen.add(name)
    for base in classes[name].bases:
        text = ast.unparse(base)
        if text.split(".")[-1] == "Module" or text.endswith("nn.Module"):
            return True
        if text in classes and _is_module(text, classes, seen):
            return True
    return False


def entry_key(entry: Entry, rules: Mapping[str, Any], version: str) -> str:
    """What decides whether a done entry is still done: its spec (and the model file's bytes),
    kwargs, the weights' SHA-256, esrprof's version and the sweep's rules."""
    parts = {
        "entry": {k: v for k, v in entry.to_dict().items() if k not in ("team",)},
        "model_file": _file_sha256(entry.model.rpartition(":")[0]),
        "weights": _file_sha256(entry.weights) if entry.weights else None,
        "version": version,
        "rules": dict(rules),
    }
    text = json.dumps(jsonable(parts), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha256(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None  # a missing file fails in the worker, with its own line
    return digest.hexdigest()
