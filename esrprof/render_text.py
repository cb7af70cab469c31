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


def _cell_lines(text: str, limit: int | None) -> list[str]:
    lines = str(text).split("\n")
    if limit is None:
        return lines
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, width=limit, break_on_hyphens=False) or [""])
    return out


def simple(rows: Sequence[Sequence[Any]], headers: Sequence[str],
           colalign: Sequence[str] | None = None, limits: Sequence[int | None] | None = None,
           gap: int = 2) -> str:
    """A plain table like tabulate's "simple" format, without its extra padding: columns as
    wide as their widest line, ``gap`` spaces between, a dashed rule under the (possibly
    multi-line) headers; cells of a column with a limit wrapped to it."""
    n = len(headers)
    limits = list(limits) if limits is not None else [None] * n
    align = list(colalign) if colalign else ["left"] * n
    head = [_cell_lines(h, None) for h in headers]
    body = [[_cell_lines("" if c is None else str(c), limits[i]) for i, c in enumerate(r)]
            for r in rows]
    widths = [max([len(x) for x in head[i]] + [len(x) for r in body for x in r[i]] + [1])
              for i in range(n)]

    def lines_of(cells: list[list[str]], top: bool = False) -> list[str]:
        height = max(len(c) for c in cells)
        out = []
        for k in range(height):
            parts = []
            for i, c in enumerate(cells):
                # headers sit at the bottom of their block, cells at the top
                j = k - (height - len(c)) if top else k
                text_ = c[j] if 0 <= j < len(c) else ""
                parts.append(text_.rjust(widths[i]) if align[i] == "right"
                             else text_.ljust(widths[i]))
            out.append((" " * gap).join(parts).rstrip())
        return out

    lines = lines_of(head, top=True)
    lines.append((" " * gap).join("-" * w for w in widths))
    for r in body:
        lines.extend(lines_of(r))
    return "\n".join(lines)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, cols: int | None = None,
          wrap: Sequence[int] = (), colalign: Sequence[str] | None = None) -> str:
    """A plain table (:func:`simple`) within ``cols``: the columns in ``wrap`` (by index) are
    narrowed, their cells wrapped, until it fits (or they reach 8 characters)."""
    cols = cols or width()
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    limits: list[int | None] = [None] * len(headers)

    def render() -> str:
        return simple(rows, headers, colalign, limits)

    text = render()
    for _ in range(40):
        over = widest(text) - cols
        if over <= 0 or not wrap:
            break
        current = {i: max([len(s) for r in rows for s in str(r[i]).split("\n")]
                          + [len(x) for x in str(headers[i]).split("\n")] + [1])
                   if limits[i] is None else limits[i] for i in wrap}
        wide = max(wrap, key=lambda i: current[i])
        if current[wide] <= 8:
            break
        limits[wide] = max(8, current[wide] - max(1, over))
        text = render()
    return text


def widest(text: str) -> int:
    """The longest line of ``text``, as :func:`_visible` measures it."""
    return max((_visible(x) for x in text.split("\n")), default=0)


__all__ = ["DEFAULT_WIDTH", "fit", "simple", "table", "widest", "width", "wrap_line"]
