"""Report inputs whose values make no sense are refused with the file and the field, hostile
text is written safely, and Markdown outputs escape it (issue 10, items 5 and 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import esrprof
from esrprof.cli import main
from esrprof.results import ModelInfo, Result
from esrprof.run import RunConfig, measure


class _Clock:
    name = "scripted"

    def __init__(self, ms: float) -> None:
        self.ms = ms

    def time_ms(self, fn):
        fn()
        return self.ms


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2))


def write_run_result(folder: Path, name: str, ms: float = 5.0) -> Path:
    """A real result with counts and a run (tiny model, one quick image per split)."""
    model = _model()
    cfg = RunConfig(synthetic="quick", max_images=1, scale=2, pixel_range=1, warmup=0,
                    trials=1, nvml=False, threads=1)
    run = measure(model, cfg, clock=_Clock(ms))
    counts = esrprof.count(model, (1, 3, 16, 16))
    result = Result(ModelInfo(name=name), counts.input_shape, counts, run, run.environment)
    return result.save(folder / f"{name}.json")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("good")
    return json.loads(write_run_result(folder, "net").read_text())


def _edited(tmp_path: Path, doc: dict, name: str = "bad.json", raw: str | None = None) -> Path:
    p = tmp_path / name
    p.write_text(raw if raw is not None else json.dumps(doc))
    return p


def _refused(capsys, tmp_path, *inputs) -> str:
    out = tmp_path / "out"
    code = main(["report", *map(str, inputs), "-o", str(out), "--no-charts"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("esrprof: error: ") and "\n" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("value", [-5, 0, "fast", "nan", [], True])
def test_result_runtime_that_makes_no_sense_is_refused(good, tmp_path, capsys, value):
    doc = json.loads(json.dumps(good))
    doc["runtime"]["runtime_ms"] = value
    err = _refused(capsys, tmp_path, _edited(tmp_path, doc))
    assert "bad.json" in err and "runtime.runtime_ms" in err


def test_result_infinite_runtime_is_refused(good, tmp_path, capsys):
    text = json.dumps(good).replace(f'"runtime_ms": {good["runtime"]["runtime_ms"]!r}',
                                    '"runtime_ms": 1e999', 1)
    assert "1e999" in text
    err = _refused(capsys, tmp_path, _edited(tmp_path, good, raw=text))
    assert "bad.json" in err and "runtime.runtime_ms" in err


def test_result_runtime_that_disagrees_with_its_samples_is_refused(good, tmp_path, capsys):
    doc = json.loads(json.dumps(good))
    doc["runtime"]["runtime_ms"] = 1.0  # plausible, but not what the samples say
    err = _refused(capsys, tmp_path, _edited(tmp_path, doc))
    assert "runtime.runtime_ms" in err and "samples" in err


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("runtime", "splits", "valid", "samples_ms", 0, 0), -5.0, "samples_ms"),
        (("memory", "memory_mib"), -1.0, "memory.memory_mib"),
        (("counts", "params"), -3, "counts.params"),
        (("counts", "ntire2022_layers", 0, "macs"), -10, "macs"),
        (("quality", "psnr_db", "valid"), "high", "quality.psnr_db.valid"),
    ],
)
def test_result_figures_that_make_no_sense_are_refused(good, tmp_path, capsys, path, value,
                                                       field):
    doc = json.loads(json.dumps(good))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    err = _refused(capsys, tmp_path, _edited(tmp_path, doc))
    assert "bad.json" in err and field in err


def test_result_nested_thousands_deep_is_one_line(tmp_path, capsys):
    deep = '{"schema_version": 1, "model": ' + "[" * 50000 + "]" * 50000 + "}"
    err = _refused(capsys, tmp_path, _edited(tmp_path, {}, raw=deep))
    assert "bad.json" in err and "nested" in err


def test_result_loads_back_as_the_same_run_types(good, tmp_path):
    from esrprof.results import load_result
    from esrprof.run import RunResult

    loaded = load_result(_edited(tmp_path, good, "ok.json"))
    assert isinstance(loaded.run, RunResult)
    # the file's mark (who wrote it, its hash) is the file's, not the record's
    assert loaded.to_dict() == {k: v for k, v in good.items() if k != "esrprof_file"}


@pytest.mark.parametrize(
    "cell, column",
    [("-5", "runtime_ms"), ("0", "runtime_ms"), ("inf", "runtime_ms"), ("nan", "runtime_ms"),
     ("NaN", "runtime_ms"), ("-0.1", "params_M"), ("-3", "mem_M"), ("1e999", "flops_G")],
)
def test_csv_values_that_make_no_sense_are_refused(tmp_path, capsys, cell, column):
    cols = ["runtime_ms", "params_M", "flops_G", "mem_M"]
    row = {c: "1" for c in cols}
    row[column] = cell
    p = tmp_path / "t.csv"
    p.write_text("team," + ",".join(cols) + "\nA," + ",".join(row[c] for c in cols)
                 + "\nB,2,2,2,2\n")
    err = _refused(capsys, tmp_path, p)
    assert "t.csv" in err and "line 2" in err and column in err


def test_csv_empty_cell_means_not_measured(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms,params_M,flops_G\nA,,0.3,20\nB,2,0.2,12\n")
    assert main(["report", str(p), "-o", str(tmp_path / "o"), "--no-charts"]) == 0


def test_surrogates_in_names_are_written_safely(good, tmp_path):
    doc = json.loads(json.dumps(good))
    doc["model"]["name"] = "net\udcff"
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))  # ensure_ascii: the lone surrogate travels as \\udcff
    out = tmp_path / "o"
    assert main(["report", str(p), "-o", str(out), "--no-charts"]) == 0
    entries = (out / "entries.csv").read_text(encoding="utf-8")
    assert "net" in entries


def test_markdown_outputs_escape_pipes_and_html(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('team,runtime_ms,params_M,flops_G\n"a|b",1,0.3,20\n'
                 '"<script>x</script>&co",2,0.2,12\nplain,3,0.1,10\n')
    out = tmp_path / "o"
    assert main(["report", str(p), "-o", str(out), "--no-charts"]) == 0
    for md in ("leaderboards/main.md", "report.md"):
        text = (out / md).read_text()
        assert "a\\|b" in text and "<script>" not in text, md
        assert "&lt;script&gt;x&lt;/script&gt;&amp;co" in text, md
    page = (out / "index.html").read_text()
    assert "<script>" not in page and "&amp;lt;" not in page
    assert "&lt;script&gt;" in page


def test_hostile_names_reach_the_charts_safely(good, tmp_path):
    """Dollar signs are text, not mathtext, and a surrogate in a result with per-layer counts
    (a chart titled with its name) is drawn and written."""
    doc = json.loads(json.dumps(good))
    doc["model"]["name"] = "net\udcff"
    (tmp_path / "s.json").write_text(json.dumps(doc))
    t = tmp_path / "t.csv"
    t.write_text('team,runtime_ms,params_M,flops_G\n"a$b",1,0.3,20\n"$x^$",2,0.2,12\n'
                 "c,3,0.1,10\n")
    out = tmp_path / "o"
    assert main(["report", str(tmp_path / "s.json"), str(t), "-o", str(out),
                 "--allow-mixed-hardware"]) == 0
    assert (out / "charts" / "flops_vs_runtime.png").is_file()
    assert list((out / "charts").glob("layers_*net*.png"))
