"""esrprof sweep without running any entry: ENTRIES files and folders, the resume key, the plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esrprof.errors import OutputError, UsageError
from esrprof.sweep.entries import Entry, entry_key, model_class, read_entries
from esrprof.sweep.run import check_folder
from esrprof.sweep.state import DONE, FAILED, PENDING, RUNNING, SweepState, plan


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entries.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_entries_with_every_key(tmp_path):
    path = _toml(tmp_path, """
[[entry]]
name = "team-a"
model = "models/a.py:Net"
weights = "w/a.pth"
kwargs = {channels = 48}
data_range = 255
tile = 128
team = "Team A"
input_shape = [1, 3, 64, 64]

[[entry]]
name = "imdn"
model = "esrprof.reference_models.imdn:IMDN"
""")
    a, imdn = read_entries(path)
    assert a == Entry(name="team-a", model=f"{tmp_path}/models/a.py:Net",
                      weights=str(tmp_path / "w/a.pth"), kwargs={"channels": 48},
                      data_range=255, tile=128, team="Team A", input_shape=(1, 3, 64, 64))
    assert imdn.model == "esrprof.reference_models.imdn:IMDN"  # a module spec stays as given
    assert Entry.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(("text", "message"), [
    ('[[entry]]\nname = "a"\n', "'model' must be a non-empty string"),
    ('[[entry]]\nname = "a/b"\nmodel = "m.py:N"\n', "must be letters, digits"),
    ('[[entry]]\nname = "a"\nmodel = "m.py:N"\ncolour = 1\n', "unknown key 'colour'"),
    ('[[entry]]\nname = "a"\nmodel = "m.py:N"\ndata_range = 2\n', "'data_range' must be 1 or 255"),
    ('[[entry]]\nname = "a"\nmodel = "m.py:N"\n[[entry]]\nname = "A"\nmodel = "m.py:N"\n',
     "entry name used twice: a"),
    ('[[entry]\nname = "a"', "not valid TOML"),
    ("", "lists no entry"),
])
def test_bad_toml_is_one_usage_line(tmp_path, text, message):
    with pytest.raises(UsageError) as info:
        read_entries(_toml(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_folder_of_model_files(tmp_path):
    (tmp_path / "alpha.py").write_text(
        "from torch import nn\n"
        "class Block(nn.Module):\n    pass\n"
        "class Base(Block):\n    pass\n"
        "class Net(Base):\n    def __init__(self):\n        super().__init__()\n"
        "        self.b = Block()\n        self.c = Base()\n"
        "class Helper:\n    pass\n"
        "import os\nos._exit(3)  # never runs: the folder is read, not imported\n")
    (tmp_path / "beta-2.py").write_text("import torch\nclass Only(torch.nn.Module):\n    pass\n")
    (tmp_path / "_private.py").write_text("x = 1\n")
    entries = read_entries(tmp_path)
    assert [(e.name, e.model.rpartition(":")[2]) for e in entries] == [
        ("alpha", "Net"), ("beta-2", "Only")]
    assert entries[0].model.startswith(str(tmp_path.resolve()))


def test_ambiguous_model_file_names_the_candidates(tmp_path):
    path = tmp_path / "two.py"
    path.write_text("from torch import nn\nclass A(nn.Module):\n    pass\n"
                    "class B(nn.Module):\n    pass\n")
    with pytest.raises(UsageError, match=r"which model class\? A, B"):
        model_class(path)
    (tmp_path / "named.py").write_text("from torch import nn\nclass Named(nn.Module):\n    pass\n"
                                       "class Other(nn.Module):\n    pass\n")
    assert model_class(tmp_path / "named.py") == "Named"  # the class named like the file
    (tmp_path / "none.py").write_text("class A:\n    pass\n")
    with pytest.raises(UsageError, match=r"defines no nn\.Module class"):
        model_class(tmp_path / "none.py")


def test_key_follows_spec_file_weights_version_and_rules(tmp_path):
    model = tmp_path / "m.py"
    model.write_text("# v1\n")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"one")
    entry = Entry(name="a", model=f"{model}:Net", weights=str(weights), team="x")
    key = entry_key(entry, {"run": False}, "1.0")
    assert entry_key(entry, {"run": False}, "1.0") == key
    assert entry_key(Entry(**{**entry.__dict__, "team": "y"}), {"run": False}, "1.0") == key
    assert entry_key(entry, {"run": True}, "1.0") != key
    assert entry_key(entry, {"run": False}, "1.1") != key
    weights.write_bytes(b"two")
    assert entry_key(entry, {"run": False}, "1.0") != key
    weights.write_bytes(b"one")
    model.write_text("# v2\n")
    assert entry_key(entry, {"run": False}, "1.0") != key


def test_plan_keeps_finished_redoes_the_rest(tmp_path):
    state = SweepState.load(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    for name, status, result in (("a", DONE, "a.json"), ("b", DONE, "gone.json"),
                                 ("c", RUNNING, None), ("d", FAILED, None), ("e", DONE, "a.json"),
                                 ("old", DONE, None)):
        state.set(name, status=status, key="k", result=result)
    keys = {"a": "k", "b": "k", "c": "k", "d": "k", "e": "changed", "new": "k"}
    todo = plan(SweepState.load(tmp_path), keys, {})
    assert todo == ["b", "c", "e", "new"]  # result lost, in flight, changed, new
    again = SweepState.load(tmp_path)
    assert again.get("a").status == DONE and again.get("d").status == FAILED
    assert again.get("c").status == PENDING
    assert again.get("old").status == "skipped"
    assert plan(SweepState.load(tmp_path), keys, {}, redo=["a"], retry_failed=True)[:2] == \
        ["a", "b"]
    with pytest.raises(UsageError, match="--redo zz: no entry"):
        plan(SweepState.load(tmp_path), keys, {}, redo=["zz"])


def test_output_folder_of_the_user_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files and no sweep\.json"):
        check_folder(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    check_folder(tmp_path / "new")
    assert (tmp_path / "new" / "logs").is_dir()


@pytest.mark.parametrize(("args", "message"), [
    (["nothing.toml", "-o", "out"], "ENTRIES nothing.toml: no such file or folder"),
    (["e.toml", "-o", "out", "--redo", "zz"], "--redo zz: no entry of that name"),
    (["e.toml", "-o", "out", "--workers", "0"], "--workers takes a positive number"),
    (["e.toml", "-o", "out", "--challenge", "ntire1999"], "unknown challenge 'ntire1999'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "e.toml").write_text('[[entry]]\nname = "a"\nmodel = "m.py:Net"\n')
    proc = subprocess.run([sys.executable, "-m", "esrprof", "sweep", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "a.json").exists()
