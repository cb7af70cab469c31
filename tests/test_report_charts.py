"""Charts are real images: PIL opens every PNG, every SVG parses as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from esrprof.report import load_entries
from esrprof.report.charts import write_charts
from esrprof.report.summary import analyse, summary_markdown
from esrprof.results import Counts, ModelInfo, OpRecord, Result

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"


def _check_images(folder: Path, charts) -> None:
    for chart in charts:
        with Image.open(folder / chart.png) as im:
            im.verify()  # a truncated or corrupt PNG raises here
        with Image.open(folder / chart.png) as im:
            assert im.format == "PNG"
            assert im.width > 300 and im.height > 200
        root = ET.parse(folder / chart.svg).getroot()
        assert root.tag.endswith("svg")


@pytest.fixture(scope="module")
def table_charts(tmp_path_factory):
    out = tmp_path_factory.mktemp("charts")
    entries = load_entries([TABLE])
    return out, write_charts(entries, analyse(entries.table), out)


def test_table_charts_are_valid_images(table_charts):
    out, charts = table_charts
    assert [c.key for c in charts] == [
        "flops_vs_runtime", "rank_shift", "params_vs_runtime", "acts_vs_memory"]
    _check_images(out, charts)


def test_scatter_shows_correlations_and_labels(table_charts):
    out, charts = table_charts
    svg = (out / "flops_vs_runtime.svg").read_text()
    assert "Spearman" in svg and "Kendall" in svg and "trend" in svg
    # ByteESR entered RLFN, a reference model: labelled by the model name
    assert "RLFN" in svg and "Virtual_Reality Team" in svg
    assert "ρ = 0.460" in charts[0].caption


def test_charts_are_reproducible(tmp_path):
    """No dates or random ids: a regenerated report does not churn in version control."""
    csv = tmp_path / "t.csv"
    csv.write_text("team,runtime_ms,flops_G,params_M,acts_M,mem_M\n"
                   "A,10,5,0.1,50,300\nB,30,4,0.2,90,500\nC,20,9,0.3,70,200\nD,15,6,0.2,60,250\n")
    entries = load_entries([csv])
    first = write_charts(entries, analyse(entries.table), tmp_path / "1")
    write_charts(entries, analyse(entries.table), tmp_path / "2")
    assert len(first) == 4
    for a in first:
        for name in (a.svg, a.png):
            assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_layer_charts_from_results(tmp_path):
    ops = tuple(
        OpRecord(f"body.{i}", "Conv2d", "aten.convolution", "conv", 1, (i + 1) * 10**8, 10)
        for i in range(14)
    )
    paths = []
    for name in ("net/a", "net b"):
        counts = Counts(1000, 0, (1, 3, 64, 64), "fake", None, ops, ())
        result = Result(ModelInfo(name), (1, 3, 64, 64), counts)
        paths.append(result.save(tmp_path / f"{len(paths)}.json"))
    entries = load_entries(paths)
    charts = write_charts(entries, analyse(entries.table), tmp_path / "c", top_layers=5)
    keys = [c.key for c in charts]
    assert keys == ["layers_01_net_b", "layers_02_net_a"]  # no runtime: no scatter charts
    _check_images(tmp_path / "c", charts)
    svg = (tmp_path / "c" / charts[0].svg).read_text()
    assert "body.13" in svg and "body.8" not in svg  # top 5 of 14 only


def test_summary_names_slow_and_fast_models():
    entries = load_entries([TABLE])
    findings = analyse(entries.table)
    text = summary_markdown(findings)
    assert "Spearman ρ = 0.460" in text and "Kendall τ = 0.326" in text
    slow = [d.model for d in findings.slower(3)]
    assert slow[0] == "NJUST_ESR"  # 164.80 ms for 8.73 G: the most over its FLOPs' trend
    fast = findings.faster(5)
    assert "NJU_Jet" in [d.model for d in fast]
    assert all(d.factor < 1 for d in fast)
    xpixel = next(d for d in findings.deviations if d.model == "XPixel")
    assert xpixel.rank_shift == xpixel.runtime_rank - xpixel.flops_rank == 33
