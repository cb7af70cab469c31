"""The rules of each year (esrprof/challenges/): lookup, facts with sources, plain data."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

import esrprof
from esrprof.challenges import CHALLENGES, LATEST, challenge, names
from esrprof.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_every_year_is_there_and_the_latest_is_2026():
    assert names() == ("ntire2022", "ntire2023", "ntire2024", "ntire2025", "ntire2026")
    assert LATEST is challenge("ntire2026") is challenge(None) is esrprof.challenge("NTIRE2026")
    assert challenge("2024").name == "ntire2024"


def test_an_unknown_name_is_one_usage_line_listing_the_names():
    with pytest.raises(UsageError) as err:
        challenge("ntire2021")
    text = str(err.value)
    assert "\n" not in text and all(n in text for n in names())


@pytest.mark.parametrize("name", ["ntire2024", "ntire2025", "ntire2026"])
def test_each_score_year_gives_its_baseline_e_squared(name):
    rules = challenge(name)
    b = rules.baseline.published
    score = rules.score.final(b.runtime_ms, b.flops_g, b.params_m,
                              b.runtime_ms, b.flops_g, b.params_m)
    assert round(score, 4) == 7.3891
    assert math.isclose(sum(rules.score.weights), 1.0)


def test_the_published_figures_are_the_readmes():
    assert challenge("ntire2026").baseline.published.runtime_ms == 7.74
    p26 = challenge("ntire2026").baseline.published
    assert (p26.flops_g, p26.params_m, p26.acts_m, p26.convs) == (9.83, 0.151, 41.68, 22)
    assert [v.runtime_ms for v in challenge("ntire2026").baseline.other_versions] == [5.59]
    p24 = challenge("ntire2024").baseline.published
    assert (p24.runtime_ms, p24.flops_g, p24.params_m) == (13.54, 19.67, 0.317)
    p25 = challenge("ntire2025").baseline.published
    assert (p25.runtime_ms, p25.flops_g, p25.params_m) == (16.69, 16.70, 0.276)
    # the reported runtime is (valid + test) / 2 in the later years too
    for name in ("ntire2024", "ntire2025", "ntire2026"):
        p = challenge(name).baseline.published
        assert abs((p.valid_runtime_ms + p.test_runtime_ms) / 2 - p.runtime_ms) <= 0.006


def test_conventions_gpus_gates_and_weights_per_year():
    conv = {n: r.counting.convention for n, r in CHALLENGES.items()}
    assert conv == {"ntire2022": "ntire2022", "ntire2023": "ntire2022", "ntire2024": "ntire2024",
                    "ntire2025": "ntire2024", "ntire2026": "ntire2024"}
    gpus = {n: r.hardware.gpu for n, r in CHALLENGES.items()}
    assert gpus == {"ntire2022": "titan-xp", "ntire2023": None, "ntire2024": "rtx-3090",
                    "ntire2025": "rtx-a6000", "ntire2026": "rtx-a6000"}
    assert challenge("ntire2026").score.weights == (0.8, 0.1, 0.1)
    assert challenge("ntire2024").score.weights == (0.7, 0.15, 0.15)
    assert challenge("ntire2026").psnr_gate.text() == "26.90/26.99"
    assert challenge("ntire2022").score is None
    for rules in CHALLENGES.values():
        assert rules.counting.input_shape == (1, 3, 256, 256)
        assert rules.preset.gpu == rules.hardware.gpu


def test_protocols_2022_best_of_three_later_five_averaged():
    p22, p26 = challenge("ntire2022").protocol, challenge("ntire2026").protocol
    assert (p22.trials, p22.trial_choice) == (3, "best")
    assert (p26.trials, p26.trial_choice, p26.memory_reset_per_split) == (5, "mean", False)
    assert p26.first_image_included


def test_the_data_layouts():
    valid = challenge("ntire2026").data.split("valid")
    test = challenge("ntire2026").data.split("test")
    assert (valid.lr_dir, valid.lr_suffix, valid.hr_public) == ("DIV2K_LSDIR_valid_LR", "x4", True)
    assert (test.lr_dir, test.hr_public, test.images) == ("DIV2K_LSDIR_test_LR", False, 200)
    assert challenge("ntire2022").data.split("valid").lr_dir == "DIV2K_valid_LR"


def test_every_fact_names_its_source_and_the_rules_are_json():
    for rules in CHALLENGES.values():
        d = rules.to_dict()
        json.dumps(d)
        for part in ("counting", "data", "hardware", "protocol"):
            src = d[part]["source"]
            assert src["repo"] or src["note"], (rules.name, part)
        if rules.baseline.published is not None:
            assert rules.baseline.published.source.url or rules.baseline.published.source.note
    assert challenge("ntire2026").baseline.published.source.url.startswith(
        "https://github.com/Amazingren/NTIRE2026_ESR/blob/f8395010")


def test_the_package_is_plain_data_at_the_bottom():
    # it imports only itself and esrprof.errors: no torch, nothing that computes
    for path in sorted((ROOT / "esrprof" / "challenges").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                assert mod.startswith("esrprof.challenges") or mod in (
                    "esrprof.errors", "__future__", "dataclasses", "typing", "math"), (path, mod)
            elif isinstance(node, ast.Import):
                assert all(a.name in ("math",) for a in node.names), path


def test_the_rules_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        LATEST.year = 2027  # type: ignore[misc]
