"""The rules of each NTIRE Efficient SR challenge year, as plain data with their sources.

    >>> import esrprof
    >>> rules = esrprof.challenge("ntire2026")
    >>> rules.baseline.published.runtime_ms, rules.score.weights
    (7.74, (0.8, 0.1, 0.1))

One module per year; ``LATEST`` is the year users compete under now and every door's default.
This package imports no torch and nothing that computes: the rooms that compute read it.
"""

from __future__ import annotations

from esrprof.challenges import ntire2022, ntire2023, ntire2024, ntire2025, ntire2026
from esrprof.challenges.base import (
    CHALLENGE_NAMES,
    CONVENTIONS,
    TRACKS,
    Baseline,
    Challenge,
    ChallengeName,
    Convention,
    Counting,
    DataLayout,
    Hardware,
    Preset,
    PsnrThreshold,
    Published,
    RunProtocol,
    ScoreRule,
    Source,
    SplitLayout,
    Track,
    TrackRule,
)
from esrprof.errors import UsageError

CHALLENGES: dict[str, Challenge] = {
    m.RULES.name: m.RULES for m in (ntire2022, ntire2023, ntire2024, ntire2025, ntire2026)
}
LATEST: Challenge = ntire2026.RULES
LATEST_NAME: str = LATEST.name


def names() -> tuple[str, ...]:
    return tuple(CHALLENGES)


def challenge(name: str | Challenge | None = None) -> Challenge:
    """The rules of one year: ``"ntire2026"`` (also ``"2026"``, any case); None: the latest."""
    if name is None:
        return LATEST
    if isinstance(name, Challenge):
        return name
    key = str(name).strip().lower()
    if key.isdigit():
        key = f"ntire{key}"
    if key not in CHALLENGES:
        raise UsageError(f"unknown challenge {name!r}; choose from {', '.join(CHALLENGES)}")
    return CHALLENGES[key]


__all__ = [
    "CHALLENGES",
    "CHALLENGE_NAMES",
    "CONVENTIONS",
    "LATEST",
    "LATEST_NAME",
    "TRACKS",
    "Baseline",
    "Challenge",
    "ChallengeName",
    "Convention",
    "Counting",
    "DataLayout",
    "Hardware",
    "Preset",
    "PsnrThreshold",
    "Published",
    "RunProtocol",
    "ScoreRule",
    "Source",
    "SplitLayout",
    "Track",
    "TrackRule",
    "challenge",
    "names",
]
