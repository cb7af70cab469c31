"""Pieces every subcommand shares."""

from __future__ import annotations

import argparse
from typing import Any

from esrprof.errors import InputShapeError


def add_command(sub: Any, name: str, help: str, description: str | None = None):
    """A subparser that also accepts ``--debug`` after the command name."""
    parser = sub.add_parser(name, help=help, description=description or help)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    return parser


# Options whose value is optional ("--per-layer" or "--per-layer 5"): argparse would take the
# model spec after them for their value, so main() rewrites a bare one to "--per-layer=CONST".
OPTIONAL_VALUES: dict[str, str] = {}


def add_optional_int(parser: argparse.ArgumentParser, flag: str, *, const: int, metavar: str,
                     help: str) -> None:
    """An option that may be given alone (meaning ``const``) or with an integer."""
    OPTIONAL_VALUES[flag] = str(const)
    parser.add_argument(flag, nargs="?", type=positive_int(flag), const=const, default=None,
                        metavar=metavar, help=help)


def positive_int(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number, got {text!r}") \
                from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{flag} takes a positive number, got {value}")
        return value

    return parse


def expand_optional_values(argv: list[str]) -> list[str]:
    """``--per-layer model.py:Net`` -> ``--per-layer=15 model.py:Net``: a bare optional-value
    flag followed by anything that is not a number keeps its default."""
    out = []
    for i, token in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if token in OPTIONAL_VALUES and (nxt is None or not nxt.lstrip("-").isdigit()):
            token = f"{token}={OPTIONAL_VALUES[token]}"
        out.append(token)
    return out


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    spec_help: str = "FILE.py:Class or package.module:Class",
    spec_default: str | None = None,
    kwargs_help: str = "constructor arguments as a JSON object",
    input_shape_default: str | None = "1,3,256,256",
    input_shape_help: str = "input shape (default 1,3,256,256, the challenge's)",
) -> None:
    """The model spec and the options that build it, alike for every command that loads one."""
    if spec_default is None:
        parser.add_argument("spec", help=spec_help)
    else:
        parser.add_argument("spec", nargs="?", default=spec_default,
                            help=f"{spec_help} (default: {spec_default})")
    parser.add_argument("--kwargs", default=None, metavar="JSON", help=kwargs_help)
    parser.add_argument("--weights", default=None, metavar="CKPT",
                        help="checkpoint loaded with torch.load(weights_only=True), strict=True")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow a checkpoint that needs pickle (only for files you trust)")
    parser.add_argument("--input-shape", default=input_shape_default, metavar="N,C,H,W",
                        help=input_shape_help)


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,256,256`` (any rank), or ``HxW`` / ``H,W`` shorthand for 1x3xHxW."""
    raw = text.lower().replace("x", ",").replace(" ", "")
    try:
        dims = tuple(int(d) for d in raw.split(",") if d)
    except ValueError:
        raise InputShapeError(f"--input-shape {text!r}: expected integers like 1,3,256,256") \
            from None
    if not dims or any(d <= 0 for d in dims):
        raise InputShapeError(f"--input-shape {text!r}: dimensions must be positive")
    if len(dims) == 2:
        dims = (1, 3, *dims)
    return dims


def add_challenge_argument(parser: argparse.ArgumentParser) -> None:
    """``--challenge NAME``: the NTIRE year whose rules a command follows (default the latest).
    An unknown name is one usage line listing the names (checked by the command)."""
    from esrprof.challenges.base import CHALLENGE_NAMES

    parser.add_argument(
        "--challenge", default=None, metavar="NAME",
        help=f"the challenge year whose rules to follow: {', '.join(CHALLENGE_NAMES)} "
        f"(default: the latest, {CHALLENGE_NAMES[-1]}; see docs/challenges.md)")
