"""NTIRE 2025 Efficient SR: the 2024 rules on an RTX A6000, the score against EFDN.

Sources: Amazingren/NTIRE2025_ESR README.md; its test_demo.py is not stored here, but the
NTIRE2026_ESR repository's first test_demo.py is the 2025 script ("NTIRE2025-EfficientSR").
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
    ScoreRule,
    Source,
    div2k_lsdir_layout,
    div2k_lsdir_preset,
)
from esrprof.challenges.ntire2024 import PROTOCOL

REPO = "Amazingren/NTIRE2025_ESR"
README = Source(REPO, "README.md", "0b5be945d82477560921d9c6f05d71686fc8bd09")
TEST_DEMO = Source("Amazingren/NTIRE2026_ESR", "test_demo.py",
                   "e5db4bb2b9835939c524b76a3b0b3ce1dce7cd7f",
                   "the 2025 script (EFDN as model 0, fvcore 'used in NTIRE2025_ESR')")

RULES = Challenge(
    name="ntire2025",
    year=2025,
    title="NTIRE 2025",
    repository=f"https://github.com/{REPO}",
    counting=Counting("ntire2024", COUNT_SHAPE, FVCORE_AT_256, README),
    data=div2k_lsdir_layout("DIV2K_LSDIR", TEST_DEMO),
    hardware=Hardware("rtx-a6000", "NVIDIA RTX A6000", README),
    protocol=PROTOCOL,
    baseline=Baseline(
        model="EFDN",
        entry="EFDN_baseline (team00_EFDN)",
        published=Published(16.69, 16.70, 0.276, README, valid_runtime_ms=18.77,
                            test_runtime_ms=14.61, psnr_val=26.93, psnr_test=27.01),
    ),
    tracks=SCORE_TRACKS,
    score=ScoreRule((0.7, 0.15, 0.15), 2.0, README),
    psnr_gate=PsnrThreshold(26.90, 26.99, README),
    preset=div2k_lsdir_preset("ntire2025", "rtx-a6000", "RTX A6000"),
    notes=(
        LSDIR_SIZES_NOTE,
    ),
)
