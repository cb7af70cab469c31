"""The ``esrprof`` command: parse, call the library, render, map errors to exit codes.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. No subcommand holds measuring logic of its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from esrprof._version import __version__
from esrprof.errors import EsrprofError

# Imported lazily by name so that `esrprof --help` does not pay for torch, pandas or matplotlib.
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except EsrprofError as exc:
        if args.debug:
            raise
        print(f"esrprof: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("esrprof: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
