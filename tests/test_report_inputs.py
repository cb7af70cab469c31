"""Reading report inputs: result JSONs, challenge CSVs, and every bad input's one-line error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from esrprof.errors import ResultFileError, UsageError
from esrprof.report import load_entries
from esrprof.report.inputs import read_table
from esrprof.results import SCHEMA_VERSION, Counts, ModelInfo, NtireRecord, OpRecord, Result
from esrprof.run import ImageQuality, RunConfig, RunResult, SplitResult
from esrprof.timing import Trials

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"


def fake_run(runtime: float, hardware: str | None) -> RunResult:
    """A run record as `measure` returns it: one image per split, the given runtime, a CUDA
    memory peak of 100 + runtime MiB and PSNR 29.1 / 28.8."""
    splits = tuple(
        SplitResult(name=name, images=("0801",), shapes=((10, 10),),
                    trials=Trials.of([[runtime]]), warmup_forwards=1,
                    memory={"kind": "cuda", "max_allocated_mib": 100.0 + runtime},
                    quality=(ImageQuality("0801", psnr, None),))
        for name, psnr in (("valid", 29.1), ("test", 28.8))
    )
    env = {"hardware": hardware} if hardware else {}
    return RunResult(config=RunConfig(device="cpu", trained=True), device="cuda:0",
                     clock="cuda_event", threads=1, scale=4, pixel_range=1, splits=splits,
                     data={}, environment=env)


def write_result(folder: Path, name: str, *, runtime: float | None = 10.0,
                 hardware: str | None = "NVIDIA H100 80GB HBM3", macs: int = 2_000_000_000,
                 file: str | None = None) -> Path:
    """A small but complete result record, as `esrprof profile --json` writes it."""
    ops = (
        OpRecord("body.0", "Conv2d", "aten.convolution", "conv", 1, macs // 4 * 3, 1000),
        OpRecord("tail", "Conv2d", "aten.convolution", "conv", 1, macs // 4, 500),
        OpRecord("body.1", "ReLU", "aten.relu", "activation", 1, 0, 1000),
    )
    layers = (NtireRecord("body.0", "Conv2d", "conv", 1, macs // 4 * 3, 1000, 1),
              NtireRecord("tail", "Conv2d", "conv", 1, macs // 4, 500, 1))
    counts = Counts(params=300_000, buffers=0, input_shape=(1, 3, 256, 256), backend="fake",
                    fallback_reason=None, ops=ops, ntire2022_layers=layers)
    run = fake_run(runtime, hardware) if runtime is not None else None
    env = {"hardware": hardware} if hardware else {}
    result = Result(ModelInfo(name=name), (1, 3, 256, 256), counts, run, env)
    return result.save(folder / (file or f"{name}.json"))


def test_shipped_table_columns():
    table = load_entries([TABLE]).table
    row = table.set_index("model").loc["ByteESR"]
    assert (row["runtime_ms"], row["params_m"], row["flops_g"]) == (27.11, 0.317, 19.70)
    assert (row["acts_m"], row["memory_mib"], row["convs"]) == (80.05, 377.91, 39)
    assert (row["printed_st1_sum"], row["printed_st2_rank"], row["printed_ranked"]) == (22, 2, 1)
    assert set(table["hardware"]) == {"Titan Xp (NTIRE 2022 published table)"}
    assert math.isnan(table.set_index("model").loc["VAP", "printed_main_rank"])


def test_result_json_row_and_layers(tmp_path):
    path = write_result(tmp_path, "tiny", runtime=12.5)
    entries = load_entries([path])
    row = entries.table.iloc[0]
    assert row["model"] == "tiny"
    assert row["params_m"] == pytest.approx(0.3)
    assert row["flops_g"] == pytest.approx(2.0)
    assert (row["runtime_ms"], row["memory_mib"], row["psnr_val"]) == (12.5, 112.5, 29.1)
    assert row["hardware"] == "NVIDIA H100 80GB HBM3"
    layers = entries.layers["tiny"]
    assert [r["module"] for r in layers] == ["body.0", "tail"]  # zero-MAC ReLU left out
    assert layers[0]["macs"] == 1_500_000_000


def test_folder_expands_to_json_and_csv(tmp_path):
    write_result(tmp_path, "a")
    write_result(tmp_path, "b")
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_entries([tmp_path]).models == ["a", "b"]


def test_csv_with_summary_columns(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("model,runtime_ms,params_m,flops_g,hardware\nA,10,0.3,20,RTX 4090\n"
                 "B,12,0.2,,RTX 4090\n")
    table = load_entries([p]).table.set_index("model")
    assert table.loc["A", "flops_g"] == 20.0
    assert math.isnan(table.loc["B", "flops_g"])
    assert table.loc["B", "hardware"] == "RTX 4090"


def test_counts_only_results_mix_with_anything(tmp_path):
    a = write_result(tmp_path, "a", runtime=None, hardware=None)
    entries = load_entries([a, TABLE])  # counts are hardware-independent
    assert len(entries.table) == 46


# ---- bad input: one clear message each -------------------------------------------------------

def test_unreadable_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(ResultFileError, match=r"broken\.json: not valid JSON"):
        load_entries([p])


def test_missing_file(tmp_path):
    with pytest.raises(ResultFileError, match="no such file"):
        load_entries([tmp_path / "absent.json"])


def test_newer_schema(tmp_path):
    p = write_result(tmp_path, "a")
    data = json.loads(p.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    p.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match="newer than this esrprof reads"):
        load_entries([p])


def test_csv_without_metric_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("team,score\nA,1\n")
    with pytest.raises(ResultFileError, match="no metric columns"):
        read_table(p)


def test_csv_without_name_column(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("runtime_ms\n1\n")
    with pytest.raises(ResultFileError, match="no model column"):
        read_table(p)


def test_csv_non_number(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms\nA,1\nB,fast\n")
    with pytest.raises(ResultFileError, match="line 3: column 'runtime_ms' holds 'fast'"):
        read_table(p)


def test_empty_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("")
    with pytest.raises(ResultFileError, match="not a readable CSV"):
        read_table(p)


def test_duplicate_model_names(tmp_path):
    a = write_result(tmp_path, "RLFN", file="one.json")
    b = write_result(tmp_path, "RLFN", file="two.json")
    with pytest.raises(UsageError, match=r"duplicate model name 'RLFN' in one\.json, two\.json"):
        load_entries([a, b])


def test_mixed_hardware_refused_then_allowed(tmp_path):
    a = write_result(tmp_path, "a", hardware="NVIDIA H100")
    b = write_result(tmp_path, "b", hardware="NVIDIA A100")
    with pytest.raises(UsageError, match=r"different hardware.*--allow-mixed-hardware"):
        load_entries([a, b])
    assert len(load_entries([a, b], allow_mixed_hardware=True).table) == 2


def test_published_table_is_a_labelled_reference_beside_local_results(tmp_path):
    """The quick-start path: a local run beside the challenge's table is reported, with a note
    saying where each was measured, not refused as mixed hardware."""
    a = write_result(tmp_path, "a", hardware="AMD EPYC 7B13 (1 threads)")
    entries = load_entries([a, TABLE])
    table = entries.table.set_index("model")
    assert table.loc["ByteESR", "hardware"] == "Titan Xp (NTIRE 2022 published table)"
    assert table.loc["a", "hardware"] == "AMD EPYC 7B13 (1 threads)"
    note = " ".join(entries.notes)
    assert "Titan Xp" in note and "AMD EPYC 7B13 (1 threads)" in note
    # Two local machines are still refused, reference or not.
    b = write_result(tmp_path, "b", hardware="NVIDIA A100")
    with pytest.raises(UsageError, match="different hardware"):
        load_entries([a, b, TABLE])


def test_a_table_with_its_own_hardware_column_is_not_a_reference(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("team,runtime_ms,hardware\nA,1,GPU1\n")
    a = write_result(tmp_path, "a", hardware="GPU2")
    with pytest.raises(UsageError, match="different hardware"):
        load_entries([a, p])


def test_unknown_hardware_is_never_equal_to_another(tmp_path):
    a = write_result(tmp_path, "a", hardware=None)
    b = write_result(tmp_path, "b", hardware=None)
    with pytest.raises(UsageError, match="unknown hardware"):
        load_entries([a, b])
