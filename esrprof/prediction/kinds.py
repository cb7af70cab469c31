"""How predicted time is grouped: re-exported from :mod:`esrprof.kinds`, the one vocabulary of op
kinds (no torch import: the report reads these too)."""

from __future__ import annotations

from esrprof.kinds import DEFAULT_GROUP, FLOOR, GROUP_OF, TIME_GROUPS, TIME_KINDS

GROUPS = TIME_GROUPS
KINDS = TIME_KINDS

__all__ = ["DEFAULT_GROUP", "FLOOR", "GROUPS", "GROUP_OF", "KINDS"]
