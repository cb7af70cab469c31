"""The peer counters a user can ask for (``--counters``), checked without importing torch.

The counters themselves live in ``peers`` (they need torch, fvcore and thop); this module only
knows their names, so the command line refuses a typo before it loads anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from esrprof.errors import UsageError
from esrprof.extras import check

# name -> the module it needs (from the [peers] extra); ``peers.PEERS`` has one adapter each
PEER_MODULES = {"fvcore": "fvcore", "thop": "thop"}


def parse_counters(text: str | Iterable[str]) -> tuple[str, ...]:
    """'fvcore,thop', 'all' or a list -> validated names."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if names == ["all"]:
        return tuple(PEER_MODULES)
    unknown = [n for n in names if n not in PEER_MODULES]
    if unknown:
        raise UsageError(
            f"unknown counter {unknown[0]!r}; choose from {', '.join(PEER_MODULES)}, all"
        )
    for name in names:  # a missing extra is said now, not as a note after the count
        check(PEER_MODULES[name], f"--counters {name}")
    return tuple(dict.fromkeys(names))
