"""NTIRE 2023 Efficient SR: the 2022 counters and protocol, RFDN as the baseline.

Source: ofsoundof/NTIRE2023_ESR test_demo.py (its README holds only a title). The repository
publishes neither the GPU, the baseline's figures nor a PSNR threshold: those stay empty here
rather than guessed.
"""

from __future__ import annotations

from esrprof.challenges.base import (
    COUNT_SHAPE,
    HOOKS_AT_256,
    Baseline,
    Challenge,
    Counting,
    DataLayout,
    Hardware,
    Source,
    SplitLayout,
    TrackRule,
)
from esrprof.challenges.base import Preset as _Preset
from esrprof.challenges.ntire2022 import RULES as NTIRE2022

REPO = "ofsoundof/NTIRE2023_ESR"
TEST_DEMO = Source(REPO, "test_demo.py", "3423536969cab842f0442bc9822ea418a9f50b56")

RULES = Challenge(
    name="ntire2023",
    year=2023,
    title="NTIRE 2023",
    repository=f"https://github.com/{REPO}",
    counting=Counting("ntire2022", COUNT_SHAPE, HOOKS_AT_256,
                      Source(TEST_DEMO.repo, TEST_DEMO.path, TEST_DEMO.commit,
                             "get_model_flops(model, (3, 256, 256), False)")),
    data=DataLayout(
        splits=(
            SplitLayout("valid", "DIV2K_valid_LR", "DIV2K_valid_HR", "x4", 100, True,
                        (("DIV2K", 100),), "0801-0900"),
            SplitLayout("test", "DIV2K_test_LR", "DIV2K_test_HR", "", 100, False,
                        (("DIV2K", 100),), "0901-1000 (a hybrid LSDIR_DIV2K_test set too)"),
        ),
        scale=4,
        typical_lr_shape=(339, 510),
        largest_lr_shape=(510, 510),
        source=Source(TEST_DEMO.repo, TEST_DEMO.path, TEST_DEMO.commit, "select_dataset"),
    ),
    hardware=Hardware(None, "not stated in the official repository",
                      Source(TEST_DEMO.repo, "README.md", note="title only")),
    # test_demo.py's run() and main() are the 2022 script's: the 2022 protocol.
    protocol=NTIRE2022.protocol,
    baseline=Baseline(
        model="RFDN",
        entry="RFDN_baseline",
        published=None,
        why="test_demo.py model_id 0: RFDN, the AIM 2020 winner (data_range 255); the "
        "repository publishes no figures for it",
    ),
    tracks=(TrackRule("main_runtime", "Main track (runtime)", "runtime"),),
    score=None,
    psnr_gate=None,
    preset=_Preset(
        name="ntire2023",
        memory_shape=(1, 3, 510, 510),
        runtime_shape=(1, 3, 339, 510),
        gpu=None,
        warmup_shapes=((1, 3, 339, 510),),
        description=(
            "NTIRE 2023 ESR: the DIV2K sets and the 2022 script; the repository names no GPU, "
            "so a prediction needs one chosen (--gpu)."
        ),
    ),
)
