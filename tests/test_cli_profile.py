"""`esrprof profile`: output, JSON, and one clean line + exit code for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from esrprof.cli import main

IMDN = "reference_models/imdn.py:IMDN"


@pytest.fixture(autouse=True)
def _in_repo(root, monkeypatch):
    monkeypatch.chdir(root)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_imdn_prints_the_challenge_figures(capsys, tmp_path):
    code, out, err = run_cli(capsys, "profile", IMDN, "--challenge", "ntire2022", "--json",
                             str(tmp_path / "r.json"))
    assert code == 0, err
    for figure in ("0.894", "58.53", "154.14", "43"):
        assert figure in out
    assert "Complete count" in out and "Divergences" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema_version"] == 2
    assert data["challenge"] == "ntire2022"
    assert data["model"]["spec"] == IMDN
    assert data["input_shape"] == [1, 3, 256, 256]
    counts = data["counts"]
    assert counts["params"] == 893936
    assert counts["ntire2022"]["convs"] == 43
    assert counts["ntire2022"]["macs"] == 58531512320
    assert counts["complete"]["macs"] == 58430849024
    assert "peers" in counts and counts["peers"] == {}


def test_profile_with_counters_and_per_layer(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "profile", IMDN, "--input-shape", "1,3,32,32",
                           "--counters", "all", "--per-layer", "3", "--json",
                           str(tmp_path / "r.json"))
    assert code == 0
    assert "fvcore" in out and "thop" in out and "Top 3 layers" in out
    peers = json.loads((tmp_path / "r.json").read_text())["counts"]["peers"]
    assert peers["fvcore"]["macs"] == peers["thop"]["macs"] > 0


def test_module_spec_form(capsys):
    code, out, _ = run_cli(capsys, "profile", "reference_models.imdn:IMDN",
                           "--input-shape", "16x16")
    assert code == 0 and "1x3x16x16" in out


def test_kwargs_reach_the_constructor(capsys):
    code, out, _ = run_cli(capsys, "profile", IMDN, "--kwargs", '{"num_modules": 2}',
                           "--input-shape", "1,3,8,8")
    assert code == 0
    assert "#Conv" in out and "\n0.894" not in out


def _err(capsys, *argv):
    code, _out, err = run_cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("esrprof: error: ")
    assert "Traceback" not in err
    return code, lines[0]


def test_missing_file(capsys):
    code, line = _err(capsys, "profile", "nope/model.py:Net")
    assert code == 2 and "no such file" in line


def test_no_such_class(capsys):
    code, line = _err(capsys, "profile", "reference_models/imdn.py:Nope")
    assert code == 2 and "no 'Nope'" in line and "IMDN" in line


def test_malformed_spec(capsys):
    code, line = _err(capsys, "profile", "reference_models/imdn.py")
    assert code == 2 and "FILE.py:Class" in line


def test_malformed_kwargs(capsys):
    code, line = _err(capsys, "profile", IMDN, "--kwargs", "{nf: 3}")
    assert code == 2 and "not valid JSON" in line
    code, line = _err(capsys, "profile", IMDN, "--kwargs", "[1]")
    assert code == 2 and "JSON object" in line


def test_constructor_error(capsys):
    code, line = _err(capsys, "profile", IMDN, "--kwargs", '{"bogus": 1}')
    assert code == 1 and "IMDN(bogus=1) failed" in line


def test_wrong_input_shape(capsys):
    code, line = _err(capsys, "profile", IMDN, "--input-shape", "1,4,16,16")
    assert code == 1 and "forward failed" in line


def test_malformed_input_shape(capsys):
    code, line = _err(capsys, "profile", IMDN, "--input-shape", "1,3,abc")
    assert code == 2 and "input-shape" in line


def test_forward_error(capsys, tmp_path):
    (tmp_path / "bad.py").write_text(
        "import torch\nclass Bad(torch.nn.Module):\n"
        "    def forward(self, x):\n        raise RuntimeError('kaboom')\n"
    )
    code, line = _err(capsys, "profile", f"{tmp_path}/bad.py:Bad")
    assert code == 1 and "kaboom" in line


def test_import_error_in_user_file(capsys, tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_real_module_xyz\n")
    code, line = _err(capsys, "profile", f"{tmp_path}/broken.py:Net")
    assert code == 1 and "not_a_real_module_xyz" in line


def test_checkpoint_round_trip_with_wrappers(capsys, tmp_path):
    from reference_models.imdn import IMDN as Net

    state = Net().state_dict()
    wrapped = {"params": {f"module.{k}": v for k, v in state.items()}}
    torch.save(wrapped, tmp_path / "w.pth")
    code, _out, err = run_cli(capsys, "profile", IMDN, "--weights", str(tmp_path / "w.pth"),
                             "--input-shape", "8x8")
    assert code == 0, err


def test_missing_checkpoint(capsys, tmp_path):
    code, line = _err(capsys, "profile", IMDN, "--weights", str(tmp_path / "none.pth"))
    assert code == 2 and "no such checkpoint" in line


def test_unreadable_checkpoint(capsys, tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    code, line = _err(capsys, "profile", IMDN, "--weights", str(tmp_path / "junk.pth"))
    assert code == 1 and "unreadable checkpoint" in line


def test_mismatched_checkpoint(capsys, tmp_path):
    torch.save({"model.0.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "w.pth")
    code, line = _err(capsys, "profile", IMDN, "--weights", str(tmp_path / "w.pth"))
    assert code == 1 and "does not fit IMDN" in line and "missing" in line


class NotJustTensors:
    def __init__(self):
        self.epoch = 3


def test_pickle_checkpoint_refused_and_flag_named(capsys, tmp_path):
    from reference_models.imdn import IMDN as Net

    torch.save({"state_dict": Net().state_dict(), "meta": NotJustTensors()}, tmp_path / "p.pth")
    code, line = _err(capsys, "profile", IMDN, "--weights", str(tmp_path / "p.pth"))
    assert code == 1 and "--allow-pickle" in line
    code, _out, err = run_cli(capsys, "profile", IMDN, "--weights", str(tmp_path / "p.pth"),
                             "--allow-pickle", "--input-shape", "8x8")
    assert code == 0, err


def test_unknown_counter(capsys):
    code, line = _err(capsys, "profile", IMDN, "--counters", "ptflops")
    assert code == 2 and "unknown counter" in line


def test_json_write_is_atomic_and_keeps_old_file_on_failure(capsys, tmp_path):
    target = tmp_path / "r.json"
    target.write_text("previous result")
    code, _ = _err(capsys, "profile", IMDN, "--input-shape", "1,4,8,8", "--json", str(target))
    assert code == 1
    assert target.read_text() == "previous result"


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="no such file"):
        main(["profile", "nope.py:X", "--debug"])


def test_console_script_runs(root):
    proc = subprocess.run([sys.executable, "-m", "esrprof", "profile", IMDN, "--input-shape",
                           "8x8"], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "#Params [M]" in proc.stdout
