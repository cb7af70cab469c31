"""Baseline files: round trip, atomic writes, and a clear error for every kind of bad file."""

from __future__ import annotations

import json

import pytest
from torch import nn

from esrprof.errors import ModelError, ResultFileError, UsageError
from esrprof.latency.baseline import (
    BASELINE_SCHEMA,
    Baseline,
    BaseSource,
    check_compatible,
    git_state,
    load_baseline,
    make_baseline,
    save_baseline,
)
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
    assert data["kind"] == "esrprof-baseline" and data["schema_version"] == BASELINE_SCHEMA
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
    # a non-finite float is written as JSON allows it to be read back: 1e999 parses to inf
    path.write_text(json.dumps(data).replace("Infinity", "1e999").replace("NaN", "1e999"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("kind"), "not an esrprof baseline"),
        (lambda d: d["base"].pop("source"), "corrupt baseline"),
        (lambda d: d["latency"].update(samples_ms=[]), "no valid latency samples"),
        (lambda d: d["latency"].update(samples_ms=[1.0, -2.0]), "no valid latency samples"),
        (lambda d: d["latency"].update(samples_ms=[1.0, float("inf")]), "samples_ms.1. = inf"),
        (lambda d: d["latency"].update(samples_ms=[1.0, True]), "no valid latency samples"),
        (lambda d: d["latency"].update(samples_ms="1.0"), "must be a list, not str"),
        (lambda d: d["base"].update(source=7), "base.source must be a string, not int"),
        (lambda d: d["base"].update(sha256=None), "missing base.sha256"),
        (lambda d: d["base"].update(git_dirty="yes"), "base.git_dirty must be true or false"),
        (lambda d: d.update(model=[]), "model must be an object, not list"),
        (lambda d: d["model"].update(params=1.5), "model.params is 1.5, not an integer"),
        (lambda d: d.update(reference={"spec": "x:Y", "ratios": [1.0, float("nan")]}),
         "no valid reference ratios"),
        (lambda d: d.update(input_shape=[1, 3, 0, 8]), "bad input_shape"),
        (lambda d: d.update(input_shape="abc"), "corrupt baseline"),
        (lambda d: d.update(input_shape=[1, 3, 8.5, 8]), "input_shape must be a list of integers"),
        (lambda d: d["base"].update(sha256="0" * 64), "does not match its sha256"),
        (lambda d: d.update(schema_version=BASELINE_SCHEMA + 1), "newer than this esrprof reads"),
        (lambda d: d.update(schema_version="1"), "invalid schema_version"),
    ],
)
def test_bad_files_are_clear_errors(saved, edit, message):
    path, _, _ = saved
    _rewrite(path, edit)
    with pytest.raises(ResultFileError, match=message) as info:
        load_baseline(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_and_missing_files(saved, tmp_path):
    path, _, _ = saved
    path.write_text(path.read_text()[:200])
    with pytest.raises(ResultFileError, match="not valid JSON"):
        load_baseline(path)
    with pytest.raises(ResultFileError, match="no such file"):
        load_baseline(tmp_path / "nope.json")


def test_compatibility_checks(saved):
    _, b, _ = saved
    hw = {"hardware": "cpu X (1 threads)"}
    assert check_compatible(b, class_name="Net", input_shape=(1, 3, 8, 8), environment=hw) == []
    with pytest.raises(ResultFileError, match="is for model Net"):
        check_compatible(b, class_name="Other", input_shape=None, environment=hw)
    with pytest.raises(ResultFileError, match="input shape 1x3x8x8, not 1x3x9x9"):
        check_compatible(b, class_name=None, input_shape=(1, 3, 9, 9), environment=hw)
    other = {"hardware": "gpu Y"}
    with pytest.raises(ResultFileError, match="--allow-other-hardware"):
        check_compatible(b, class_name=None, input_shape=None, environment=other)
    notes = check_compatible(b, class_name=None, input_shape=None, environment=other,
                             allow_other_hardware=True)
    assert "absolute check skipped" in notes[0]


def test_a_source_that_no_longer_imports_is_a_model_error(saved):
    _, b, _ = saved
    broken = BaseSource(b.base.module, b.base.file, "Net", "import not_a_module_xyz\n",
                        "x" * 64)
    with pytest.raises(ModelError, match=r"importing the baseline's copy of .* failed"):
        broken.build({})


def test_classes_without_a_source_file_are_refused():
    klass = type("Dynamic", (nn.Module,), {"__module__": "not_a_real_module"})
    with pytest.raises(UsageError, match="source file"):
        BaseSource.of_class(klass)


def test_from_dict_rejects_a_result_file():
    with pytest.raises(ResultFileError, match="it is an esrprof result"):
        Baseline.from_dict({"schema_version": 1, "counts": {}}, "r.json")


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("module", "import sys\nsys.exit(0)\n"),
        ("init", "from torch import nn\nimport sys\n\n\nclass Net(nn.Module):\n"
                 "    def __init__(self):\n        sys.exit(7)\n"),
    ],
)
def test_a_stored_source_calling_sys_exit_is_a_model_error(saved, where, source):
    _, b, _ = saved
    exiting = BaseSource(b.base.module, b.base.file, "Net", source, where[0] * 64)
    with pytest.raises(ModelError, match=r"sys.exit\((0|7)\)"):
        exiting.build({})


def test_a_stored_qualname_that_is_not_a_module_class_is_never_called(saved, tmp_path):
    _, b, _ = saved
    marker = tmp_path / "called"
    source = f"def Net(**kwargs):\n    open({str(marker)!r}, 'w').close()\n"
    hostile = BaseSource(b.base.module, b.base.file, "Net", source, "f" * 64)
    with pytest.raises(ResultFileError, match=r"not a torch\.nn\.Module class"):
        hostile.build({})
    assert not marker.exists()


def test_deep_and_non_finite_json_are_one_line(saved):
    path, _, _ = saved
    path.write_text('{"kind": "esrprof-baseline", "x": ' + "[" * 10000 + "]" * 10000 + "}")
    with pytest.raises(ResultFileError, match="nested too deeply"):
        load_baseline(path)
    path.write_text('{"kind": "esrprof-baseline", "x": NaN}')
    with pytest.raises(ResultFileError, match="not valid JSON"):
        load_baseline(path)


def test_save_honours_the_umask_and_writes_through_a_symlink(saved, tmp_path):
    import os

    _, baseline, _ = saved
    old = os.umask(0o077)
    try:
        fresh = save_baseline(baseline, tmp_path / "fresh.json")
    finally:
        os.umask(old)
    assert fresh.stat().st_mode & 0o777 == 0o600
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    save_baseline(baseline, link, force=True)
    assert link.is_symlink() and load_baseline(real) == baseline


def _git(folder, *args):
    import subprocess

    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_git_revision_only_for_a_tracked_file(tmp_path):
    import shutil

    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    tracked = repo / "tracked.py"
    tracked.write_text("A = 1\n")
    _git(repo, "add", "tracked.py")
    _git(repo, "commit", "-q", "-m", "one")
    untracked = repo / "untracked.py"
    untracked.write_text("B = 1\n")
    assert git_state(untracked) == (None, None)
    revision, dirty = git_state(tracked)
    assert revision is not None and len(revision) == 40 and dirty is False
    tracked.write_text("A = 2\n")
    assert git_state(tracked) == (revision, True)
    assert git_state(tmp_path / "elsewhere.py") == (None, None)  # no repository at all
