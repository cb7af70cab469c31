"""JSON in and out, one way for every file esrprof reads or writes.

Everything esrprof writes is strict JSON (no NaN or Infinity: a missing value is ``null``), and
everything it reads is checked the same way: unreadable, invalid, non-finite constants or nested
deeper than any esrprof file is, each one line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from esrprof.errors import ResultFileError

# No esrprof file nests deeper than a dozen levels; a deeper one is hostile or corrupt, and
# refusing it here spares every reader (and renderer) a RecursionError.
MAX_DEPTH = 64


def jsonable(value: Any) -> Any:
    """A value, or a nest of dicts, lists and records, made strict-JSON safe.

    Objects with ``to_dict()`` are expanded, tuples and sets become lists, numpy/torch scalars
    become Python numbers, non-finite floats and pandas' NA become ``None``, and strings lose
    lone surrogates (which no UTF-8 file can hold).
    """
    if isinstance(value, str):
        return _clean_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_clean_text(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, os.PathLike):
        return _clean_text(os.fspath(value))
    if hasattr(value, "item"):  # numpy / torch scalars
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    pd = sys.modules.get("pandas")  # a pandas NA can only come from a loaded pandas
    try:
        if pd is not None and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return _clean_text(str(value))


def _clean_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON of :func:`jsonable` ``(value)``."""
    return json.dumps(jsonable(value), indent=indent, ensure_ascii=False, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str, source: str = "<json>") -> Any:
    """Parse strict JSON; every failure is one ResultFileError line naming ``source``."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ResultFileError(f"{source}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise ResultFileError(f"{source}: not valid JSON ({exc})") from None
    check_depth(value, source)
    return value


def check_depth(value: Any, source: str = "<json>", limit: int = MAX_DEPTH) -> None:
    """Refuse containers nested deeper than ``limit`` (iteratively: never recurses itself)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise ResultFileError(f"{source}: JSON nested too deeply (more than {limit} levels)")
        stack.extend((child, depth + 1) for child in children)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read and parse a JSON file; missing, unreadable or invalid files are one line each."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ResultFileError(f"{p}: is a folder, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{p}: unreadable ({exc.__class__.__name__}: {exc})") from None
    return loads(text, str(p))


# ------------------------------------------------------------------- fields of a read file
# Readers of esrprof's files take their figures through these, so that a value that makes no
# sense (a string runtime, -5 ms, an infinite count) is one line naming the file and the field.


def number(value: Any, field: str, source: str, *, low: str = "non-negative",
           optional: bool = True, integer: bool = False) -> Any:
    """``value`` as a finite number, or None where ``optional``; anything else is refused.

    ``low`` is "positive" (a runtime), "non-negative" (counts, memory, PSNR) or "any".
    """
    if value is None:
        if optional:
            return None
        raise ResultFileError(f"{source}: {field} is missing")
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultFileError(f"{source}: {field} is {_shown(value)}, not {kind}")
    if integer and not isinstance(value, int):
        raise ResultFileError(f"{source}: {field} is {value!r}, not {kind}")
    if not math.isfinite(value):
        raise ResultFileError(f"{source}: {field} is {value!r}, not a finite number")
    if low == "positive" and value <= 0:
        raise ResultFileError(f"{source}: {field} is {value!r}; it must be positive")
    if low == "non-negative" and value < 0:
        raise ResultFileError(f"{source}: {field} is {value!r}; it must not be negative")
    return value


def text(value: Any, field: str, source: str, *, optional: bool = False) -> Any:
    """``value`` as a string (None where ``optional``); anything else is refused."""
    if value is None and optional:
        return None
    if value is None:
        raise ResultFileError(f"{source}: {field} is missing")
    if not isinstance(value, str):
        raise ResultFileError(f"{source}: {field} is {_shown(value)}, not a string")
    return value


def mapping(value: Any, field: str, source: str, *, optional: bool = False) -> dict[str, Any]:
    """``value`` as a JSON object ({} for a missing optional one)."""
    if value is None and optional:
        return {}
    if value is None:
        raise ResultFileError(f"{source}: {field} is missing")
    if not isinstance(value, dict):
        raise ResultFileError(f"{source}: {field} is {_shown(value)}, not an object")
    return value


def array(value: Any, field: str, source: str, *, optional: bool = False) -> list[Any]:
    """``value`` as a JSON array ([] for a missing optional one)."""
    if value is None and optional:
        return []
    if value is None:
        raise ResultFileError(f"{source}: {field} is missing")
    if not isinstance(value, list):
        raise ResultFileError(f"{source}: {field} is {_shown(value)}, not a list")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
