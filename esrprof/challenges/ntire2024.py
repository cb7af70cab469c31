"""NTIRE 2024 Efficient SR: fvcore FLOPs, DIV2K+LSDIR, an RTX 3090, the score against RLFN.

Source: Amazingren/NTIRE2024_ESR (README.md, test_demo.py).
"""

from __future__ import annotations

from esrprof.challenges.base import (
    COUNT_SHAPE,
    FVCORE_AT_256,
    LSDIR_SIZES_NOTE,
    SCORE_TRACKS,
    Baseline,
    Challenge,
    Counting,
    Hardware,
    PsnrThreshold,
    Published,
    RunProtocol,
    ScoreRule,
    Source,
    div2k_lsdir_layout,
    div2k_lsdir_preset,
)

REPO = "Amazingren/NTIRE2024_ESR"
README = Source(REPO, "README.md", "65f73c798792fd0bfbb71dc0fe734c95e85ff1c2")
README_EARLY = Source(REPO, "README.md", "021da76237d46f5d71f22b508595c20ef2d0693e",
                      "an early version: folders named LSDIR_DIV2K_valid_*, FLOPs 19.70 G")
TEST_DEMO = Source(REPO, "test_demo.py", "2cefc5d50c98775811dcae0ae4887efca3d9a737")

PROTOCOL = RunProtocol(
    name="ntire2024",
    trials=5,
    trial_choice="mean",
    warmup_images=0,
    first_image_included=True,
    memory_reset_per_split=False,
    splits_combined="(valid + test) / 2",
    source=Source(REPO, "README.md", README.commit,
                  "Step1: each model executed five times, the average documented; test_demo.py "
                  "run(): CUDA events per image, max_memory_allocated after the split"),
)

RULES = Challenge(
    name="ntire2024",
    year=2024,
    title="NTIRE 2024",
    repository=f"https://github.com/{REPO}",
    counting=Counting("ntire2024", COUNT_SHAPE, FVCORE_AT_256,
                      Source(REPO, "test_demo.py", TEST_DEMO.commit,
                             "fvcore is used in NTIRE2024_ESR for FLOPs calculation")),
    data=div2k_lsdir_layout("DIV2K_LSDIR", Source(REPO, "README.md", README.commit,
                                                  "The Validation datasets")),
    hardware=Hardware("rtx-3090", "NVIDIA GeForce RTX 3090", README),
    protocol=PROTOCOL,
    baseline=Baseline(
        model="RLFN",
        entry="RLFN_Prune (team00_RLFN)",
        published=Published(13.54, 19.67, 0.317, README, valid_runtime_ms=16.18,
                            test_runtime_ms=10.89, psnr_val=26.96, psnr_test=27.07),
        other_versions=(
            Published(13.54, 19.70, 0.317, README_EARLY, valid_runtime_ms=16.18,
                      test_runtime_ms=10.89, psnr_val=26.96, psnr_test=27.07),
        ),
        why="the later README prints 19.67 G in both places, fvcore's total; 19.70 G is the "
        "2022 hooks' figure for the same model",
    ),
    tracks=SCORE_TRACKS,
    score=ScoreRule((0.7, 0.15, 0.15), 2.0, README),
    psnr_gate=PsnrThreshold(26.90, 26.99, README),
    preset=div2k_lsdir_preset("ntire2024", "rtx-3090", "RTX 3090"),
    notes=(
        LSDIR_SIZES_NOTE,
    ),
)
