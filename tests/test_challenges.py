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


# ------------------------------------------------------------------ the report per year

TABLE = """team,runtime_ms,params_M,flops_G,psnr_val,psnr_test
mine,7.74,0.151,9.83,26.95,27.00
half_time,3.87,0.151,9.83,26.91,27.02
half_size,7.74,0.0755,4.915,26.93,26.99
double_time,15.48,0.151,9.83,27.10,27.10
too_blurry,3.87,0.151,9.83,26.80,27.00
"""


def _report(tmp_path, challenge_name, **extra):
    from esrprof.report import ReportOptions, build_report

    path = tmp_path / "entries.csv"
    path.write_text(TABLE)
    options = ReportOptions(challenge=challenge_name, predict_references=False, **extra)
    return build_report([path], options)


def _ranked(board):
    frame = board.frame
    return {row["model"]: (None if row["rank"] is None or str(row["rank"]) == "<NA>"
                           else int(row["rank"])) for _, row in frame.iterrows()}


def test_the_2026_score_reproduces_spans_7_3891_and_ranks_a_table_by_hand(tmp_path):
    report = _report(tmp_path, "ntire2026")
    main = report.leaderboard("score_ntire2026")
    scores = dict(zip(main.frame["model"], main.frame["score"]))
    # SPAN's own figures (7.74 ms, 9.83 G, 0.151 M) against themselves: e^2 in every term
    assert round(scores["mine"], 4) == 7.3891
    e, e2, e4 = math.e, math.e**2, math.e**4
    assert scores["half_time"] == pytest.approx(0.8 * e + 0.1 * e2 + 0.1 * e2)  # 3.6524
    assert scores["half_size"] == pytest.approx(0.8 * e2 + 0.1 * e + 0.1 * e)  # 6.4549
    assert scores["double_time"] == pytest.approx(0.8 * e4 + 0.2 * e2)  # 45.156
    # by hand: 3.65 < 6.45 < 7.39 < 45.2; 26.80 dB is under the 2026 gate of 26.90 dB
    assert _ranked(main) == {"half_time": 1, "half_size": 2, "mine": 3, "double_time": 4,
                             "too_blurry": None}
    assert "26.80 < 26.90" in main.frame.set_index("model").loc["too_blurry", "note"]
    # the sub-tracks: one score term each; equal terms share the better rank
    runtime = _ranked(report.leaderboard("score_runtime_ntire2026"))
    assert runtime == {"half_time": 1, "mine": 2, "half_size": 2, "double_time": 4,
                       "too_blurry": None}
    params = _ranked(report.leaderboard("score_params_ntire2026"))
    assert params["half_size"] == 1 and params["mine"] == params["half_time"] == 2
    assert [b.key for b in report.leaderboards] == [
        "score_ntire2026", "score_runtime_ntire2026", "score_flops_ntire2026",
        "score_params_ntire2026"]


def test_the_2024_weights_and_baseline_differ_from_2026(tmp_path):
    report = _report(tmp_path, "ntire2024")
    scores = dict(zip(*(report.leaderboard("score_ntire2024").frame[c]
                        for c in ("model", "score"))))
    b = challenge("ntire2024").baseline.published  # RLFN 13.54 ms, 19.67 G, 0.317 M
    expected = (0.7 * math.exp(2 * 7.74 / b.runtime_ms) + 0.15 * math.exp(2 * 9.83 / b.flops_g)
                + 0.15 * math.exp(2 * 0.151 / b.params_m))
    assert scores["mine"] == pytest.approx(expected)
    assert "0.7·exp" in report.leaderboard("score_ntire2024").description


def test_an_explicit_gate_and_score_baseline_still_win(tmp_path):
    from esrprof.report import PsnrGate

    report = _report(tmp_path, "ntire2026", psnr_gate=PsnrGate(26.0), score_baseline="mine")
    main = report.leaderboard("score_ntire2026")
    assert _ranked(main)["too_blurry"] == 1  # 26.80 passes a 26.0 gate
    assert "its entry in the inputs" in main.description


def test_the_2022_rules_give_the_2022_tracks(tmp_path):
    report = _report(tmp_path, "ntire2022")
    assert [b.key for b in report.leaderboards] == ["main", "st1"]  # st2 needs memory, #Acts
    assert report.options.psnr_gate.valid == 28.95


def test_report_cli_takes_a_challenge_and_refuses_an_unknown_one(tmp_path, capsys):
    from esrprof.cli import main

    path = tmp_path / "entries.csv"
    path.write_text(TABLE)
    assert main(["report", str(path), "-o", str(tmp_path / "r"), "--challenge", "ntire2026",
                 "--no-charts", "--no-predict"]) == 0
    assert "score_ntire2026" in capsys.readouterr().out
    assert main(["report", str(path), "-o", str(tmp_path / "s"), "--challenge", "2021"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ntire2026" in err


def test_published_figures_of_another_year_are_said_so(tmp_path):
    from esrprof.report import ReportOptions, build_report
    from esrprof.zoo.registry import DATA_DIR

    report = build_report([DATA_DIR / "ntire2022_table1.csv"],
                          ReportOptions(challenge="ntire2026", predict_references=False))
    notes = report.leaderboard("score_ntire2026").notes
    assert any("another year" in n and "SPAN" in n for n in notes)


def test_the_report_scores_read_the_rules():
    from esrprof.report.ranking import SCORES

    for name, d in SCORES.items():
        rules = challenge(name)
        assert (d.reference, d.runtime_ms, d.weights) == (
            rules.baseline.model, rules.baseline.published.runtime_ms, rules.score.weights)
    assert set(SCORES) == {"ntire2024", "ntire2025", "ntire2026"}


# ------------------------------------------------------------ the card, the zoo, SPAN


def test_span_is_the_2026_baseline_and_its_counts_are_the_published_ones():
    from esrprof.zoo.registry import get

    entry = get("SPAN")
    assert [c.name for c in entry.baseline_of()] == ["ntire2026"]
    model = entry.build()
    counts = esrprof.count(model, (1, 3, 256, 256))
    p = challenge("ntire2026").baseline.published
    assert round(counts.params / 1e6, 3) == p.params_m
    assert round(counts.ntire2022.activations / 1e6, 2) == p.acts_m
    assert counts.ntire2022.convs == p.convs
    # no op of SPAN is counted differently by the two conventions: the hooks give 9.83 G too
    assert round(counts.ntire2022.macs / 1e9, 2) == p.flops_g


def test_span_flops_are_fvcores_total():
    pytest.importorskip("fvcore")
    import torch
    from fvcore.nn import FlopCountAnalysis

    from esrprof.zoo.registry import get

    model = get("SPAN").build().eval()
    analysis = FlopCountAnalysis(model, torch.rand(1, 3, 64, 64))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    counts = esrprof.count(model, (1, 3, 64, 64))
    assert analysis.total() == counts.ntire2022.macs
    if hasattr(counts, "ntire2024"):
        assert counts.ntire2024.macs == analysis.total()


def test_the_card_names_its_rules_and_records_them(tmp_path, capsys, root, monkeypatch):
    from esrprof.cli import main

    monkeypatch.chdir(root)
    path = tmp_path / "r.json"
    assert main(["profile", "reference_models/span.py:SPAN", "--no-predict", "--json",
                 str(path)]) == 0
    out = capsys.readouterr().out
    assert "NTIRE 2026 rules: FLOPs = fvcore total at 1x3x256x256" in out
    assert "0.151" in out and "41.68" in out
    card = out.split("Complete count")[0]
    assert "9.83" in card and " 22" in card
    assert json.loads(path.read_text())["challenge"] == "ntire2026"
    assert esrprof.load_result(path).challenge == "ntire2026"
    assert main(["profile", "reference_models/span.py:SPAN", "--challenge", "ntire2022",
                 "--no-predict"]) == 0
    assert "NTIRE 2022 convention" in capsys.readouterr().out


def test_a_year_without_a_gpu_predicts_only_on_one_chosen(capsys, root, monkeypatch):
    from esrprof.cli import main

    monkeypatch.chdir(root)
    assert main(["profile", "reference_models/span.py:SPAN", "--input-shape", "16x16",
                 "--challenge", "ntire2023"]) == 0
    assert "names no GPU" in capsys.readouterr().out
    with pytest.raises(UsageError, match="names no GPU"):
        from esrprof.zoo.registry import get

        esrprof.predict_challenge(get("SPAN").build(), "ntire2023")


def test_predict_challenge_takes_a_year_by_name():
    from esrprof.zoo.registry import get

    model = get("SPAN").build()
    p = esrprof.predict_challenge(model, "ntire2026")
    assert p.preset == "ntire2026" and "A6000" in p.gpu.label
    assert esrprof.predict_challenge(model).preset == "ntire2022"  # the former default holds


# ------------------------------------------------------------------------ runs and data


class _Clock:
    name = "scripted"

    def __init__(self, durations):
        self.durations = list(durations)

    def time_ms(self, fn):
        fn()
        return float(self.durations.pop(0))


def _tiny_model():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2)).eval().requires_grad_(False)


def test_a_2026_run_averages_its_runs_and_records_the_protocol():
    from esrprof.results import Result
    from esrprof.run import RunConfig, measure

    config = RunConfig.for_challenge("ntire2026", device="cpu", synthetic="quick",
                                     splits=("valid",), max_images=2, warmup=0, nvml=False)
    assert (config.trials, config.challenge) == (5, "ntire2026")
    assert not config.resets_memory_per_split
    # five runs over two images: per-run means 2, 4, 6, 8, 10 -> averaged 6 (the best would be 2)
    run = measure(_tiny_model(), config, clock=_Clock([1, 3, 3, 5, 5, 7, 7, 9, 9, 11]))
    assert run.runtime_ms == pytest.approx(6.0)
    blocks = run.to_dict()
    assert blocks["runtime"]["protocol"] == "ntire2024"
    assert blocks["runtime"]["challenge"] == "ntire2026"
    assert blocks["runtime"]["splits"]["valid"]["trial_choice"] == "mean"
    assert blocks["run_config"]["challenge"] == "ntire2026"
    # the record reads back, its stated figure checked against the samples
    from esrprof.results import ModelInfo

    data = Result(model=ModelInfo(name="tiny"), input_shape=(1, 3, 8, 8),
                  counts=None, run=run, challenge="ntire2026").to_dict()
    again = Result.from_dict(json.loads(json.dumps(data)))
    assert again.run.runtime_ms == pytest.approx(6.0) and again.challenge == "ntire2026"


def test_a_2022_run_keeps_the_best_of_three():
    from esrprof.run import RunConfig, measure

    config = RunConfig.for_challenge("ntire2022", device="cpu", synthetic="quick",
                                     splits=("valid",), max_images=1, warmup=0, nvml=False)
    assert config.trials == 3 and config.resets_memory_per_split
    run = measure(_tiny_model(), config, clock=_Clock([5, 2, 9]))
    assert run.runtime_ms == 2.0


def test_an_unknown_challenge_in_a_run_config_is_a_usage_error():
    from esrprof.run import RunConfig

    with pytest.raises(UsageError, match="ntire2026"):
        RunConfig(challenge="ntire1999")


def test_the_synthetic_default_follows_the_years_image_count():
    from esrprof import data

    assert [len(s.images) for s in data.synthetic(challenge="ntire2026").splits] == [200, 200]
    assert [len(s.images) for s in data.synthetic(challenge="ntire2022").splits] == [100, 100]
    assert "100 LSDIR + 100 DIV2K" in data.synthetic(challenge="ntire2024").description


def test_the_div2k_lsdir_layout_valid_with_hr_test_without(tmp_path):
    import numpy as np
    from PIL import Image

    from esrprof import data

    def write(path, h, w):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 90, dtype=np.uint8)).save(path)

    layout = challenge("ntire2026").data
    valid, test = layout.split("valid"), layout.split("test")
    for name in ("000001", "0801"):
        write(tmp_path / valid.lr_dir / f"{name}{valid.lr_suffix}.png", 4, 6)
        write(tmp_path / valid.hr_dir / f"{name}.png", 16, 24)
    write(tmp_path / test.lr_dir / f"0901{test.lr_suffix}.png", 4, 6)  # no test HR given
    images = data.div2k(tmp_path, scale=4)
    v, t = images.split("valid"), images.split("test")
    assert [i.name for i in v.images] == ["000001", "0801"] and v.n_with_hr == 2
    assert len(t.images) == 1 and t.n_with_hr == 0


@pytest.mark.parametrize("name", ["ntire2024", "ntire2025", "ntire2026"])
def test_each_later_baseline_reproduces_its_years_published_figures(name):
    from esrprof.zoo.compare import measure
    from esrprof.zoo.registry import get

    rules = challenge(name)
    row = measure(get(rules.baseline.model), predict=False, rules=rules)
    assert row.reproduced is True, row.mismatches()  # RLFN 19.67 G, EFDN 16.70 G, SPAN 9.83 G
    assert row.expected.flops_g == rules.baseline.published.flops_g


def test_a_report_mixing_conventions_says_so(tmp_path, capsys, root, monkeypatch):
    from esrprof.cli import main
    from esrprof.report import ReportOptions, build_report
    from esrprof.zoo.registry import DATA_DIR

    monkeypatch.chdir(root)
    mine = tmp_path / "span.json"
    assert main(["profile", "reference_models/span.py:SPAN", "--no-predict", "--json",
                 str(mine)]) == 0
    capsys.readouterr()
    table = DATA_DIR / "ntire2022_table1.csv"
    report = build_report([mine, table], ReportOptions(predict_references=False))
    assert any("different conventions" in n and "span.json" in n for n in report.notes)
    same = tmp_path / "span22.json"
    assert main(["profile", "reference_models/span.py:SPAN", "--challenge", "ntire2022",
                 "--no-predict", "--json", str(same)]) == 0
    report = build_report([same, table], ReportOptions(predict_references=False))
    assert not any("different conventions" in n for n in report.notes)


def test_report_defaults_to_the_year_its_results_follow(tmp_path, capsys, monkeypatch, root):
    """Results profiled under the latest rules rank by that year's score with no --challenge;
    the 2022 table keeps its 2022 tracks; results of two years say so and rank neither."""
    from esrprof.cli import main

    monkeypatch.chdir(root)
    latest, old = tmp_path / "latest.json", tmp_path / "old.json"
    for path, extra in ((latest, []), (old, ["--challenge", "ntire2022", "--name", "SPAN-2022"])):
        assert main(["profile", "reference_models/span.py:SPAN", "--input-shape", "32x32",
                     "--json", str(path), *extra]) == 0
    capsys.readouterr()
    assert main(["report", str(latest), "-o", str(tmp_path / "r1"), "--no-charts",
                 "--no-predict"]) == 0
    doc = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert doc["options"]["challenge"] == "ntire2026"
    # no measured runtime: the year's score is left out, its predicted score ranks instead
    assert "predicted_score_ntire2026" in {b["key"] for b in doc["leaderboards"]}
    assert main(["report", str(latest), str(old), "-o", str(tmp_path / "r3"), "--no-charts",
                 "--no-predict"]) == 0
    doc = json.loads((tmp_path / "r3" / "report.json").read_text())
    assert doc["options"]["challenge"] is None  # two years: neither is imposed
    table = "reference_models/data/ntire2022_table1.csv"
    assert main(["report", table, "-o", str(tmp_path / "r2"), "--no-charts",
                 "--no-predict"]) == 0
    doc = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert doc["options"]["challenge"] is None
    assert {"main", "st1", "st2"} <= {b["key"] for b in doc["leaderboards"]}


_RESIZER = '''
import torch.nn.functional as F
from torch import nn


class Resizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.GELU()
        self.tail = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        y = self.act(self.conv(x))
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        return self.tail(y)
'''


def test_the_cards_divergences_follow_the_years_convention(tmp_path, capsys):
    """Under 2024-2026 rules the card explains fvcore's count against the complete one; under
    2022 rules the hooks' count. The model upsamples (fvcore: 4 per output element, the
    complete count 0 MACs) and has a GELU (the 2022 hooks: none)."""
    from esrprof.cli import main

    path = tmp_path / "resizer.py"
    path.write_text(_RESIZER)
    spec = f"{path}:Resizer"
    assert main(["profile", spec, "--input-shape", "16x16", "--no-predict",
                 "--challenge", "ntire2026"]) == 0
    later = capsys.readouterr().out
    assert "Divergences: ntire2024 - complete" in later and "ntire2024 [M]" in later
    assert "upsample_bilinear2d: 4 per output element" in later
    assert "Divergences: ntire2022" not in later
    assert main(["profile", spec, "--input-shape", "16x16", "--no-predict",
                 "--challenge", "ntire2022"]) == 0
    early = capsys.readouterr().out
    # the hooks see neither the functional upsample nor GELU as MACs: they agree here
    assert "Divergences: none — ntire2022 and the complete count agree" in early
    assert "ntire2024" not in early.split("Divergences")[1]
