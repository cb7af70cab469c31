"""``esrprof zoo fetch NAME``: download a reference model's released checkpoint and verify it.

The file goes to a temporary name beside the target while its sha256 is computed, and takes its
name only when the digest is the expected one, never over an existing file: an interrupted or
corrupt download leaves nothing behind, and nothing the user had is replaced. No torch here.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from esrprof.errors import EsrprofError, OutputError, UsageError
from esrprof.files import current_umask, make_parent
from esrprof.zoo.registry import REGISTRY, ReferenceModel, get, released_weights

SCHEMES = ("https", "http", "file")
_CHUNK = 1 << 20


class FetchError(EsrprofError):
    """The download failed or its sha256 is not the expected one (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Fetched:
    model: ReferenceModel
    path: Path
    url: str
    sha256: str
    size: int


def _model(name: str) -> ReferenceModel:
    try:
        return get(name)
    except KeyError:
        raise UsageError(f"no reference model named {name!r}; known: {', '.join(REGISTRY)}") \
            from None


def _digest(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text.strip()):
        raise UsageError(f"--sha256 takes 64 hexadecimal digits, got {text!r}")
    return text.strip().lower()


def plan(name: str, output: str | os.PathLike[str] | None = None, *, url: str | None = None,
         sha256: str | None = None) -> tuple[ReferenceModel, str, str, Path]:
    """What a fetch would do (model, URL, expected sha256, target), every usage error raised
    before anything is downloaded."""
    model = _model(name)
    released = released_weights(model.name)
    source = url or (released.url if released else None)
    if source is None:
        raise UsageError(f"no released checkpoint of {model.name} is known: pass --url")
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme not in SCHEMES:
        raise UsageError(f"--url {source!r}: only {', '.join(SCHEMES)} URLs are fetched")
    expected = sha256 if sha256 is not None else (released.sha256 if released else None)
    if expected is None:
        raise UsageError(
            f"the sha256 of {model.name}'s released checkpoint is unknown (its publisher states "
            "none): pass --sha256 HEX, from a copy you trust, to verify the download"
        )
    expected = _digest(expected)
    file_name = (released.file_name if released and url is None
                 else Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path)).name)
    target = Path(output) if output is not None else Path(file_name or f"{model.name}.pth")
    if output is not None and target.is_dir():
        target = target / (file_name or f"{model.name}.pth")
    if os.path.lexists(target):
        raise OutputError(f"{target} exists: esrprof zoo fetch never replaces a file (remove "
                          "it, or name another with -o)")
    return model, source, expected, target


def fetch(name: str, output: str | os.PathLike[str] | None = None, *, url: str | None = None,
          sha256: str | None = None, timeout: float = 60.0) -> Fetched:
    """Download ``name``'s released checkpoint (or ``url``) to ``output`` (default: its file
    name in the current folder) and verify its sha256 (``sha256``, else the registry's)."""
    model, source, expected, target = plan(name, output, url=url, sha256=sha256)
    make_parent(target, str(target))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        digest, size = _download(source, fd, timeout)
        if digest != expected:
            raise FetchError(f"{source}: sha256 {digest} is not the expected {expected}; "
                             "nothing was written")
        os.chmod(tmp, 0o666 & ~current_umask())
        _place(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return Fetched(model, target, source, digest, size)


def _download(source: str, fd: int, timeout: float) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"cannot download {source}: HTTP {exc.code} {exc.reason}") \
                from None
        except urllib.error.URLError as exc:
            raise FetchError(f"cannot download {source}: {_reason(exc.reason)}") from None
        except (OSError, ValueError) as exc:
            raise FetchError(f"cannot download {source}: {_reason(exc)}") from None
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason).splitlines()[0] if str(reason) else type(reason).__name__


def _place(tmp: Path, target: Path) -> None:
    """Give the verified file its name, failing (not replacing) if the name was taken since."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(f"{target} exists: esrprof zoo fetch never replaces a file") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(target):
            raise OutputError(f"{target} exists: esrprof zoo fetch never replaces a file") \
                from None
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
