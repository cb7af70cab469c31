"""Text from the inputs (model names, hardware, notes) made literal for the file it lands in.

HTML gets entities (``html.escape``). Markdown gets the same entities, for the renderers that
pass HTML through, plus a backslash before each character Markdown reads as syntax: ``|`` would
split a table cell, ``[``, ``*`` and backticks would start a link, emphasis or code. Line breaks
become spaces, so a name cannot end a table row or start a block.

Names read from the inputs pass :func:`clean_name` first, for every file alike (HTML, SVG,
Markdown, CSV, JSON): control characters (NUL included: it makes an SVG invalid) become
spaces and the bidi controls that can reorder what a reader sees are removed. A CSV cell that a
spreadsheet would read as a formula is written as text (:func:`csv_cell`).
"""

from __future__ import annotations

import html
import re
from typing import Any

from esrprof.extras import require

_MARKDOWN_SYNTAX = re.compile(r"([\\|*\[\]`])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# C0 and C1 controls, and the line and paragraph separators.
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides, isolates and marks; the zero-width no-break space (BOM).
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# What starts a formula in Excel, LibreOffice or Google Sheets (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def clean_name(value: Any) -> Any:
    """A name (model, hardware, file) with control characters as single spaces, bidi controls
    removed and the ends stripped; anything not a string is returned as it is."""
    if not isinstance(value, str):
        return value
    text = _BIDI.sub("", value)
    text = _NAME_CONTROL.sub(" ", text)
    return text.encode("utf-8", "replace").decode("utf-8").strip()


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: a string that starts like a formula (``=``, ``+``,
    ``-``, ``@``, a tab or a line break, or their full-width forms) gets a leading ``'``, as
    spreadsheet-safe writers do; a plain number written as text, and anything not a string, is
    returned as it is."""
    if (isinstance(value, str) and value.startswith(_FORMULA_START)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def csv_frame(frame: Any) -> Any:
    """A copy of a DataFrame with every text cell through :func:`csv_cell` (and the headers)."""
    types = require("pandas.api.types", "the report")
    out = frame.copy()
    for column in out.columns:
        if types.is_object_dtype(out[column]) or types.is_string_dtype(out[column]):
            out[column] = out[column].map(csv_cell).astype(object)
    return out.rename(columns=lambda c: csv_cell(c) if isinstance(c, str) else c)


def md_text(value: Any) -> str:
    """``value`` as literal Markdown text on one line."""
    text = html.escape(_CONTROL.sub(" ", str(value)), quote=False)
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def md_plain(text: str) -> str:
    """The literal text of :func:`md_text` output (and of Markdown prose without escapes)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))
