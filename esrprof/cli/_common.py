"""Pieces every subcommand shares."""

from __future__ import annotations

import argparse
import contextlib
import sys
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
    """``N,C,H,W`` (three dimensions or more, any rank), or the ``HxW`` shorthand for 1x3xHxW.

    Two comma-separated numbers are refused: ``1,3`` reads as an N,C prefix far more often than
    as a 1x3-pixel image, and an image of that size is no input to profile.
    """
    raw = text.lower().replace(" ", "")
    try:
        dims = tuple(int(d) for d in raw.replace("x", ",").split(",") if d)
    except ValueError:
        raise InputShapeError(f"--input-shape {text!r}: expected integers like 1,3,256,256") \
            from None
    if not dims or any(d <= 0 for d in dims):
        raise InputShapeError(f"--input-shape {text!r}: dimensions must be positive")
    if len(dims) == 2 and "," not in raw:
        return (1, 3, *dims)
    if len(dims) < 3:
        raise InputShapeError(f"--input-shape {text!r}: give N,C,H,W (or HxW for 1x3xHxW)")
    return dims


def add_challenge_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--challenge NAME``: the NTIRE year whose rules a command follows (default the latest).
    An unknown name is one usage line listing the names (checked by the command)."""
    from esrprof.challenges.base import CHALLENGE_NAMES

    parser.add_argument(
        "--challenge", default=None, metavar="NAME",
        help=f"the challenge year whose rules to follow: {', '.join(CHALLENGE_NAMES)} "
        f"(default: {default or 'the latest, ' + CHALLENGE_NAMES[-1]}; see docs/challenges.md)")


def warn(message: str) -> None:
    """One warning line on stderr (the CLI's; the library never prints)."""
    print(f"esrprof: warning: {message}", file=sys.stderr)


def add_force(parser: argparse.ArgumentParser, what: str = "the output file") -> None:
    """``--force``: replace an existing file esrprof cannot prove it wrote (``what``)."""
    parser.add_argument("--force", action="store_true",
                        help=f"replace {what} even when esrprof did not write it (without "
                        "it, only a file esrprof wrote and nobody changed is replaced)")


# ------------------------------------------------------------------------ the output streams

# What a terminal that cannot show a character gets instead (PYTHONIOENCODING=ascii, a
# Latin-1 console): the card stays readable rather than failing on its first "ρ".
ASCII_FALLBACKS = {
    "ρ": "rho", "τ": "tau", "²": "^2", "³": "^3", "×": "x", "—": "--", "–": "-", "−": "-",
    "…": "...", "µ": "u", "μ": "u", "≈": "~", "≥": ">=", "≤": "<=", "±": "+/-", "→": "->",
    "←": "<-", "·": "*", "°": " deg", "\u00a0": " ", "‘": "'", "’": "'", "“": '"', "”": '"',
    "✓": "ok", "✗": "x", "Δ": "delta",
}
_FALLBACK_ERRORS = "esrprof-fallback"


def _fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    import unicodedata

    out = []
    for ch in exc.object[exc.start:exc.end]:
        plain = ASCII_FALLBACKS.get(ch)
        if plain is None:  # é -> e; anything with no ASCII letter in it -> ?
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
        out.append(plain)
    return "".join(out), exc.end


def prepare_streams() -> None:
    """Let stdout and stderr write what their encoding cannot hold as ASCII fallbacks
    (:data:`ASCII_FALLBACKS`) instead of raising UnicodeEncodeError mid-card. Under an ASCII
    locale (``LC_ALL=C``) Python writes UTF-8 all the same (its automatic UTF-8 mode); unless
    the user asked for an encoding (PYTHONIOENCODING, PYTHONUTF8=1), esrprof writes what that
    locale can show."""
    import codecs

    try:
        codecs.lookup_error(_FALLBACK_ERRORS)
    except LookupError:
        codecs.register_error(_FALLBACK_ERRORS, _fallback)
    ascii_locale = _ascii_locale()
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        with contextlib.suppress(ValueError, OSError, LookupError):  # a stream that cannot
            if ascii_locale:
                reconfigure(encoding="ascii", errors=_FALLBACK_ERRORS)
            elif encoding not in ("utf-8", "utf8"):
                reconfigure(errors=_FALLBACK_ERRORS)


def _ascii_locale() -> bool:
    """Whether the locale says ASCII (C, POSIX) and the user asked for no encoding."""
    import locale
    import os

    if os.environ.get("PYTHONIOENCODING") or os.environ.get("PYTHONUTF8") == "1":
        return False
    try:
        codeset = locale.nl_langinfo(locale.CODESET)
    except (AttributeError, ValueError):  # pragma: no cover - not on POSIX
        return False
    return codeset.upper().replace("_", "-") in ("ANSI-X3.4-1968", "ASCII", "US-ASCII")


def flush_stdout() -> str | None:
    """Flush stdout; when it cannot be written (``> /dev/full``, a closed pipe, a full disk),
    say why in a few words and point it at /dev/null so that nothing is retried (and no
    "Exception ignored" traceback follows at exit)."""
    try:
        sys.stdout.flush()
        return None
    except BrokenPipeError:
        silence_stdout()
        return ""
    except OSError as exc:
        silence_stdout()
        return exc.strerror or str(exc)


def silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
