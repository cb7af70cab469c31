"""Every published GPU runtime of a model esrprof can trace: what the constants are fitted to.

A figure is usable when the model that produced it is in ``reference_models/`` (its code and
checkpoint layout traced to the release) and the challenge said on which GPU it ran. Each figure
cites its source. The NTIRE 2022 Table 1 figures come from the registry
(``reference_models/data/ntire2022_table1.csv``); the later years' from their repositories.
"""

from __future__ import annotations

from dataclasses import dataclass

# The typical LR image of the challenge's sets: DIV2K valid/test LR (and LSDIR, whose images
# were cropped to DIV2K's size range) are about 510 px on the long side, most of them 339x510.
TYPICAL_LR = (1, 3, 339, 510)


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

# Later years: the baseline each repository's README publishes (the average of 5 runs on the
# challenge's GPU, (valid + test) / 2), and the 2026 results table.
LATER: tuple[PublishedRuntime, ...] = (
    PublishedRuntime("RLFN", "rtx-3090", 13.54, 2024,
                     "Amazingren/NTIRE2024_ESR README.md: RLFN 13.54 ms (16.18 valid, 10.89 "
                     "test), RTX 3090, average of 5 runs"),
    PublishedRuntime("EFDN", "rtx-a6000", 16.69, 2025,
                     "Amazingren/NTIRE2025_ESR README.md: EFDN 16.69 ms (18.77 valid, 14.61 "
                     "test), RTX A6000, average of 5 runs"),
    PublishedRuntime("SPAN", "rtx-a6000", 7.74, 2026,
                     "Amazingren/NTIRE2026_ESR results.txt: 00_SPAN 7.74 ms (8.00 valid, 7.47 "
                     "test), RTX A6000, the table the teams were ranked in (the README quotes "
                     "5.59 ms for the same model: the organisers' own spread)"),
)


def table1() -> tuple[PublishedRuntime, ...]:
    """The nine reference models' Table 1 runtimes on the Titan Xp (from the registry)."""
    from esrprof.prediction.calibration import REFERENCE_MODELS
    from esrprof.zoo.registry import REGISTRY

    return tuple(
        PublishedRuntime(name, "titan-xp", REGISTRY[name].published.runtime_ms, 2022, _TABLE1)
        for name in REFERENCE_MODELS
    )


def all_figures() -> tuple[PublishedRuntime, ...]:
    """Table 1 and the later years' baselines whose model the registry holds."""
    from esrprof.zoo.registry import REGISTRY

    return (*table1(), *(f for f in LATER if f.model in REGISTRY))


__all__ = ["LATER", "TYPICAL_LR", "PublishedRuntime", "all_figures", "table1"]
