"""A baseline is code: what the gate imports or executes from it is checked first.

* a reference spec's file: found without importing, inside the baseline's folder or the
  working folder, with the sha256 recorded at save time -- else refused unless --trust-spec;
* the stored source: pinned by a hash kept outside the file (--expect-sha256), and a line at
  gate time when it differs from the file it came from.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from esrprof.cli import main

NET = """
from torch import nn


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""

# a reference whose import leaves a mark: the tests tell "imported" from "refused"
REFERENCE = """
import pathlib

pathlib.Path(__file__).with_suffix(".imported").touch()

from torch import nn


class Ref(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    ref = tmp_path / "ref.py"
    ref.write_text(REFERENCE)
    out = tmp_path / "base.json"
    assert main(["baseline", "save", "net.py:Net", "-o", str(out), "--input-shape", "1,3,8,8",
                 "--samples", "8", "--reference", f"{ref}:Ref"]) == 0
    ref.with_suffix(".imported").unlink()
    return tmp_path, out


def _gate(out, *extra):
    return main(["gate", "net.py:Net", "--baseline", str(out), "--min-pairs", "20",
                 "--max-pairs", "40", "--max-slowdown", "90%", "--no-absolute", *extra])


def _edit(out, fn):
    data = json.loads(out.read_text())
    fn(data)
    out.write_text(json.dumps(data))


def _error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("esrprof: error:") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_the_saved_reference_carries_its_files_hash(project):
    folder, out = project
    data = json.loads(out.read_text())
    digest = hashlib.sha256((folder / "ref.py").read_bytes()).hexdigest()
    assert data["schema_version"] == 3 and data["reference"]["sha256"] == digest


def test_an_unchanged_reference_inside_the_folder_is_imported(project, capsys):
    folder, out = project
    assert _gate(out, "--against-reference") == 0
    assert (folder / "ref.imported").exists()


def test_a_changed_reference_is_refused_before_import(project, capsys):
    folder, out = project
    (folder / "ref.py").write_text(REFERENCE + "\n# changed\n")
    assert _gate(out, "--against-reference") == 2
    line = _error(capsys)
    assert "changed since the baseline was saved" in line and "--trust-spec" in line
    assert not (folder / "ref.imported").exists()
    assert _gate(out, "--against-reference", "--trust-spec") == 0
    assert (folder / "ref.imported").exists()


def test_a_reference_outside_the_allowed_folders_is_refused(project, capsys, tmp_path_factory):
    _, out = project
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "ref.py").write_text(REFERENCE)
    digest = hashlib.sha256(REFERENCE.encode()).hexdigest()

    def point(d):
        d["reference"].update(spec=f"{elsewhere / 'ref.py'}:Ref", sha256=digest)

    _edit(out, point)
    assert _gate(out, "--against-reference") == 2
    assert f"names {elsewhere / 'ref.py'}, outside" in _error(capsys)
    assert not (elsewhere / "ref.imported").exists()


def test_a_module_spec_is_never_imported_to_check_it(project, capfd):
    # the module form: `this` prints the Zen of Python when imported
    _, out = project
    _edit(out, lambda d: d["reference"].update(spec="this:Foo"))
    assert _gate(out, "--against-reference") == 2
    captured = capfd.readouterr()
    assert "Beautiful is better than ugly" not in captured.out + captured.err
    assert "reference spec this:Foo" in captured.err and "outside" in captured.err


def test_a_baseline_without_a_recorded_hash_is_refused(project, capsys):
    folder, out = project
    _edit(out, lambda d: d["reference"].pop("sha256"))
    assert _gate(out, "--against-reference") == 2
    assert "no sha256 of the reference spec's file" in _error(capsys)
    assert not (folder / "ref.imported").exists()


def test_expect_sha256_pins_the_stored_source(project, capsys):
    folder, out = project
    data = json.loads(out.read_text())
    pinned = data["base"]["sha256"]
    assert main(["baseline", "show", str(out)]) == 0
    assert pinned in capsys.readouterr().out  # the whole hash, to copy into CI
    assert _gate(out, "--expect-sha256", pinned.upper()) == 0
    capsys.readouterr()
    # someone edits the source and its sha256 beside it: the pin outside the file catches it
    marker = folder / "tampered"
    source = data["base"]["source"] + f"\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n"

    def tamper(d):
        d["base"].update(source=source, sha256=hashlib.sha256(source.encode()).hexdigest())

    _edit(out, tamper)
    assert _gate(out, "--expect-sha256", pinned) == 2
    line = _error(capsys)
    assert f"not the expected {pinned[:16]}" in line and "baseline show" in line
    assert not marker.exists()
    assert _gate(out, "--expect-sha256", "abc") == 2
    assert "64 hexadecimal digits" in _error(capsys)


def test_the_gate_says_when_the_stored_source_differs_from_its_file(project, capsys):
    folder, out = project
    assert _gate(out) == 0
    assert "the baseline is code" not in capsys.readouterr().err  # the same file: no line
    (folder / "net.py").write_text(NET.replace("width=4", "width=4, unused=None"))
    (folder / "net_v2.py").write_text(NET)
    assert main(["gate", "net_v2.py:Net", "--baseline", str(out), "--min-pairs", "20",
                 "--max-pairs", "40", "--max-slowdown", "90%", "--no-absolute"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "the baseline is code" in err[0] and f"differs from {folder / 'net.py'}" in err[0]
    assert f"esrprof baseline show {out} --source" in err[0]
