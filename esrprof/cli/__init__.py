"""The ``esrprof`` command: parse, call the library, render, map errors to exit codes.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. No subcommand holds measuring logic of its own.

Fast doors: a command module imports, at its top, only modules that do not import torch
(argparse, ``_common``, ``errors``, ``files``, ``jsonio``, ``specs``, ``extras``, ...). Its
``func`` first runs every check that needs no model (shapes, specs, ``--kwargs``, files, names),
then imports the work. So ``esrprof --help``, every ``--help`` and every usage error answer
without torch; tests/test_fast_doors.py holds each command to it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from esrprof._version import __version__
from esrprof.cli._common import expand_optional_values
from esrprof.errors import EsrprofError, describe

# Each is esrprof.cli.<name>, torch-free at import (see above).
COMMANDS = ("profile", "zoo", "report", "gate", "baseline")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, minus usage
        self.exit(2, f"esrprof: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="esrprof",
        description="Efficiency profiler for PyTorch super-resolution models (NTIRE ESR protocol).",
    )
    parser.add_argument("--version", action="version", version=f"esrprof {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"esrprof.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"esrprof.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(expand_optional_values(argv))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except EsrprofError as exc:
        if args.debug:
            raise
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # the reader went away (`esrprof ... | head`): nothing left to say, and nobody to say it to
        _silence_stdout()
        return 0
    except SystemExit as exc:
        # argparse is done by now: a SystemExit here comes from user code (a model, a baseline's
        # source) that a door did not catch. It must not decide esrprof's exit code.
        if args.debug:
            raise
        return _fail(f"user code called sys.exit({exc.code!r})", 1)
    except Exception as exc:  # a failure no door turned into an EsrprofError
        if args.debug:
            raise
        return _fail(f"{describe(exc)} (run with --debug for the traceback)", 1)


def _fail(message: str, code: int) -> int:
    with contextlib.suppress(BrokenPipeError, OSError):
        print(f"esrprof: error: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
