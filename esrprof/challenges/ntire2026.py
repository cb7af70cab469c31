"""NTIRE 2026 Efficient SR: the 2025 rules, SPAN as the baseline, runtime weighted 0.8.

Sources: Amazingren/NTIRE2026_ESR README.md (several stored versions; see ``BASELINE``),
results.txt and test_demo.py.
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

REPO = "Amazingren/NTIRE2026_ESR"
# The README's SPAN runtime differs between stored versions; both score SPAN 7.3891.
README = Source(REPO, "README.md", "f8395010ea986a20c77f4ee7b4975c2ee14d2a56",
                "the version that cites the 2026 challenge report and ships the entries")
README_EARLY = Source(REPO, "README.md", "313463bdd830025bbdea55a67142386e2769e856",
                      "an earlier version (also 12df396d): SPAN 5.59 ms")
RESULTS = Source(REPO, "results.txt", README.commit, "row 00_SPAN")
TEST_DEMO = Source(REPO, "test_demo.py", "e5db4bb2b9835939c524b76a3b0b3ce1dce7cd7f")

BASELINE = Baseline(
    model="SPAN",
    entry="00_SPAN (team00_SPAN)",
    published=Published(7.74, 9.83, 0.151, README, valid_runtime_ms=8.00,
                        test_runtime_ms=7.47, acts_m=41.68, convs=22, memory_mib=705.24,
                        psnr_val=26.94, psnr_test=27.01),
    other_versions=(
        Published(5.59, 9.83, 0.151, README_EARLY, valid_runtime_ms=5.62,
                  test_runtime_ms=5.57, psnr_val=26.94, psnr_test=27.01),
    ),
    why="7.74 ms: the later README (it cites the 2026 report) and results.txt agree on it, and "
    "results.txt is the table the entries were ranked in; 5.59 ms is an earlier README's",
)

RULES = Challenge(
    name="ntire2026",
    year=2026,
    title="NTIRE 2026",
    repository=f"https://github.com/{REPO}",
    counting=Counting("ntire2024", COUNT_SHAPE, FVCORE_AT_256,
                      Source(REPO, "README.md", README.commit,
                             "fvcore is used in NTIRE2026_ESR for FLOPs calculation")),
    data=div2k_lsdir_layout("DIV2K_LSDIR", Source(REPO, "README.md", README.commit,
                                                  "The Validation datasets; test_demo.py "
                                                  "select_dataset")),
    hardware=Hardware("rtx-a6000", "NVIDIA RTX A6000", README),
    protocol=PROTOCOL,
    baseline=BASELINE,
    tracks=SCORE_TRACKS,
    score=ScoreRule((0.8, 0.1, 0.1), 2.0, README),
    psnr_gate=PsnrThreshold(26.90, 26.99, README),
    preset=div2k_lsdir_preset("ntire2026", "rtx-a6000", "RTX A6000"),
    notes=(
        LSDIR_SIZES_NOTE,
        "New in 2026: quantization and pruning are encouraged (README).",
    ),
)
