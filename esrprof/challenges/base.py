"""What one year of the NTIRE Efficient SR challenge decides, as frozen plain data.

Every fact carries the file it was read from (``Source``): the official repository's README.md
or test_demo.py at a named commit, or the challenge report. Nothing here imports torch or
anything that computes: the rooms that compute (counting, prediction, runs, report, zoo) read
these records; none keeps a second copy of a fact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

# ------------------------------------------------------------------------- vocabularies

ChallengeName = Literal["ntire2022", "ntire2023", "ntire2024", "ntire2025", "ntire2026"]
CHALLENGE_NAMES: tuple[str, ...] = get_args(ChallengeName)

# How FLOPs are counted: the 2022 script's module hooks, or fvcore's FlopCountAnalysis total
# (2024 on). #Acts and #Conv are the 2022 hooks' in every year.
Convention = Literal["ntire2022", "ntire2024"]
CONVENTIONS: tuple[str, ...] = get_args(Convention)

# What a leaderboard ranks by.
Track = Literal[
    "main_runtime",  # 2022/2023 main track: runtime
    "subtrack1_rank_sum",  # 2022: rank(#Params) + rank(FLOPs)
    "subtrack2_rank_sum",  # 2022: five ranks summed
    "score_final",  # 2024 on, main track: weighted exp-scores
    "score_runtime",  # 2024 on, sub-tracks: one exp-score each
    "score_flops",
    "score_params",
]
TRACKS: tuple[str, ...] = get_args(Track)

SplitName = Literal["valid", "test"]
# How one split's runtime figure comes out of repeated passes over it.
TrialChoice = Literal["best", "mean"]


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Source:
    """Where a fact was read: a repository file (at a commit when it matters) or a report."""

    repo: str  # "Amazingren/NTIRE2026_ESR"; "" for a paper
    path: str = ""  # "README.md"
    commit: str = ""  # the stored version read, when versions differ
    note: str = ""  # what in the file, or the paper's title

    @property
    def url(self) -> str:
        if not self.repo:
            return ""
        base = f"https://github.com/{self.repo}"
        if not self.path:
            return base
        return f"{base}/blob/{self.commit or 'main'}/{self.path}"

    def __str__(self) -> str:
        where = f"{self.repo}/{self.path}" if self.repo else self.note
        if self.commit:
            where += f" @ {self.commit[:8]}"
        return where

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "url": self.url}


@dataclass(frozen=True)
class Counting:
    """How #Params, FLOPs, #Acts and #Conv are counted."""

    convention: Convention
    input_shape: tuple[int, int, int, int]
    flops_rule: str  # in words, as the organisers' code does it
    source: Source

    def to_dict(self) -> dict[str, Any]:
        return {"convention": self.convention, "input_shape": list(self.input_shape),
                "flops_rule": self.flops_rule, "source": self.source.to_dict()}


@dataclass(frozen=True)
class SplitLayout:
    """One image split as the organisers' script reads it."""

    name: SplitName
    lr_dir: str  # "DIV2K_LSDIR_valid_LR"
    hr_dir: str  # "DIV2K_LSDIR_valid_HR" (the organisers have it even when participants do not)
    lr_suffix: str  # "x4": 0801.png in HR is 0801x4.png in LR; "" when the names are equal
    images: int
    hr_public: bool  # whether participants were given the HR images
    mix: tuple[tuple[str, int], ...]  # ("DIV2K", 100), ("LSDIR", 100)
    names: str  # "0801-0900 (DIV2K), 000001-000100 (LSDIR)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mix": dict(self.mix)}


@dataclass(frozen=True)
class DataLayout:
    """The image sets: folder names, suffix, counts, which HR exist, the image mix."""

    splits: tuple[SplitLayout, ...]
    scale: int
    # Typical LR shapes of the images (H, W): DIV2K's LR are about 510 px on the long side;
    # LSDIR's are of the same order. Used by the synthetic default and the prediction preset.
    typical_lr_shape: tuple[int, int]
    largest_lr_shape: tuple[int, int]
    source: Source

    def split(self, name: str) -> SplitLayout:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"splits": [s.to_dict() for s in self.splits], "scale": self.scale,
                "typical_lr_shape": list(self.typical_lr_shape),
                "largest_lr_shape": list(self.largest_lr_shape),
                "source": self.source.to_dict()}


@dataclass(frozen=True)
class Hardware:
    gpu: str | None  # a spec name of esrprof/prediction/gpus.py; None: not published
    label: str  # "NVIDIA RTX A6000"
    source: Source

    def to_dict(self) -> dict[str, Any]:
        return {"gpu": self.gpu, "label": self.label, "source": self.source.to_dict()}


@dataclass(frozen=True)
class RunProtocol:
    """How runtime and memory were taken.

    Runtime: the forward of each image timed with CUDA events (whole image, or tiles where the
    entry asked for it), the mean over a split's images *including the first* (the script has
    no warm-up), then ``trials`` passes combined by ``trial_choice``; the reported figure is
    (valid + test) / 2. Memory: ``max_memory_allocated`` after a split, never reset by the
    script (so the validation peak carries into the test split).
    """

    name: str  # "ntire2022" or "ntire2024": the protocols differ only in how trials combine
    trials: int  # passes over each split
    trial_choice: TrialChoice  # "best": the lowest per-image mean; "mean": their average
    warmup_images: int  # untimed forwards before the first timed image (the script: none)
    first_image_included: bool
    memory_reset_per_split: bool
    splits_combined: str  # how the reported runtime comes from the splits
    source: Source

    def describe(self) -> str:
        how = ("the best of" if self.trial_choice == "best" else "the average of")
        return (f"CUDA events per image, mean over each split's images (the first included), "
                f"{how} {self.trials} pass{'es' if self.trials > 1 else ''}, "
                f"{self.splits_combined}; max_memory_allocated "
                f"{'reset per split' if self.memory_reset_per_split else 'never reset'}")

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "source"},
                "description": self.describe(), "source": self.source.to_dict()}


@dataclass(frozen=True)
class Published:
    """A baseline's figures as one stored version of a file prints them."""

    runtime_ms: float
    flops_g: float
    params_m: float
    source: Source
    valid_runtime_ms: float | None = None
    test_runtime_ms: float | None = None
    acts_m: float | None = None
    convs: int | None = None
    memory_mib: float | None = None
    psnr_val: float | None = None
    psnr_test: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "source"},
                "source": self.source.to_dict()}


@dataclass(frozen=True)
class Baseline:
    """The year's reference model ("baseline") and the figures the organisers published."""

    model: str  # its name in esrprof's zoo (esrprof/zoo/registry.py)
    entry: str  # the organisers' name for it
    published: Published | None  # the figures esrprof uses; None: none published
    other_versions: tuple[Published, ...] = ()  # other stored versions that printed otherwise
    why: str = ""  # why ``published`` was chosen among the versions

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "entry": self.entry,
                "published": self.published.to_dict() if self.published else None,
                "other_versions": [p.to_dict() for p in self.other_versions], "why": self.why}


@dataclass(frozen=True)
class ScoreRule:
    """``score = w_rt·exp(k·rt/rt_B) + w_fl·exp(k·F/F_B) + w_pa·exp(k·P/P_B)``, lower is
    better; the baseline scores e^k in every term, so e^k in total (7.3891 for k = 2)."""

    weights: tuple[float, float, float]  # runtime, FLOPs, params
    exponent: float
    source: Source

    def terms(self, runtime_ms: float, flops_g: float, params_m: float,
              ref_runtime_ms: float, ref_flops_g: float, ref_params_m: float
              ) -> tuple[float, float, float]:
        """Score_Runtime, Score_FLOPs, Score_Params (inf past what a float holds)."""
        out = []
        for x, ref in ((runtime_ms, ref_runtime_ms), (flops_g, ref_flops_g),
                       (params_m, ref_params_m)):
            try:
                out.append(math.exp(self.exponent * x / ref))
            except OverflowError:
                out.append(math.inf)
        return out[0], out[1], out[2]

    def final(self, runtime_ms: float, flops_g: float, params_m: float,
              ref_runtime_ms: float, ref_flops_g: float, ref_params_m: float) -> float:
        terms = self.terms(runtime_ms, flops_g, params_m, ref_runtime_ms, ref_flops_g,
                           ref_params_m)
        return sum(w * t for w, t in zip(self.weights, terms))

    def formula(self, reference: str = "B") -> str:
        w_rt, w_fl, w_pa = (f"{w:g}" for w in self.weights)
        k = f"{self.exponent:g}"
        return (f"{w_rt}·exp({k}·runtime/runtime_{reference}) + {w_fl}·exp({k}·FLOPs/"
                f"FLOPs_{reference}) + {w_pa}·exp({k}·params/params_{reference})")

    def to_dict(self) -> dict[str, Any]:
        return {"weights": list(self.weights), "exponent": self.exponent,
                "formula": self.formula(), "source": self.source.to_dict()}


@dataclass(frozen=True)
class TrackRule:
    key: Track
    title: str
    ranks_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PsnrThreshold:
    """Entries under ``valid_db`` (or ``test_db``) are listed but not ranked."""

    valid_db: float
    test_db: float | None
    source: Source
    note: str = ""

    def text(self) -> str:
        """As ``--psnr-gate`` takes it: ``"26.90/26.99"``."""
        return f"{self.valid_db:.2f}" + (f"/{self.test_db:.2f}" if self.test_db else "")

    def to_dict(self) -> dict[str, Any]:
        return {"valid_db": self.valid_db, "test_db": self.test_db, "note": self.note,
                "source": self.source.to_dict()}


@dataclass(frozen=True)
class Preset:
    """Input shapes, GPU and allocator history of one challenge's measurement, for
    ``esrprof.predict_challenge``."""

    name: str
    memory_shape: tuple[int, ...]  # the image that sets the peak (the largest)
    runtime_shape: tuple[int, ...]  # a typical image (the runtime is a mean over images)
    gpu: str | None  # a spec name of esrprof/prediction/gpus.py; None: the year names none
    warmup_shapes: tuple[tuple[int, ...], ...] = ()  # forwards before the largest image
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "memory_shape": list(self.memory_shape),
            "runtime_shape": list(self.runtime_shape),
            "gpu": self.gpu,
            "warmup_shapes": [list(s) for s in self.warmup_shapes],
            "description": self.description,
        }


@dataclass(frozen=True)
class Challenge:
    """Everything one year decides."""

    name: ChallengeName
    year: int
    title: str  # "NTIRE 2026"
    repository: str  # the official repository
    counting: Counting
    data: DataLayout
    hardware: Hardware
    protocol: RunProtocol
    baseline: Baseline
    tracks: tuple[TrackRule, ...]
    score: ScoreRule | None  # None: ranked by runtime and rank sums (2022, 2023)
    psnr_gate: PsnrThreshold | None
    preset: Preset
    notes: tuple[str, ...] = field(default=())

    @property
    def rules_line(self) -> str:
        """One line for a card: "NTIRE 2026 rules: FLOPs = fvcore total at 1x3x256x256"."""
        shape = "x".join(str(d) for d in self.counting.input_shape)
        what = ("fvcore total" if self.counting.convention == "ntire2024"
                else "the 2022 script's hooks")
        return f"{self.title} rules: FLOPs = {what} at {shape}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "year": self.year,
            "title": self.title,
            "repository": self.repository,
            "counting": self.counting.to_dict(),
            "data": self.data.to_dict(),
            "hardware": self.hardware.to_dict(),
            "protocol": self.protocol.to_dict(),
            "baseline": self.baseline.to_dict(),
            "tracks": [t.to_dict() for t in self.tracks],
            "score": self.score.to_dict() if self.score else None,
            "psnr_gate": self.psnr_gate.to_dict() if self.psnr_gate else None,
            "preset": self.preset.to_dict(),
            "notes": list(self.notes),
        }


# ------------------------------------------------------------- shared between the years

REPORT_2022 = Source("", note="Li et al., NTIRE 2022 Challenge on Efficient Super-Resolution: "
                     "Methods and Results, CVPR Workshops 2022 (Table 1)")

HOOKS_AT_256 = "the 2022 script's forward hooks (utils/model_summary.get_model_flops) at 3x256x256"
FVCORE_AT_256 = ("fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total(); "
                 "#Acts and #Conv from the 2022 hooks (get_model_activation) at 3x256x256")
COUNT_SHAPE = (1, 3, 256, 256)

# The 2024-2026 scores and sub-tracks: one exp-score per metric against the baseline.
SCORE_TRACKS: tuple[TrackRule, ...] = (
    TrackRule("score_final", "Main track (overall performance)", "Score_Final"),
    TrackRule("score_runtime", "Sub-track 1 (inference runtime)", "Score_Runtime"),
    TrackRule("score_flops", "Sub-track 2 (FLOPs)", "Score_FLOPs"),
    TrackRule("score_params", "Sub-track 3 (parameters)", "Score_Params"),
)


# Where a 2024-2026 figure rests on DIV2K's image sizes because LSDIR's are not published.
LSDIR_SIZES_NOTE = ("LSDIR's LR sizes are not stated in the repository; the presets and the "
                    "synthetic default take DIV2K's (510x510 largest, 339x510 typical). The "
                    "largest image checks out: at 510x510 SPAN's peak is predicted within "
                    "0.2 % of the 705.24 MiB NTIRE 2026 published, so no LSDIR image in the "
                    "valid set sets a higher peak.")


def div2k_lsdir_preset(name: str, gpu: str, gpu_label: str) -> Preset:
    """The prediction preset of a DIV2K_LSDIR year (2024-2026): DIV2K's shapes (see
    :data:`LSDIR_SIZES_NOTE`), the memory peak never reset, fp32 on ``gpu``."""
    return Preset(
        name=name,
        memory_shape=(1, 3, 510, 510),
        runtime_shape=(1, 3, 339, 510),
        gpu=gpu,
        warmup_shapes=((1, 3, 339, 510),),
        description=(
            f"NTIRE {name.removeprefix('ntire')} ESR: max_memory_allocated over DIV2K_LSDIR "
            "valid (never reset): the largest LR image sets the peak after typical ones filled "
            f"the allocator's cache; runtime is the mean over images. fp32 on an {gpu_label}."
        ),
    )


def div2k_lsdir_layout(prefix: str, source: Source) -> DataLayout:
    """The DIV2K+LSDIR sets of 2024-2026: valid (HR given) and test (HR kept by the
    organisers), 100 DIV2K + 100 LSDIR images each."""
    return DataLayout(
        splits=(
            SplitLayout("valid", f"{prefix}_valid_LR", f"{prefix}_valid_HR", "x4", 200, True,
                        (("LSDIR", 100), ("DIV2K", 100)),
                        "000001-000100 (LSDIR), 0801-0900 (DIV2K)"),
            SplitLayout("test", f"{prefix}_test_LR", f"{prefix}_test_HR", "x4", 200, False,
                        (("LSDIR", 100), ("DIV2K", 100)),
                        "LSDIR and DIV2K (0901-1000) test images"),
        ),
        scale=4,
        typical_lr_shape=(339, 510),
        largest_lr_shape=(510, 510),
        source=source,
    )
