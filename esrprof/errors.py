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
