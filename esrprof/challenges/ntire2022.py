"""NTIRE 2022 Efficient SR: the rules esrprof was first built for.

Sources: ofsoundof/NTIRE2022_ESR (README.md, test_demo.py) and the challenge report (Table 1).
"""

from __future__ import annotations

from esrprof.challenges.base import (
    COUNT_SHAPE,
    HOOKS_AT_256,
    REPORT_2022,
    Baseline,
    Challenge,
    Counting,
    DataLayout,
    Hardware,
    PsnrThreshold,
    Published,
    RunProtocol,
    Source,
    SplitLayout,
    TrackRule,
)
from esrprof.challenges.base import Preset as _Preset

REPO = "ofsoundof/NTIRE2022_ESR"
COMMIT = "044c9300a60595a11c4a921d335f5694187c17d0"
README = Source(REPO, "README.md", COMMIT)
TEST_DEMO = Source(REPO, "test_demo.py", COMMIT)

RULES = Challenge(
    name="ntire2022",
    year=2022,
    title="NTIRE 2022",
    repository=f"https://github.com/{REPO}",
    counting=Counting("ntire2022", COUNT_SHAPE, HOOKS_AT_256,
                      Source(REPO, "README.md", COMMIT, "How to calculate the number of "
                             "parameters, FLOPs, and activations")),
    data=DataLayout(
        splits=(
            SplitLayout("valid", "DIV2K_valid_LR", "DIV2K_valid_HR", "x4", 100, True,
                        (("DIV2K", 100),), "0801-0900"),
            SplitLayout("test", "DIV2K_test_LR", "DIV2K_test_HR", "", 100, False,
                        (("DIV2K", 100),), "0901-1000"),
        ),
        scale=4,
        typical_lr_shape=(339, 510),
        largest_lr_shape=(510, 510),
        source=Source(REPO, "test_demo.py", COMMIT, "select_dataset"),
    ),
    hardware=Hardware("titan-xp", "NVIDIA TITAN Xp",
                      Source(REPO, "README.md", COMMIT, "a common GPU (ie. Titan Xp)")),
    protocol=RunProtocol(
        name="ntire2022",
        trials=3,
        trial_choice="best",
        warmup_images=0,
        first_image_included=True,
        memory_reset_per_split=False,
        splits_combined="(valid + test) / 2",
        source=Source("", note="test_demo.py run() for one pass (CUDA events, per-image mean, "
                      "max_memory_allocated never reset); the report for the best of three "
                      "trials and (valid + test) / 2"),
    ),
    baseline=Baseline(
        model="IMDN",
        entry="IMDN_baseline",
        published=Published(50.86, 58.53, 0.894, REPORT_2022, acts_m=154.14, convs=43,
                            memory_mib=471.76, psnr_val=29.13, psnr_test=28.78),
    ),
    tracks=(
        TrackRule("main_runtime", "Main track (runtime)", "runtime"),
        TrackRule("subtrack1_rank_sum", "Sub-track 1 (#Params + FLOPs)",
                  "rank(#Params) + rank(FLOPs)"),
        TrackRule("subtrack2_rank_sum", "Sub-track 2 (five ranks)",
                  "rank(runtime) + rank(#Params) + rank(FLOPs) + rank(#Acts) + rank(memory)"),
    ),
    score=None,
    psnr_gate=PsnrThreshold(28.95, 28.65, REPORT_2022,
                            "the stated gate was 29.00 dB on DIV2K valid; the final ranking "
                            "tolerated 28.95 valid / 28.65 test"),
    preset=_Preset(
        name="ntire2022",
        memory_shape=(1, 3, 510, 510),
        runtime_shape=(1, 3, 339, 510),
        gpu="titan-xp",
        warmup_shapes=((1, 3, 339, 510),),
        description=(
            "NTIRE 2022 ESR: max_memory_allocated over the DIV2K validation set (never reset), "
            "so its largest LR image, 510x510, sets the peak, after typical 339x510 images "
            "have filled the allocator's cache; runtime is the mean over images, most of them "
            "339x510 LR. fp32 on a Titan Xp."
        ),
    ),
)
