"""Writing output files without ever damaging what is already there.

A regular file is replaced atomically (a reader sees the old file or the new one, never half of
one) with the permissions a plain ``open(path, "w")`` would give: the existing file's mode, or
0666 less the umask for a new one. A symlink is written through to its target and stays a
symlink; a device node or pipe (``/dev/null``, ``/dev/stdout``) is written through and never
replaced. A target that is a folder, sits under a file or in a folder esrprof may not write to
is one :class:`~esrprof.errors.OutputError` line (exit 2).
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

from esrprof.errors import OutputError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without leaving it changed)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` safely; returns the path as given."""
    target = Path(path)
    try:
        info = os.stat(target)  # follows symlinks: what a write would reach
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise OutputError(f"cannot write {target}: a parent of it is a file") from None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {target}: it is a folder")
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_through(target, text)
        return target
    real = Path(os.path.realpath(target))  # a symlink stays; its target gets the new text
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~current_umask()
    _replace(real, text, mode, shown=target)
    return target


def _write_through(target: Path, text: str) -> None:
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def _replace(real: Path, text: str, mode: int, *, shown: Path) -> None:
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write {shown}: a parent of it is a file") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder of {shown}: {exc.strerror or exc}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
        raise
