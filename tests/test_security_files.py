"""Files in and out (issue 16, items 2, 7, 10, 11, 13): an output never replaces a file esrprof
cannot prove it wrote; only regular files under a size cap are read, without blocking; output
that cannot be encoded or written is handled; malformed dtypes and shapes are usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import esrprof
from esrprof import files
from esrprof.cli import main
from esrprof.errors import OutputError, ResultFileError, UsageError
from esrprof.jsonio import read_json
from esrprof.results import ModelInfo, Result

ROOT = Path(__file__).resolve().parents[1]
MODEL_SOURCE = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""


def _result(name: str = "net") -> Result:
    return Result(ModelInfo(name=name), (1, 3, 8, 8), None)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.strip()


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL_SOURCE)
    return path


# ------------------------------------------------------------------ outputs never overwrite


@pytest.mark.parametrize("content", [MODEL_SOURCE, '{"my": "notes"}\n', "",
                                     '{"schema_version": 1, "model": {"name": "x"}}\n'])
def test_profile_json_never_replaces_a_file_esrprof_did_not_write(capsys, model_file, tmp_path,
                                                                   content):
    target = tmp_path / "notes.json"
    target.write_text(content)
    code, _, err = _cli(capsys, "profile", f"{model_file}:Net", "--input-shape", "8x8",
                        "--no-predict", "--json", str(target))
    assert code == 2 and "--force" in err and err.count("\n") == 0
    assert target.read_text() == content


def test_profile_json_onto_the_models_own_source_is_refused(capsys, model_file):
    code, _, err = _cli(capsys, "profile", f"{model_file}:Net", "--input-shape", "8x8",
                        "--json", str(model_file))
    assert code == 2 and str(model_file) in err
    assert model_file.read_text() == MODEL_SOURCE


def test_force_replaces_and_a_file_esrprof_wrote_is_replaced_without_it(capsys, model_file,
                                                                         tmp_path):
    target = tmp_path / "r.json"
    target.write_text("mine\n")
    args = ["profile", f"{model_file}:Net", "--input-shape", "8x8", "--no-predict", "--json",
            str(target)]
    assert _cli(capsys, *args, "--force")[0] == 0
    first = read_json(target)
    assert first["model"]["class_name"] == "Net" and "esrprof_file" not in first
    assert files.proven_file(target) is None
    assert _cli(capsys, *args)[0] == 0  # ours now: replaced without --force


def test_a_file_esrprof_wrote_but_someone_edited_is_refused(tmp_path):
    target = tmp_path / "r.json"
    _result().save(target)
    text = target.read_text()
    target.write_text(text.replace('"net"', '"edited"'))
    assert "changed" in files.proven_file(target)
    with pytest.raises(OutputError, match="--force"):
        _result().save(target)
    assert '"edited"' in target.read_text()
    _result().save(target, force=True)
    assert files.proven_file(target) is None


def test_a_mark_copied_into_another_file_proves_nothing(tmp_path):
    ours = tmp_path / "ours.json"
    _result().save(ours)
    mark = json.loads(ours.read_text())["esrprof_file"]
    forged = tmp_path / "notes.json"
    forged.write_text(json.dumps({"notes": "mine", "esrprof_file": mark}))
    assert files.proven_file(forged) is not None
    with pytest.raises(OutputError):
        _result().save(forged)


def test_zoo_json_is_protected_too(capsys, tmp_path):
    target = tmp_path / "zoo.json"
    target.write_text("notes")
    code, _, err = _cli(capsys, "zoo", "imdn", "--no-predict", "--json", str(target))
    assert code == 2 and "--force" in err and target.read_text() == "notes"
    assert _cli(capsys, "zoo", "imdn", "--no-predict", "--json", str(target), "--force")[0] == 0
    assert _cli(capsys, "zoo", "imdn", "--no-predict", "--json", str(target))[0] == 0
    assert read_json(target)["models"][0]["name"] == "IMDN"


def test_gate_json_is_checked_before_any_work(capsys, tmp_path, model_file):
    target = tmp_path / "verdict.json"
    target.write_text("notes")
    code, _, err = _cli(capsys, "gate", f"{model_file}:Net", "--baseline",
                        str(tmp_path / "missing.json"), "--json", str(target))
    assert code == 2 and "--force" in err and target.read_text() == "notes"


def test_a_monitor_log_never_appends_to_a_users_file(tmp_path):
    for name, content in [("notes.jsonl", '{"my": "notes"}\n'), ("notes.csv", "a,b\n1,2\n")]:
        log = tmp_path / name
        log.write_text(content)
        with pytest.raises(OutputError, match="not an esrprof monitor log"):
            esrprof.Monitor(nn.Conv2d(3, 3, 3), (1, 3, 8, 8), log=log, count=False)
        assert log.read_text() == content
    csv_log = tmp_path / "eff.csv"
    monitor = esrprof.Monitor(nn.Conv2d(3, 3, 3), (1, 3, 8, 8), every=1, log=csv_log,
                              count=False, repeats=1)
    monitor.step()
    esrprof.Monitor(nn.Conv2d(3, 3, 3), (1, 3, 8, 8), every=1, log=csv_log, count=False,
                    repeats=1).step()
    assert len(csv_log.read_text().splitlines()) == 3  # one header, two records


# ------------------------------------------------------------------ inputs: regular files only


def _report(capsys, tmp_path, *inputs) -> tuple[int, str, float]:
    started = time.perf_counter()
    code = main(["report", *map(str, inputs), "-o", str(tmp_path / "out"), "--no-charts"])
    return code, capsys.readouterr().err.strip(), time.perf_counter() - started


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_fifo_input_is_refused_at_once(capsys, tmp_path, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    holder: list[int] = []
    # even with a writer holding the pipe open, it is refused rather than read
    opener = threading.Thread(target=lambda: holder.append(os.open(fifo, os.O_RDWR)),
                              daemon=True)
    opener.start()
    opener.join(5)
    try:
        code, err, seconds = _report(capsys, tmp_path, fifo)
    finally:
        for fd in holder:
            os.close(fd)
    assert code == 2 and "regular file" in err and seconds < 5


def test_a_fifo_nobody_writes_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(ResultFileError, match="pipe"):
        read_json(fifo)
    assert time.perf_counter() - started < 2


def test_dev_zero_is_refused_without_reading(capsys, tmp_path):
    code, err, seconds = _report(capsys, tmp_path, "/dev/zero")
    assert code == 2 and "device" in err and seconds < 5
    with pytest.raises(ResultFileError, match="regular file"):
        from esrprof.latency.baseline import load_baseline

        load_baseline("/dev/zero")


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_2_gb_file_is_refused_from_its_size(capsys, tmp_path, suffix):
    big = tmp_path / f"big{suffix}"
    with open(big, "wb") as fh:  # sparse: 2 GB on paper, nothing on disk
        fh.truncate(2 << 30)
    code, err, seconds = _report(capsys, tmp_path, big)
    assert code == 2 and "MiB" in err and seconds < 5


def test_a_file_that_grows_past_the_cap_is_still_capped(tmp_path):
    from esrprof.jsonio import read_bytes

    path = tmp_path / "x.json"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(ResultFileError, match="esrprof reads"):
        read_bytes(path, limit=1000)
    assert read_bytes(path, limit=1000, head=True) == b"x" * 1000


# ------------------------------------------------------------------ output that cannot be written


def _run_cli(*args: str, env: dict[str, str] | None = None, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "esrprof", *args], stdout=stdout,
                          stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C"},
                                 {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_the_card_prints_with_ascii_fallbacks(model_file, env):
    # this model's card says "none — ... agree": a non-ASCII dash
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL")}
    proc = subprocess.run([sys.executable, "-m", "esrprof", "profile", f"{model_file}:Net",
                           "--input-shape", "8x8", "--no-predict"], capture_output=True,
                          env={**base, **env}, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("ascii")  # raises if anything but ASCII came out
    assert "Divergences: none -- ntire2024 and the complete count agree" in out


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_stdout_is_one_line_not_a_traceback(model_file):
    with open("/dev/full", "w") as full:
        proc = _run_cli("profile", f"{model_file}:Net", "--input-shape", "8x8",
                        "--no-predict", stdout=full)
    err = proc.stderr.decode().strip()
    assert proc.returncode in (1, 2) and err.count("\n") == 0, err
    assert "cannot write the output" in err and "Traceback" not in err


# ------------------------------------------------------------------ usage errors


@pytest.mark.parametrize("dtype", ["fp16", torch.int64, torch.bool, 16])
def test_predict_dtype_that_is_not_a_floating_torch_dtype_is_a_usage_error(dtype):
    with pytest.raises(UsageError, match="dtype"):
        esrprof.predict(nn.Conv2d(3, 3, 3), (1, 3, 8, 8), dtype=dtype)
    with pytest.raises(UsageError, match="dtype"):
        esrprof.predict_challenge(nn.Conv2d(3, 3, 3), dtype=dtype)


@pytest.mark.parametrize("shape", ["1,3", "64", "3,", "8,8"])
def test_an_input_shape_of_fewer_than_three_numbers_is_refused(capsys, model_file, shape):
    code, _, err = _cli(capsys, "profile", f"{model_file}:Net", "--input-shape", shape)
    assert code == 2 and "N,C,H,W" in err


def test_hxw_shorthand_still_works(capsys, model_file):
    code, out, _ = _cli(capsys, "profile", f"{model_file}:Net", "--input-shape", "8x8",
                        "--no-predict")
    assert code == 0 and "1x3x8x8" in out


def test_gpu_with_no_predict_warns_that_it_is_unused(capsys, model_file):
    code, _, err = _cli(capsys, "profile", f"{model_file}:Net", "--input-shape", "8x8",
                        "--gpu", "a100", "--no-predict")
    assert code == 0 and "warning" in err and "--gpu" in err and "unused" in err


def test_messages_name_one_path(capsys, tmp_path):
    from esrprof.data import read_image

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(Exception) as err:
        read_image(bad)
    assert str(err.value).count(str(bad)) == 1
    ro = tmp_path / "notes.json"
    ro.write_text("mine")
    with pytest.raises(OutputError) as err:
        files.check_target(ro)
    assert str(err.value).count(str(ro)) == 1
