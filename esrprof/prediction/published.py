"""Every published GPU runtime of a model esrprof can trace: what the constants are fitted to.

A figure is usable when the model that produced it is in ``reference_models/`` (its code and
checkpoint layout traced to the release) and the challenge said on which GPU it ran. Each figure
cites its source. The NTIRE 2022 Table 1 figures come from the registry
(``reference_models/data/ntire2022_table1.csv``); the later years' from the rules of each year
(``esrprof/challenges``: the baseline's figures as the official repository publishes them).
"""

from __future__ import annotations

from dataclasses import dataclass

TYPICAL_LR = (1, 3, 339, 510)  # the NTIRE presets' typical LR image (esrprof/challenges)


@dataclass(frozen=True)
class PublishedRuntime:
    """One published runtime: ``model`` (a registry name) on ``gpu``, in ms per image."""

    model: str
    gpu: str
    runtime_ms: float
    year: int
    source: str
    input_shape: tuple[int, ...] = TYPICAL_LR

    @property
    def key(self) -> str:
        return f"{self.model}@{self.gpu}"


_TABLE1 = ("NTIRE 2022 ESR challenge report, Table 1 "
           "(reference_models/data/ntire2022_table1.csv), Titan Xp, PyTorch 1.11")

def table1() -> tuple[PublishedRuntime, ...]:
    """The nine reference models' Table 1 runtimes on the Titan Xp (from the registry)."""
    from esrprof.prediction.calibration import REFERENCE_MODELS
    from esrprof.zoo.registry import REGISTRY

    return tuple(
        PublishedRuntime(name, "titan-xp", REGISTRY[name].published.runtime_ms, 2022, _TABLE1)
        for name in REFERENCE_MODELS
    )


def later_years() -> tuple[PublishedRuntime, ...]:
    """Each later year's published baseline runtime on its GPU (esrprof/challenges: the
    README's baseline figure, the average of 5 runs, (valid + test) / 2)."""
    from esrprof.challenges import CHALLENGES

    out = []
    for rules in CHALLENGES.values():
        pub, gpu = rules.baseline.published, rules.hardware.gpu
        if rules.year == 2022 or pub is None or gpu is None:
            continue
        out.append(PublishedRuntime(rules.baseline.model, gpu, pub.runtime_ms, rules.year,
                                    f"{pub.source} ({rules.title} baseline, "
                                    f"{rules.hardware.label})",
                                    tuple(rules.preset.runtime_shape)))
    return tuple(out)


def all_figures() -> tuple[PublishedRuntime, ...]:
    """Table 1 and the later years' baselines whose model the registry holds."""
    from esrprof.zoo.registry import REGISTRY

    return (*table1(), *(f for f in later_years() if f.model in REGISTRY))


__all__ = ["TYPICAL_LR", "PublishedRuntime", "all_figures", "later_years", "table1"]
