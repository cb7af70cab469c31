"""Writing output files without ever damaging what is already there.

A regular file is replaced atomically (a reader sees the old file or the new one, never half of
one) with the permissions a plain ``open(path, "w")`` would give: the existing file's mode, or
0666 less the umask for a new one. A symlink is written through to its target and stays a
symlink; a device node or pipe (``/dev/null``, ``/dev/stdout``) is written through and never
replaced. A target that is a folder, sits under a file or in a folder esrprof may not write to
is one :class:`~esrprof.errors.OutputError` line (exit 2).

A JSON file written to a path the user names (``--json``, ``-o``) goes through
:func:`write_json`: it carries a mark, the top-level ``esrprof_file`` key with its kind and the
SHA-256 of the file's own text, and an existing file is replaced only when it carries a mark
whose hash still matches (:func:`proven_file`), or with ``force``. A model's source, a note
called ``notes.json`` or a result someone edited by hand is never overwritten by accident.

A folder esrprof writes whole (a report) is built aside and swapped in by
:func:`replace_folder`. Only a folder esrprof can prove it wrote is ever replaced: its
``.esrprof-report`` manifest lists the SHA-256 of every file, and a folder holding any file not
listed, or changed since, is the user's and is refused. An interrupted swap is repaired by the next
run (:func:`recover_folder`), so the target always ends up holding the old folder or the new one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from esrprof.errors import OutputError, ResultFileError
from esrprof.jsonio import FILE_MARK, dumps, jsonable, loads, read_text

T = TypeVar("T")

MANIFEST = ".esrprof-report"  # in every folder esrprof wrote: the SHA-256 of each of its files
BUILDING = ".esrprof-building"  # in a folder being built: who builds it (pid, host)
_MANIFEST_KIND = "esrprof folder manifest"

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without leaving it changed)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _inspect(target: Path) -> os.stat_result | None:
    """What a write to ``target`` would reach (symlinks followed), or None when it is new;
    a folder or a path under a file is an OutputError."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"cannot write {target}: a parent of it is a file") from None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {target}: it is a folder")
    return info


def check_target(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Fail now, with the line a write would give later, if ``path`` cannot be written: a
    command checks its output path before minutes of work, not after.

    An existing regular file must be one esrprof provably wrote (:func:`proven_file`) unless
    ``force``.
    """
    target = Path(path)
    info = _inspect(target)
    if info is not None:
        if stat.S_ISREG(info.st_mode) and not os.access(target, os.W_OK):
            raise OutputError(f"cannot write {target}: permission denied")
        if stat.S_ISREG(info.st_mode) and not force:
            reason = proven_file(target)
            if reason is not None:
                raise OutputError(f"{target} exists and {reason}; nothing was changed: pass "
                                  "--force to replace it, or choose another path")
        return target
    folder = Path(os.path.realpath(target)).parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: a parent of it is a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: permission denied in that folder")
    return target


# ------------------------------------------------------------------- files esrprof can prove

_UNSIGNED = "0" * 64  # the hash's place while the hash is computed


def marked_json(doc: Any, kind: str) -> str:
    """``doc`` as JSON text that carries its mark: ``esrprof_file`` (last key) holds ``kind``
    and the SHA-256 of the text with the hash itself written as 64 zeros."""
    body = dict(jsonable(doc))
    body.pop(FILE_MARK, None)
    body[FILE_MARK] = {"kind": kind, "sha256": _UNSIGNED}
    text = dumps(body) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    head, _, tail = text.rpartition(_UNSIGNED)
    return head + digest + tail


def proven_file(path: str | os.PathLike[str]) -> str | None:
    """None when ``path`` is a JSON file esrprof wrote and nobody changed since (its mark's
    hash matches its text); otherwise why not, in a few words."""
    try:
        text = read_text(path)
        doc = loads(text, str(path))
    except ResultFileError:
        return "esrprof did not write it (it is not an esrprof JSON file)"
    mark = doc.get(FILE_MARK) if isinstance(doc, dict) else None
    digest = mark.get("sha256") if isinstance(mark, dict) else None
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        return "esrprof did not write it (it has no esrprof mark)"
    head, _, tail = text.rpartition(digest)
    if hashlib.sha256((head + _UNSIGNED + tail).encode("utf-8")).hexdigest() != digest:
        return "it changed since esrprof wrote it"
    return None


def write_json(path: str | os.PathLike[str], doc: Any, *, kind: str,
               force: bool = False) -> Path:
    """Write ``doc`` to ``path`` with its mark (:func:`marked_json`), safely (see
    :func:`write_text`); an existing file is replaced only when :func:`proven_file` proves
    esrprof wrote it, or with ``force``."""
    check_target(path, force=force)
    return write_text(path, marked_json(doc, kind))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` safely; returns the path as given."""
    target = Path(path)
    info = _inspect(target)
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_through(target, text)
        return target
    real = Path(os.path.realpath(target))  # a symlink stays; its target gets the new text
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~current_umask()
    _replace(real, text, mode, shown=target)
    return target


def _write_through(target: Path, text: str) -> None:
    try:
        with open(target, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def make_parent(path: Path, what: str) -> None:
    """Create the folder ``path`` goes in; ``what`` names it in the one-line error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write {what}: a parent of it is a file") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder of {what}: {exc.strerror or exc}") from None


def _replace(real: Path, text: str, mode: int, *, shown: Path) -> None:
    make_parent(real, str(shown))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        # A lone surrogate (an undecodable file name, a JSON \\udcff escape) cannot be
        # UTF-8: it is written as its escape rather than failing the whole output.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
        raise


def make_folder(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` with the umask's mode; a file in the way is one OutputError line."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot create the folder {folder}: a file is in the way") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    return folder


# ------------------------------------------------------------------- folders written whole


def replace_folder(target: str | os.PathLike[str], build: Callable[[Path], T]) -> T:
    """Run ``build(tmp)`` on a fresh sibling folder, then swap it in for ``target``.

    ``target`` may be missing, an empty folder, or a folder esrprof wrote and nobody changed
    since (see :func:`proven_folder`); anything else is refused before ``build`` runs. A symlink
    to a folder is written through. The new folder gets the replaced folder's mode, or the
    umask's. SIGINT and SIGTERM wait until the two renames of the swap are done; what a harder
    stop leaves behind is repaired by the next call.
    """
    shown = Path(target)
    final = Path(os.path.realpath(shown))
    make_folder(final.parent)
    recover_folder(final)
    mode = _usable_target(final, shown)
    tmp = _new_temporary(final, shown)
    try:
        result = build(tmp)
        write_manifest(tmp)
        _os_call(shown, os.chmod, tmp, mode)
        with deferred_signals():
            _os_call(shown, (tmp / BUILDING).unlink)
            old = _swap(tmp, final, shown)
        if old is not None:
            _remove_marked(old)
    finally:
        if tmp.exists():
            _remove_marked(tmp)
    return result


def recover_folder(target: str | os.PathLike[str]) -> None:
    """Repair what an interrupted :func:`replace_folder` on ``target`` left: a report moved aside
    goes back when ``target`` is missing, and temporaries of runs that are gone are removed.

    Only folders that carry esrprof's markers are touched; a folder of the user's that merely
    looks like one of ours is left alone. Best effort: a leftover that cannot be removed now is
    tried again next time.
    """
    final = Path(target)
    try:
        names = os.listdir(final.parent)
    except OSError:
        return
    escaped = re.escape(final.name)
    olds = [final.parent / n for n in names if re.fullmatch(rf"\.{escaped}\.old-[0-9a-f]{{8}}", n)]
    tmps = [final.parent / n for n in names if re.fullmatch(rf"\.{escaped}\.[A-Za-z0-9_]+\.tmp", n)]
    olds = [o for o in olds if o.is_dir() and not o.is_symlink()]
    try:
        if not os.path.lexists(final):
            whole = [o for o in olds if proven_folder(o, complete=True) is None]
            if whole:
                newest = max(whole, key=lambda o: (o / MANIFEST).stat().st_mtime)
                os.rename(newest, final)
                olds.remove(newest)
        for old in olds:
            # The manifest is removed last: a half-removed folder still has it, or is empty.
            if (old / MANIFEST).is_file() or not any(old.iterdir()):
                _remove_marked(old)
        for tmp in tmps:
            if tmp.is_dir() and not tmp.is_symlink() and _abandoned(tmp):
                _remove_marked(tmp)
    except OSError:
        pass


def proven_folder(folder: str | os.PathLike[str], *, complete: bool = False) -> str | None:
    """None when esrprof wrote ``folder`` and no file in it was added or changed since (with
    ``complete``, none removed either); otherwise why not, in a few words."""
    root = Path(folder)
    listed = _read_manifest(root)
    if listed is None:
        return f"it has no valid {MANIFEST} manifest"
    try:
        present = _files_in(root)
    except _Foreign as exc:
        return f"{exc} is not a file esrprof writes"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    for rel in sorted(present):
        if rel not in listed:
            return f"{rel} was not written by esrprof"
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            if complete:
                return f"{rel} is missing"
            continue
        try:
            if _sha256(root / rel) != digest:
                return f"{rel} changed since esrprof wrote it"
        except OSError as exc:
            return f"{rel} cannot be read ({exc.strerror or exc})"
    return None


def write_manifest(folder: str | os.PathLike[str]) -> Path:
    """Record the SHA-256 of every file under ``folder`` in its manifest."""
    root = Path(folder)
    try:
        listed = {rel: _sha256(root / rel) for rel in sorted(_files_in(root))}
    except (_Foreign, OSError) as exc:
        raise OutputError(f"cannot list {root}: {exc}") from None
    return write_text(root / MANIFEST, dumps({"kind": _MANIFEST_KIND, "files": listed}) + "\n")


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then deliver them.

    Outside the main thread Python cannot install handlers; the block then runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: it could not be restored
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(held):
            signal.raise_signal(sig)


class _Foreign(Exception):
    """A folder entry esrprof never writes (a symlink, a pipe, a device)."""


def _files_in(root: Path) -> set[str]:
    """Relative POSIX paths of the regular files under ``root``, markers excluded."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise _Foreign(rel)
            if rel not in (MANIFEST, BUILDING):
                out.add(rel)
    return out


def _raise(exc: OSError) -> None:
    raise exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(root: Path) -> dict[str, str] | None:
    try:
        doc = loads((root / MANIFEST).read_text(encoding="utf-8"), str(root / MANIFEST))
    except (OSError, UnicodeDecodeError, ResultFileError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != _MANIFEST_KIND:
        return None
    listed = doc.get("files")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in listed.items()
    ):
        return None
    return listed


def _usable_target(final: Path, shown: Path) -> int:
    """The mode the new folder gets; refuses a target that is not ours to replace."""
    try:
        info = os.stat(final)
    except FileNotFoundError:
        return 0o777 & ~current_umask()
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{shown}: exists and is not a folder")
    reason = _os_call(shown, lambda: None if not os.listdir(final) else proven_folder(final))
    if reason is not None:
        raise OutputError(
            f"{shown}: not empty and not written by esrprof as it is now ({reason}); nothing "
            "was changed: choose a new or empty folder"
        )
    return stat.S_IMODE(info.st_mode)


def _new_temporary(final: Path, shown: Path) -> Path:
    tmp = Path(_os_call(shown, tempfile.mkdtemp, prefix=f".{final.name}.", suffix=".tmp",
                        dir=final.parent))
    # Written in place (not via write_text): a temporary file of its own would be one more
    # thing a hard stop could leave behind.
    text = dumps({"pid": os.getpid(), "host": platform.node()}, indent=None)
    _os_call(shown, (tmp / BUILDING).write_text, text, encoding="utf-8")
    return tmp


def _abandoned(tmp: Path) -> bool:
    """Whether a temporary's run is gone: its builder died, or it was killed in mid-swap."""
    building = tmp / BUILDING
    if not building.exists():
        return (tmp / MANIFEST).is_file() or not any(tmp.iterdir())
    try:
        owner = loads(building.read_text(encoding="utf-8"), str(building))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, UnicodeDecodeError, ResultFileError, KeyError, TypeError, ValueError):
        return True  # killed while writing it: its run is gone
    if host != platform.node():
        return False  # another machine's run on a shared folder: it cannot be asked
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


def _swap(tmp: Path, final: Path, shown: Path) -> Path | None:
    """Rename ``tmp`` to ``final``; an existing non-empty ``final`` goes aside first and comes
    back when the second rename fails. Returns the folder set aside."""
    if not os.path.lexists(final) or not _os_call(shown, os.listdir, final):
        _os_call(shown, os.rename, tmp, final)  # onto an empty folder: one atomic rename
        return None
    old = final.parent / f".{final.name}.old-{secrets.token_hex(4)}"
    _os_call(shown, os.rename, final, old)
    try:
        os.rename(tmp, final)
    except OSError as exc:
        os.rename(old, final)
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    return old


def _remove_marked(folder: Path) -> None:
    """Remove an esrprof folder, its markers last: interrupted, it is still recognisably ours."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name in (MANIFEST, BUILDING):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        for marker in (MANIFEST, BUILDING):
            (folder / marker).unlink(missing_ok=True)
        os.rmdir(folder)
    except OSError:
        pass  # the next run tries again


def _os_call(shown: Path, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
