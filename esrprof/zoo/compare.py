"""Published versus measured figures of the registry's models: the data behind ``esrprof zoo``.

Counting runs through ``esrprof.count`` on meta tensors, so all models take about a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from esrprof.api import count
from esrprof.challenges import Challenge, challenge
from esrprof.prediction.api import predict_challenge
from esrprof.results import convention_counts
from esrprof.zoo.registry import REGISTRY, ReferenceModel, get

# Decimals the challenge table prints each figure with; a figure reproduces when ours, rounded
# to that many decimals, equals the printed one.
PRECISION = {"params_m": 3, "flops_g": 2, "acts_m": 2, "convs": 0}


@dataclass(frozen=True)
class Figures:
    """The four figures in table units (M, G, M, count); FLOPs in a year's convention. A
    figure a year did not publish is None."""

    params_m: float | None
    flops_g: float | None
    acts_m: float | None
    convs: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rounded(self) -> Figures:
        return Figures(*(None if getattr(self, k) is None else round(getattr(self, k), d)
                         for k, d in PRECISION.items()))


@dataclass(frozen=True)
class ZooRow:
    name: str
    team: str
    spec: str
    pixel_range: int
    scale: int
    published: Figures | None
    expected: Figures | None  # published, with the registry's documented exceptions applied
    measured: Figures  # unrounded
    complete_macs_g: float
    backend: str
    notes: str
    prediction: Any = None  # esrprof.prediction.Prediction on the year's protocol, or None
    challenge: str = "ntire2022"  # the year whose rules and published figures these are

    @property
    def published_memory_mib(self) -> float | None:
        return self._published("memory_mib")

    @property
    def published_runtime_ms(self) -> float | None:
        return self._published("runtime_ms")

    def _published(self, field: str) -> float | None:
        entry = REGISTRY.get(self.name)
        source = published_in(entry, challenge(self.challenge)) if entry else None
        return getattr(source, field, None)

    def mismatches(self) -> list[str]:
        """Figures whose measured value, at printed precision, differs from the expected one."""
        if self.expected is None:
            return []
        ours = self.measured.rounded()
        return [k for k in PRECISION if None not in (getattr(self.expected, k), getattr(ours, k))
                and getattr(ours, k) != getattr(self.expected, k)]

    @property
    def reproduced(self) -> bool | None:
        return None if self.expected is None else not self.mismatches()

    @property
    def differs_from_published(self) -> list[str]:
        """Figures where the expectation itself departs from the printed table (see notes)."""
        if self.published is None or self.expected is None:
            return []
        return [k for k in PRECISION if getattr(self.published, k) != getattr(self.expected, k)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "challenge": self.challenge,
            "team": self.team,
            "spec": self.spec,
            "pixel_range": self.pixel_range,
            "scale": self.scale,
            "published": self.published.to_dict() if self.published else None,
            "expected": self.expected.to_dict() if self.expected else None,
            "measured": self.measured.to_dict(),
            "complete_macs_g": self.complete_macs_g,
            "backend": self.backend,
            "published_memory_mib": self.published_memory_mib,
            "published_runtime_ms": self.published_runtime_ms,
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "reproduced": self.reproduced,
            "mismatches": self.mismatches(),
            "differs_from_published": self.differs_from_published,
            "notes": self.notes,
        }


def published_in(entry: ReferenceModel, rules: Challenge) -> Any:
    """What ``rules``' year published for this model: the 2022 table's row (NTIRE 2022), the
    year's baseline figures (a later year, for its baseline), else None."""
    if rules.name == "ntire2022":
        return entry.published
    if rules.baseline.model == entry.name:
        return rules.baseline.published
    return None


def measure(entry: ReferenceModel, input_shape: Sequence[int] = (1, 3, 256, 256), *,
            predict: bool = True, rules: Challenge | str = "ntire2022") -> ZooRow:
    """Build one registry model, count it as ``rules``' year counts and predict that year's
    figures (shapes only); beside them what that year published for the model."""
    rules = challenge(rules)
    model = entry.build()
    counts = count(model, tuple(input_shape))
    prediction = None
    if predict and rules.preset.gpu is not None:
        prediction = predict_challenge(model, rules.preset)
    n = counts.ntire2022
    flops = convention_counts(counts, rules.counting.convention)
    measured = Figures(counts.params / 1e6, flops.macs / 1e9 if flops is not None else None,
                       n.activations / 1e6, n.convs)
    p = published_in(entry, rules)
    published = (Figures(p.params_m, p.flops_g, p.acts_m, p.convs)
                 if p is not None and p.params_m is not None else None)
    expected = None
    if published is not None:
        expected = (Figures(**entry.expected_ntire2022()) if rules.name == "ntire2022"
                    else published)
    return ZooRow(
        name=entry.name,
        team=entry.team,
        spec=entry.spec,
        pixel_range=entry.pixel_range,
        scale=entry.scale,
        published=published,
        expected=expected,
        measured=measured,
        complete_macs_g=counts.complete.macs / 1e9,
        backend=counts.backend,
        notes=entry.notes,
        prediction=prediction,
        challenge=rules.name,
    )


def measure_all(
    names: Iterable[str] | None = None, input_shape: Sequence[int] = (1, 3, 256, 256), *,
    predict: bool = True, rules: Challenge | str = "ntire2022",
) -> list[ZooRow]:
    """Rows for the named models (all of the registry when none are given), in registry order."""
    entries = [get(n) for n in names] if names else list(REGISTRY.values())
    return [measure(e, input_shape, predict=predict, rules=rules) for e in entries]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (None for fewer than three pairs)."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    if rx.std() == 0 or ry.std() == 0:
        return None  # a constant series has no rank order
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as Spearman's rho wants them)."""
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for value in np.unique(a):
        tied = a == value
        ranks[tied] = ranks[tied].mean()
    return ranks
