"""Every output esrprof writes goes through ``files.write_text``: the umask is honoured, a symlink
is written through, a device node is never replaced, and a folder, a path under a file or an
unwritable folder is one line and exit 2 (issue 10, item 4)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from esrprof import files
from esrprof.cli import main
from esrprof.errors import OutputError
from esrprof.results import ModelInfo, Result

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _result() -> Result:
    return Result(ModelInfo(name="net"), (1, 3, 8, 8), None)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_result_save_honours_the_umask(tmp_path, umask_027):
    path = _result().save(tmp_path / "r.json")
    assert _mode(path) == 0o640


def test_result_save_keeps_an_existing_files_mode(tmp_path):
    target = tmp_path / "r.json"
    _result().save(target)  # a file esrprof wrote: replaced without --force
    target.chmod(0o604)
    _result().save(target)
    assert _mode(target) == 0o604 and json.loads(target.read_text())["model"]["name"] == "net"


def test_result_save_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.json"
    _result().save(real)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    _result().save(link)
    assert link.is_symlink()
    assert json.loads(real.read_text())["model"]["name"] == "net"


def test_result_save_to_a_device_node_never_replaces_it(tmp_path):
    # A private null device, never /dev/null itself: a failing test must not break the machine.
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("cannot create a device node here")
    before = os.stat(node)
    _result().save(node)
    after = os.stat(node)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_result_save_to_a_fifo_writes_through(tmp_path):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    _result().save(fifo)
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["model"]["name"] == "net"


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_result_save_to_a_bad_place_is_an_output_error(tmp_path, where):
    (tmp_path / "plain").write_text("x")
    target = tmp_path if where == "folder" else tmp_path / "plain" / "r.json"
    with pytest.raises(OutputError):
        _result().save(target)
    assert (tmp_path / "plain").read_text() == "x"


def test_read_only_folder_is_an_output_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root: permissions do not bite
            pytest.skip("running with privileges that ignore folder permissions")
        with pytest.raises(OutputError):
            files.write_text(ro / "r.json", "{}")
    finally:
        ro.chmod(0o755)


def test_report_files_and_folder_honour_the_umask(tmp_path, umask_027):
    out = tmp_path / "r"
    assert main(["report", str(TABLE), "-o", str(out), "--no-charts"]) == 0
    assert _mode(out) == 0o750
    assert _mode(out / "leaderboards") == 0o750
    for name in ("index.html", "report.json", "entries.csv", "leaderboards/main.csv",
                 "leaderboards/main.md"):
        assert _mode(out / name) == 0o640, name


def test_report_keeps_the_mode_of_the_folder_it_replaces(tmp_path):
    out = tmp_path / "r"
    assert main(["report", str(TABLE), "-o", str(out), "--no-charts"]) == 0
    out.chmod(0o700)
    assert main(["report", str(TABLE), "-o", str(out), "--no-charts"]) == 0
    assert _mode(out) == 0o700


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_profile_json_to_a_bad_place_is_one_line_exit_2(tmp_path, capsys, root, monkeypatch,
                                                         where):
    monkeypatch.chdir(root)
    (tmp_path / "plain").write_text("x")
    target = tmp_path if where == "folder" else tmp_path / "plain" / "r.json"
    code = main(["profile", "reference_models/imdn.py:IMDN", "--input-shape", "16x16",
                 "--json", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("esrprof: error: ") and "\n" not in err, err
    assert (tmp_path / "plain").read_text() == "x"
