"""Terminal text that fits: the width to write for, tables narrowed to it, prose wrapped to it.

Every command's human output goes through these: 80 columns by default (and whenever the output
is not a terminal), the terminal's width when it is wider (``shutil.get_terminal_size``, which
honours ``COLUMNS``). Pure functions of text; nothing here measures anything.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

DEFAULT_WIDTH = 80
MIN_WIDTH = 40


def width() -> int:
    """The columns to write for: ``COLUMNS`` or the terminal's width, 80 when neither is
    known (a pipe, a file), never under 40."""
    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def _visible(line: str) -> int:
    """A line's length as ``awk 'length > 80'`` (mawk) measures it: UTF-8 bytes, so that a
    line with ρ or × counts those twice. Never less than what a terminal shows."""
    return len(line.encode("utf-8", "replace"))


def wrap_line(line: str, cols: int) -> list[str]:
    """One line wrapped to ``cols``, continuation lines indented two more than the first;
    a number stays with its unit ("9.43 G")."""
    if _visible(line) <= cols:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    glued = re.sub(r"(\d) ([GMK%]|MiB|ms|dB)\b", "\\1\u00a0\\2", line.strip())
    extra = _visible(line) - len(line)  # bytes beyond one per character
    lines = textwrap.wrap(glued, width=max(20, cols - extra), initial_indent=" " * indent,
                          subsequent_indent=" " * (indent + 2), break_on_hyphens=False,
                          break_long_words=True)
    return [x.replace("\u00a0", " ") for x in lines] or [""]


def fit(text: str, cols: int | None = None) -> str:
    """Every line of ``text`` within ``cols`` (default :func:`width`): longer lines wrapped."""
    cols = cols or width()
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(wrap_line(line, cols))
    return "\n".join(out)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, cols: int | None = None,
          wrap: Sequence[int] = (), colalign: Sequence[str] | None = None) -> str:
    """A plain table (tabulate's "simple") within ``cols``: the columns in ``wrap`` (by index)
    are narrowed, their cells wrapped, until it fits (or they reach 8 characters)."""
    from tabulate import tabulate

    cols = cols or width()
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    kwargs: dict[str, Any] = {"tablefmt": "simple", "disable_numparse": True}
    if colalign:
        kwargs["colalign"] = tuple(colalign)
    limits: list[int | None] = [None] * len(headers)

    def render() -> str:
        return tabulate(rows, headers=list(headers), maxcolwidths=limits, **kwargs)

    text = render()
    for _ in range(12):
        over = widest(text) - cols
        if over <= 0 or not wrap:
            break
        current = {i: max([len(s) for r in rows for s in str(r[i]).split("\n")]
                          + [len(x) for x in str(headers[i]).split("\n")] + [1])
                   if limits[i] is None else limits[i] for i in wrap}
        wide = max(wrap, key=lambda i: current[i])
        if current[wide] <= 8:
            break
        limits[wide] = max(8, current[wide] - over)
        text = render()
    return text


def widest(text: str) -> int:
    """The longest line of ``text``, as :func:`_visible` measures it."""
    return max((_visible(x) for x in text.split("\n")), default=0)


__all__ = ["DEFAULT_WIDTH", "fit", "table", "widest", "width", "wrap_line"]
