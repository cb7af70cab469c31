"""Every record read back is validated like a result (issue 16, item 4): a result's prediction
block, its GPU spec and calibration, a baseline's figures, a monitor log's first record. One
bad field is one line naming the file and the field, exit 2; nothing reaches a report."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import esrprof
from esrprof.cli import main
from esrprof.errors import OutputError, ResultFileError
from esrprof.prediction.gpus import GpuSpec
from esrprof.prediction.records import Prediction
from esrprof.results import Result, load_result


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """A result file with a prediction block, as esrprof writes it."""
    path = tmp_path_factory.mktemp("good") / "tiny.json"
    esrprof.profile(Tiny(), (1, 3, 8, 8), name="tiny", predict=True).save(path)
    doc = json.loads(path.read_text())
    assert doc["prediction"]["runtime"]["ms"] > 0
    return doc


def _set(doc: dict, dotted: str, value) -> dict:
    doc = copy.deepcopy(doc)
    doc.pop("esrprof_file", None)
    node = doc
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


BAD_FIELDS = [
    ("prediction.runtime.ms", -5),
    ("prediction.runtime.ms", 0),
    ("prediction.runtime.ms", 1e308),
    ("prediction.runtime.ms", "RAW:1e999"),
    ("prediction.runtime.ms", True),
    ("prediction.runtime.ms", None),
    ("prediction.runtime.ms", "12"),
    ("prediction.memory.peak_allocated_mib", -1.0),
    ("prediction.memory.weights_mib", "3"),
    ("prediction.runtime.memory_bound_share", 5),
    ("prediction.runtime.floor_share", -0.1),
    ("prediction.runtime.kernels", -1),
    ("prediction.runtime.kernels", 2.5),
    ("prediction.runtime.by_kind.0.share", 5),
    ("prediction.runtime.by_kind.0.ms", "fast"),
    ("prediction.runtime.top_layers.0.kernels", -1),
    ("prediction.runtime.input_shape", [1, 3, 0, 8]),
    ("prediction.gpu.bandwidth_gbs", 5e-324),
    ("prediction.gpu.fp32_tflops", "RAW:-1e999"),
    ("prediction.gpu.floor_us", 1e308),
    ("prediction.calibration.bandwidth_efficiency", 7),
    ("prediction.calibration.kernel_floor_us", -3),
    ("prediction.dtype", 16),
    ("counts.params", -1),
    ("counts.layers.0.macs", -4),
    ("model.name", 5),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS,
                         ids=[f"{f}={v!r}" for f, v in BAD_FIELDS])
def test_a_bad_field_is_one_line_with_file_and_field(good, tmp_path, capsys, field, value):
    doc = _set(good, field, "__RAW__" if isinstance(value, str) and value.startswith("RAW:")
               else value)
    text = json.dumps(doc)
    if isinstance(value, str) and value.startswith("RAW:"):
        text = text.replace('"__RAW__"', value[4:])
    path = tmp_path / "edited.json"
    path.write_text(text)
    with pytest.raises(ResultFileError) as err:
        load_result(path)
    message = str(err.value)
    shown = field.split(".")
    assert str(path) in message and "\n" not in message
    # the field is named the way it is found: prediction.runtime.by_kind[0].share
    assert shown[-1] in message and shown[0] in message
    code = main(["report", str(path), "-o", str(tmp_path / "out"), "--no-charts"])
    err_text = capsys.readouterr().err.strip()
    assert code == 2 and err_text.count("\n") == 0 and "edited.json" in err_text
    assert not (tmp_path / "out").exists()


def test_a_good_result_reads_back_equal(good, tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(good))
    loaded = load_result(path)
    assert loaded.prediction is not None
    assert Prediction.from_dict(loaded.prediction.to_dict()) == loaded.prediction
    assert loaded.to_dict() == {k: v for k, v in good.items() if k != "esrprof_file"}


def test_a_prediction_block_from_a_dict_names_its_field(good):
    block = _set(good, "prediction.runtime.top_layers.0.share", 2)["prediction"]
    with pytest.raises(ResultFileError, match=r"prediction\.runtime\.top_layers\[0\]\.share"):
        Prediction.from_dict(block, "prediction", "r.json")


@pytest.mark.parametrize("key", ["fp32_tflops", "bandwidth_gbs", "floor_us", "memory_gib"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 1e308, "9", True])
def test_gpu_spec_fields_are_checked_on_reading(key, value):
    data = {**GpuSpec("g", "G", 10.0, 500.0).to_dict(), key: value}
    with pytest.raises(ResultFileError, match=f"gpu.{key}"):
        GpuSpec.from_dict(data, "gpu", "spec.json")


@pytest.mark.parametrize("spec", [
    "custom:fp32_tflops=14,bandwidth_gbs=5e-324",
    "custom:fp32_tflops=1e400,bandwidth_gbs=500",
    "custom:fp32_tflops=14,bandwidth_gbs=500,floor_us=1e308",
    "custom:fp32_tflops=1e-300,bandwidth_gbs=500",
    "custom:fp32_tflops=14,bandwidth_gbs=inf",
])
def test_custom_gpu_values_that_make_inf_or_nan_are_refused_with_their_field(spec, capsys):
    field = spec.rsplit(",", 1)[1].split("=")[0] if "5e-324" in spec or "inf" in spec or \
        "floor" in spec else "fp32_tflops"
    from esrprof.errors import UsageError
    from esrprof.prediction.gpus import gpu_spec

    with pytest.raises(UsageError, match=field):
        gpu_spec(spec)
    code = main(["profile", "--input-shape", "8x8", "--gpu", spec])
    err = capsys.readouterr().err.strip()
    assert code == 2 and field in err and "\n" not in err


def test_a_gpu_spec_object_out_of_range_is_refused():
    from esrprof.errors import UsageError

    with pytest.raises(UsageError, match="bandwidth_gbs"):
        esrprof.predict(Tiny(), (1, 3, 8, 8), gpu=GpuSpec("g", "G", 10.0, 5e-324))


def test_empty_gpu_is_refused_like_the_api(capsys):
    code = main(["profile", "--input-shape", "8x8", "--gpu", ""])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "GPU must be" in err


TINY_SOURCE = """import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))
"""


@pytest.fixture(scope="module")
def baseline_doc(tmp_path_factory) -> tuple[Path, dict]:
    from esrprof.latency.baseline import make_baseline, save_baseline

    folder = tmp_path_factory.mktemp("base")
    model_file = folder / "tinynet.py"
    model_file.write_text(TINY_SOURCE)
    from esrprof.loading import build

    spec = f"{model_file}:Tiny"
    b = make_baseline(build(spec, {}), (1, 3, 8, 8), kwargs={}, spec=spec, name="tiny",
                      samples=8, threads=1)
    path = save_baseline(b, folder / "b.json")
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(("where", "value"), [
    ("latency.samples_ms.0", 1e308), ("latency.samples_ms.1", -5), ("model.params", -1),
    ("model.params", "3"),
])
def test_baseline_figures_are_checked_with_file_and_field(baseline_doc, tmp_path, where, value):
    from esrprof.latency.baseline import load_baseline

    _, doc = baseline_doc
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(_set(doc, where, value)))
    with pytest.raises(ResultFileError) as err:
        load_baseline(path)
    assert str(path) in str(err.value) and where.split(".")[1] in str(err.value)


def test_a_saved_baseline_reads_back(baseline_doc):
    from esrprof.latency.baseline import load_baseline

    path, doc = baseline_doc
    assert "esrprof_file" in doc and load_baseline(path).name == "tiny"


def test_a_monitor_log_is_checked_before_appending(tmp_path):
    log = tmp_path / "eff.jsonl"
    m = esrprof.Monitor(Tiny(), (1, 3, 8, 8), every=1, log=log, count=False, repeats=1)
    m.step()
    esrprof.Monitor(Tiny(), (1, 3, 8, 8), every=1, log=log, count=False)  # ours: accepted
    record = json.loads(log.read_text().splitlines()[0])
    for field, value in [("latency_ms", -5), ("latency_ms", "fast"), ("step", 1.5)]:
        bad = tmp_path / f"bad_{field}_{value}.jsonl"
        bad.write_text(json.dumps({**record, field: value}) + "\n")
        with pytest.raises(OutputError, match=field):
            esrprof.Monitor(Tiny(), (1, 3, 8, 8), log=bad, count=False)


def test_results_import_nothing_that_computes():
    import subprocess
    import sys

    code = ("import sys, esrprof.results, esrprof.validate, esrprof.prediction.records; "
            "heavy = [m for m in ('torch', 'esrprof.counting.formulas', 'esrprof.run', "
            "'esrprof.api', 'pandas') if m in sys.modules]; print(heavy); "
            "sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_result_with_prediction_round_trips_in_memory(good):
    result = Result.from_dict(good, "good.json")
    assert Result.from_dict(result.to_dict(), "again").prediction == result.prediction
