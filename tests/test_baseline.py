"""Baseline files: round trip, atomic writes, and a clear error for every kind of bad file."""

from __future__ import annotations

import json

import pytest
from torch import nn

from esrprof.baseline import (
    Baseline,
    BaseSource,
    check_compatible,
    load_baseline,
    make_baseline,
    save_baseline,
)
from esrprof.errors import ModelError, ResultFileError, UsageError
from esrprof.loading import build

SOURCE = """
from torch import nn

from helpers import make_body


class Net(nn.Module):
    def __init__(self, width=4, depth=1):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = make_body(width, depth)

    def forward(self, x):
        return self.body(self.head(x))
"""

HELPERS = """
from torch import nn


def make_body(width, depth):
    return nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])
"""


class Clock:
    name = "fixed"

    def time_ms(self, fn):
        fn()
        return 1.5


@pytest.fixture
def saved(tmp_path):
    (tmp_path / "helpers.py").write_text(HELPERS)
    net = tmp_path / "net_b.py"
    net.write_text(SOURCE)
    model = build(f"{net}:Net", {"depth": 2})
    baseline = make_baseline(model, (1, 3, 8, 8), kwargs={"depth": 2}, clock=Clock(),
                             samples=10, environment={"hardware": "cpu X (1 threads)"})
    path = save_baseline(baseline, tmp_path / "b.json")
    return path, baseline, net


def test_round_trip(saved):
    path, baseline, _ = saved
    loaded = load_baseline(path)
    assert loaded == baseline
    assert loaded.median_ms == 1.5 and loaded.fast_end_ms == 1.5
    assert loaded.hardware == "cpu X (1 threads)"
    data = json.loads(path.read_text())
    assert data["kind"] == "esrprof-baseline" and data["schema_version"] == 1
    assert data["latency"]["samples_ms"] == [1.5] * 10


def test_base_is_rebuilt_from_the_stored_copy_after_the_file_changes(saved):
    path, _, net = saved
    net.write_text(SOURCE.replace("depth=1", "depth=5").replace("width=4", "width=16"))
    base = load_baseline(path).build_base()
    assert len(base.body) == 2 and base.head.out_channels == 4  # the kwargs and the old file


def test_never_overwrites_without_force(saved):
    path, baseline, _ = saved
    before = path.read_bytes()
    with pytest.raises(UsageError, match="exists; pass --force"):
        save_baseline(baseline, path)
    assert path.read_bytes() == before
    save_baseline(baseline, path, force=True)
    assert [p.name for p in path.parent.glob(".*tmp")] == []


def _rewrite(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("kind"), "not an esrprof baseline"),
        (lambda d: d["base"].pop("source"), "corrupt baseline"),
        (lambda d: d["latency"].update(samples_ms=[]), "no valid latency samples"),
        (lambda d: d["latency"].update(samples_ms=[1.0, -2.0]), "no valid latency samples"),
        (lambda d: d.update(input_shape=[1, 3, 0, 8]), "bad input_shape"),
        (lambda d: d.update(input_shape="abc"), "corrupt baseline"),
        (lambda d: d["base"].update(sha256="0" * 64), "does not match its sha256"),
        (lambda d: d.update(schema_version=2), "newer than this esrprof reads"),
        (lambda d: d.update(schema_version="1"), "invalid schema_version"),
    ],
)
def test_bad_files_are_clear_errors(saved, edit, message):
    path, _, _ = saved
    _rewrite(path, edit)
    with pytest.raises(ResultFileError, match=message):
        load_baseline(path)


def test_truncated_and_missing_files(saved, tmp_path):
    path, _, _ = saved
    path.write_text(path.read_text()[:200])
    with pytest.raises(ResultFileError, match="not valid JSON"):
        load_baseline(path)
    with pytest.raises(ResultFileError, match="no such file"):
        load_baseline(tmp_path / "nope.json")


def test_compatibility_checks(saved):
    _, b, _ = saved
    hw = "cpu X (1 threads)"
    assert check_compatible(b, class_name="Net", input_shape=(1, 3, 8, 8), hardware=hw) == []
    with pytest.raises(ResultFileError, match="is for model Net"):
        check_compatible(b, class_name="Other", input_shape=None, hardware=hw)
    with pytest.raises(ResultFileError, match="input shape 1x3x8x8, not 1x3x9x9"):
        check_compatible(b, class_name=None, input_shape=(1, 3, 9, 9), hardware=hw)
    with pytest.raises(ResultFileError, match="--allow-other-hardware"):
        check_compatible(b, class_name=None, input_shape=None, hardware="gpu Y")
    notes = check_compatible(b, class_name=None, input_shape=None, hardware="gpu Y",
                             allow_other_hardware=True)
    assert "absolute check skipped" in notes[0]


def test_a_source_that_no_longer_imports_is_a_model_error(saved):
    _, b, _ = saved
    broken = BaseSource(b.base.module, b.base.file, "Net", "import not_a_module_xyz\n",
                        "x" * 64)
    with pytest.raises(ModelError, match="does not import"):
        broken.build({})


def test_classes_without_a_source_file_are_refused():
    klass = type("Dynamic", (nn.Module,), {"__module__": "not_a_real_module"})
    with pytest.raises(UsageError, match="source file"):
        BaseSource.of_class(klass)


def test_from_dict_rejects_a_result_file():
    with pytest.raises(ResultFileError, match="it is an esrprof result"):
        Baseline.from_dict({"schema_version": 1, "counts": {}}, "r.json")
