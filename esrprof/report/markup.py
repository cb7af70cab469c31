"""Text from the inputs (model names, hardware, notes) made literal for the file it lands in.

HTML gets entities (``html.escape``). Markdown gets the same entities, for the renderers that
pass HTML through, plus a backslash before each character Markdown reads as syntax: ``|`` would
split a table cell, ``[``, ``*`` and backticks would start a link, emphasis or code. Line breaks
become spaces, so a name cannot end a table row or start a block.
"""

from __future__ import annotations

import html
import re
from typing import Any

_MARKDOWN_SYNTAX = re.compile(r"([\\|*\[\]`])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def md_text(value: Any) -> str:
    """``value`` as literal Markdown text on one line."""
    text = html.escape(_CONTROL.sub(" ", str(value)), quote=False)
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def md_plain(text: str) -> str:
    """The literal text of :func:`md_text` output (and of Markdown prose without escapes)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))
