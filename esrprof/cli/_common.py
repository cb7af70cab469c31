"""Pieces every subcommand shares."""

from __future__ import annotations

import argparse
from typing import Any


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
