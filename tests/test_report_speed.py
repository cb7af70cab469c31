"""The report's charts: drawn in parallel worker processes with the same bytes as drawn one by
one, only the formats asked for, labels that never overlap (even in a dense cluster), labels
by model name, and correlations per hardware group. (Timing is a benchmark, not a test:
benchmarks/bench_report.py.)"""

from __future__ import annotations

import math
import random

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
pytest.importorskip("adjustText")

from esrprof.errors import UsageError  # noqa: E402
from esrprof.rankstats import kendall, spearman  # noqa: E402
from esrprof.report import ReportOptions, build_report  # noqa: E402
from esrprof.report import charts as C  # noqa: E402
from esrprof.report.inputs import load_entries  # noqa: E402
from esrprof.report.summary import analyse, correlations, hardware_groups  # noqa: E402


def _table(n: int = 30, seed: int = 0, spread: float = 0.02) -> object:
    """n entries packed into a small cluster of a log-log plot."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        f = 20 * (1 + spread * rng.random())
        rows.append({"model": f"entry_{i:02d}_long_name", "flops_g": f,
                     "runtime_ms": 30 * (1 + spread * rng.random()), "params_m": 0.3,
                     "acts_m": 80.0, "memory_mib": 300.0, "hardware": "GPU A"})
    return pd.DataFrame(rows)


def test_labels_in_a_dense_cluster_never_overlap():
    import matplotlib

    with matplotlib.rc_context(C.RC):
        fig = C.scatter_figure(_table(), "flops_g", "runtime_ms", "dense", with_trend=True)
    texts = [t for t in fig.axes[0].texts if t.get_gid() == C.LABEL_GID]
    assert len(texts) == 30
    assert C.label_overlaps(fig) == []


def test_label_overlaps_sees_an_overlap():
    """The check itself can fail: two labels drawn on one spot are reported."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name in ("first", "second"):
        ax.text(0.5, 0.5, name).set_gid(C.LABEL_GID)
    assert C.label_overlaps(fig) == [("first", "second")]


def test_parallel_charts_equal_serial_ones(tmp_path, root):
    entries = load_entries([root / "reference_models/data/ntire2022_table1.csv"])
    findings = analyse(entries.table)
    serial = C.write_charts(entries, findings, tmp_path / "1", workers=1)
    parallel = C.write_charts(entries, findings, tmp_path / "2", workers=2)
    assert [c.to_dict() for c in serial] == [c.to_dict() for c in parallel]
    for chart in serial:
        for name in (chart.png, chart.svg):
            assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_only_the_formats_asked_for(tmp_path, root):
    entries = load_entries([root / "reference_models/data/ntire2022_table1.csv"])
    drawn = C.write_charts(entries, analyse(entries.table), tmp_path, formats=("svg",),
                           workers=1)
    assert drawn and all(c.png == "" and c.svg.endswith(".svg") for c in drawn)
    assert not list(tmp_path.glob("*.png"))
    assert C.parse_formats("png, SVG") == ("png", "svg")
    for bad in ("", "jpg", "png,gif"):
        with pytest.raises(UsageError):
            C.parse_formats(bad)


def test_reference_rows_are_labelled_by_model_name(root):
    report = build_report([root / "reference_models/data/ntire2022_table1.csv"],
                          ReportOptions(predict_references=False))
    labels = C.chart_labels(report.entries)
    assert labels["ByteESR"] == "RLFN" and labels["NJU_Jet"] == "FMEN"
    assert "Virtual_Reality Team" not in labels  # no model name: its own name is drawn


def test_correlations_are_per_hardware_group():
    gpu = _table(12, spread=1.0)
    cpu = pd.DataFrame([{"model": f"cpu_{i}", "flops_g": 10.0 + i, "runtime_ms": 900.0 - i,
                         "hardware": "Some CPU (2 threads)"} for i in range(4)])
    table = pd.concat([gpu, cpu], ignore_index=True)
    groups = hardware_groups(table, "flops_g", "runtime_ms")
    assert [(hw, len(rows)) for hw, rows in groups] == [("GPU A", 12),
                                                        ("Some CPU (2 threads)", 4)]
    found = correlations(table, "flops_g", "runtime_ms")
    assert [(c.hardware, c.n) for c in found] == [("GPU A", 12), ("Some CPU (2 threads)", 4)]
    assert found[1].spearman == pytest.approx(-1.0)  # the CPU rows alone, never pooled
    findings = analyse(table)
    assert findings.correlation("flops_g", "runtime_ms").n == 12
    assert findings.trend.n == 12  # the trend is fitted on one machine's rows
    from esrprof.report.summary import summary_markdown

    text = summary_markdown(findings)
    assert "never pooled" in text and "| Some CPU (2 threads) |" in text
    # one machine: no hardware label anywhere
    alone = correlations(gpu, "flops_g", "runtime_ms")
    assert len(alone) == 1 and alone[0].hardware == "" and alone[0].n == 12


def test_rank_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    for n in (3, 5, 12, 33, 34, 50):
        x = [rng.random() for _ in range(n)]
        y = [v + rng.gauss(0, 0.4) for v in x]
        for xs, ys in ((x, y), ([round(v, 1) for v in x], [round(v, 1) for v in y])):
            rho, p = spearman(xs, ys)
            tau, q = kendall(xs, ys)
            ref_s, ref_k = stats.spearmanr(xs, ys), stats.kendalltau(xs, ys)
            assert rho == pytest.approx(ref_s[0], abs=1e-12)
            assert p == pytest.approx(ref_s[1], rel=1e-9, abs=1e-15)
            assert tau == pytest.approx(ref_k[0], abs=1e-12)
            assert q == pytest.approx(ref_k[1], rel=1e-9, abs=1e-15)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])[0])
