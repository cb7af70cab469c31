"""JSON in and out, one way for every file esrprof reads or writes.

Everything esrprof writes is strict JSON (no NaN or Infinity: a missing value is ``null``), and
everything it reads is checked the same way: unreadable, invalid, non-finite constants or nested
deeper than any esrprof file is, each one line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

from esrprof.errors import ResultFileError

# No esrprof file nests deeper than a dozen levels; a deeper one is hostile or corrupt, and
# refusing it here spares every reader (and renderer) a RecursionError.
MAX_DEPTH = 64
# No file esrprof reads is near this size (a result with every layer of a large model is a few
# MB); a bigger one is refused from its size, before a byte of it is read.
MAX_READ_BYTES = 64 << 20
# The top-level key of every JSON file esrprof writes to a path the user names: its kind and
# the SHA-256 that proves esrprof wrote it (see esrprof.files.write_json). Readers never see it.
FILE_MARK = "esrprof_file"
# The largest figure (ms, MiB, TFLOPS, seconds, dB) a record may hold: far beyond any real one,
# far enough below the float range that sums, ratios and exponents of figures stay finite.
MAX_FIGURE = 1e12
# The largest count (MACs, bytes, kernels): what an int64 column holds.
MAX_COUNT = 2**63 - 1


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


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_READ_BYTES, *,
               head: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is one line.
    With ``head``, the first ``limit`` bytes of a regular file of any size.

    The file is opened without blocking (a FIFO nobody writes to is refused, not waited on) and
    its type and size are checked on the open descriptor before reading: a pipe, a device such
    as /dev/zero, a folder or a 2 GB file costs one ``fstat``, not the memory of its contents.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise ResultFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ResultFileError(f"{p}: is a folder, not a file") from None
    except OSError as exc:
        raise ResultFileError(f"{p}: unreadable ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ResultFileError(f"{p}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ResultFileError(f"{p}: is {_file_kind(info.st_mode)}, not a regular file; "
                                  "esrprof reads only regular files")
        if info.st_size > limit and not head:
            raise ResultFileError(f"{p}: {info.st_size / 2**20:.0f} MiB is more than the "
                                  f"{limit / 2**20:.0f} MiB esrprof reads")
        chunks, size = [], 0
        while size <= limit:  # a file that grows while it is read is still capped
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit and head:
            return b"".join(chunks)[:limit]
        if size > limit:
            raise ResultFileError(f"{p}: more than the {limit / 2**20:.0f} MiB esrprof reads")
        return b"".join(chunks)
    except OSError as exc:
        raise ResultFileError(f"{p}: unreadable ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def read_text(path: str | os.PathLike[str], limit: int = MAX_READ_BYTES) -> str:
    """:func:`read_bytes`, decoded as UTF-8 (a byte-order mark dropped)."""
    try:
        return read_bytes(path, limit).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{Path(path)}: not UTF-8 text (byte {exc.start})") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read and parse a JSON file (a regular file, size-capped: :func:`read_bytes`); missing,
    unreadable or invalid files are one line each. The mark esrprof writes is dropped."""
    value = loads(read_text(path), str(Path(path)))
    if isinstance(value, dict):
        value.pop(FILE_MARK, None)
    return value


# ------------------------------------------------------------------- fields of a read file
# Readers of esrprof's files take their figures through these, so that a value that makes no
# sense (a string runtime, -5 ms, an infinite count) is one line naming the file and the field.


def number(value: Any, field: str, source: str, *, low: str = "non-negative",
           optional: bool = True, integer: bool = False, high: float | None = None) -> Any:
    """``value`` as a finite number, or None where ``optional``; anything else is refused.

    ``low`` is "positive" (a runtime), "non-negative" (counts, memory, PSNR), "share" (a
    fraction, 0 to 1) or "any". Figures are at most :data:`MAX_FIGURE` (counts
    :data:`MAX_COUNT`) in size, or ``high`` where given.
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
    if low in ("non-negative", "share") and value < 0:
        raise ResultFileError(f"{source}: {field} is {value!r}; it must not be negative")
    if high is None:
        high = 1.0 + 1e-9 if low == "share" else MAX_COUNT if integer else MAX_FIGURE
    if abs(value) > high:
        what = "a share of at most 1" if low == "share" else f"at most {high:g}"
        raise ResultFileError(f"{source}: {field} is {value!r}; it must be {what}")
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
