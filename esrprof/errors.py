"""Typed errors. The library raises these; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class EsrprofError(Exception):
    """Base of every error esrprof raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(EsrprofError):
    """The user asked for something malformed (bad option value, unknown spec form)."""

    exit_code = 2


class SpecError(UsageError):
    """A ``file.py:Class`` or ``package.module:Class`` spec that cannot be resolved."""


class ModelError(EsrprofError):
    """The user's model failed: constructor, forward, or an incompatible input."""

    exit_code = 1


class CheckpointError(ModelError):
    """A checkpoint that cannot be read, needs pickle, or does not fit the model."""


class InputShapeError(UsageError):
    """An input shape that is not a list of positive integers."""


class ResultFileError(EsrprofError):
    """A result, baseline or table file that is unreadable, corrupt or from a newer schema."""

    exit_code = 2


class DataError(EsrprofError):
    """An image set that cannot be used (missing folder, no readable image)."""

    exit_code = 2


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, for one-line error reports."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit]


def about(path: object, exc: BaseException) -> str:
    """``Type: message`` of an error about ``path``, the path itself left out of the message
    (the line names it once, before this): one path per message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    for shown in (f"'{path}'", f'"{path}"', str(path)):
        text = text.replace(shown, "it")
    return f"{type(exc).__name__}: {text}"


class OutputError(UsageError):
    """An output path that cannot be written safely (a folder, under a file, read-only)."""


# What user code (a model module, constructor, forward, a stored baseline source) may raise that
# esrprof must turn into a ModelError: ``sys.exit(0)`` in a model must never read as success.
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def user_code_failed(what: str, exc: BaseException) -> ModelError:
    """The one-line ModelError for a failure inside user code (``SystemExit`` included)."""
    if isinstance(exc, SystemExit):
        return ModelError(f"{what} called sys.exit({exc.code!r})")
    return ModelError(f"{what} failed: {describe(exc)}")
