"""`report -o DIR` never loses a user's folder, and an interruption at any point leaves DIR with
the old report or the new one (issue 10, item 3).

The swap is exercised at every filesystem step: in-process with an injected failure or SIGINT,
and in a child process killed with SIGKILL at the n-th mutating call, followed by the recovery the
next run performs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrprof import files
from esrprof.cli import main
from esrprof.errors import OutputError

ROOT = Path(__file__).resolve().parents[1]


def _table(folder: Path, runtime: float = 10.0) -> Path:
    p = folder / "t.csv"
    p.write_text(f"team,runtime_ms,params_M,flops_G\nA,{runtime},0.3,20\nB,14,0.2,12\n")
    return p


def _report(tmp_path: Path, out: Path, runtime: float = 10.0) -> int:
    return main(["report", str(_table(tmp_path, runtime)), "-o", str(out), "--no-charts"])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("esrprof: error: ") and "\n" not in err, err
    return err


# ----------------------------------------------------------------------- what may be replaced


def test_a_folder_holding_a_report_json_of_someone_elses_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_text('{"my": "own data"}')
    (mine / "thesis.tex").write_text("keep me")
    before = _snapshot(mine)
    assert _report(tmp_path, mine) == 2
    assert "not written by esrprof" in _one_line_error(capsys)
    assert _snapshot(mine) == before


def test_an_earlier_report_is_replaced(tmp_path):
    out = tmp_path / "r"
    assert _report(tmp_path, out, runtime=10) == 0
    first = (out / "entries.csv").read_text()
    assert _report(tmp_path, out, runtime=11) == 0
    assert (out / "entries.csv").read_text() != first
    assert files.proven_folder(out) is None  # the new one is marked too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "t.csv"]


def test_a_report_the_user_added_a_file_to_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert _report(tmp_path, out) == 0
    capsys.readouterr()
    (out / "thesis.tex").write_text("keep me")
    before = _snapshot(out)
    assert _report(tmp_path, out) == 2
    assert "thesis.tex" in _one_line_error(capsys)
    assert _snapshot(out) == before


def test_a_report_the_user_edited_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert _report(tmp_path, out) == 0
    capsys.readouterr()
    with open(out / "report.md", "a", encoding="utf-8") as fh:
        fh.write("\nMy notes.\n")
    before = _snapshot(out)
    assert _report(tmp_path, out) == 2
    assert "report.md" in _one_line_error(capsys)
    assert _snapshot(out) == before


def test_a_forged_marker_does_not_prove_anything(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".esrprof-report").write_text("esrprof")
    (mine / "report.json").write_text("{}")
    (mine / "thesis.tex").write_text("keep me")
    before = _snapshot(mine)
    assert _report(tmp_path, mine) == 2
    _one_line_error(capsys)
    assert _snapshot(mine) == before


def test_an_empty_folder_and_a_symlinked_folder_are_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _report(tmp_path, empty) == 0 and (empty / "index.html").is_file()
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert _report(tmp_path, link) == 0
    assert link.is_symlink() and (real / "index.html").is_file()


def test_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert _report(tmp_path, tmp_path / "plain" / "r") == 2
    _one_line_error(capsys)
    assert (tmp_path / "plain").read_text() == "x"


# --------------------------------------------------------------- interruptions during the swap


def _write_two(folder: Path, text: str) -> None:
    files.write_text(folder / "report.json", json.dumps({"text": text}))
    (folder / "sub").mkdir()
    files.write_text(folder / "sub" / "page.html", text)


def _content(folder: Path) -> str:
    return json.loads((folder / "report.json").read_text())["text"]


def test_a_failure_between_the_renames_puts_the_old_report_back(tmp_path, monkeypatch):
    out = tmp_path / "r"
    files.replace_folder(out, lambda d: _write_two(d, "old"))
    real_rename = os.rename
    calls = []

    def second_fails(src, dst, *a, **k):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(files.os, "rename", second_fails)
    with pytest.raises(OutputError):
        files.replace_folder(out, lambda d: _write_two(d, "new"))
    monkeypatch.undo()
    assert _content(out) == "old" and files.proven_folder(out) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_sigint_between_the_renames_is_held_until_the_swap_is_done(tmp_path, monkeypatch):
    out = tmp_path / "r"
    files.replace_folder(out, lambda d: _write_two(d, "old"))
    real_rename = os.rename
    calls = []

    def interrupt_after_first(src, dst, *a, **k):
        result = real_rename(src, dst, *a, **k)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(files.os, "rename", interrupt_after_first)
    with pytest.raises(KeyboardInterrupt):
        files.replace_folder(out, lambda d: _write_two(d, "new"))
    monkeypatch.undo()
    assert _content(out) == "new"
    files.replace_folder(out, lambda d: _write_two(d, "newer"))  # and the next run cleans up
    assert _content(out) == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_interrupt_while_building_leaves_the_old_report_and_no_temporary(tmp_path):
    out = tmp_path / "r"
    files.replace_folder(out, lambda d: _write_two(d, "old"))

    def build(d):
        _write_two(d, "new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.replace_folder(out, build)
    assert _content(out) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from esrprof import files

    target, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    count = [0]

    def killing(real):
        def call(*args, **kwargs):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return call

    def build(folder):
        files.write_text(folder / "report.json", json.dumps({"text": "new"}))
        (folder / "sub").mkdir()
        files.write_text(folder / "sub" / "page.html", "new")

    for name in ("rename", "replace", "unlink", "rmdir", "mkdir", "fchmod", "chmod"):
        setattr(os, name, killing(getattr(os, name)))
    files.replace_folder(target, build)
    print(count[0])
    """
)


@pytest.mark.slow
def test_sigkill_at_every_step_then_the_next_run_recovers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kill_at, finished = 1, False
    while not finished:
        assert kill_at < 200, "the swap never finished"
        case = tmp_path / f"case{kill_at}"
        case.mkdir()
        out = case / "r"
        files.replace_folder(out, lambda d: _write_two(d, "old"))
        child = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(kill_at)],
                               env=env, capture_output=True, text=True, timeout=60)
        if child.returncode == 0:
            finished = True
        else:
            assert child.returncode == -signal.SIGKILL, child.stderr
        # The next run starts by recovering: DIR holds the old or the new report, and every
        # temporary the killed run left is gone once that run is through.
        files.recover_folder(out)
        assert _content(out) in ("old", "new"), kill_at
        assert files.proven_folder(out) is None, kill_at
        files.replace_folder(out, lambda d: _write_two(d, "next"))
        assert _content(out) == "next"
        assert sorted(p.name for p in case.iterdir()) == ["r"], kill_at
        kill_at += 1
    assert kill_at > 5  # the swap has several steps, and each was interrupted once


def test_stale_temporaries_are_removed_and_a_lost_report_is_moved_back(tmp_path):
    out = tmp_path / "r"
    files.replace_folder(out, lambda d: _write_two(d, "old"))
    # As a SIGKILL between the renames leaves it: the report only in .r.old-*, plus a dead
    # run's half-built temporary.
    hidden = tmp_path / ".r.old-0123abcd"
    os.rename(out, hidden)
    dead = tmp_path / ".r.k3j4_x9z.tmp"
    dead.mkdir()
    (dead / "report.json").write_text("{}")
    (dead / ".esrprof-building").write_text(json.dumps({"pid": 2**22 + 12345,
                                                        "host": os.uname().nodename}))
    # A folder of the user's that merely looks like ours stays.
    lookalike = tmp_path / ".r.old-feedbeef"
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("mine")
    files.recover_folder(out)
    assert _content(out) == "old"
    assert not hidden.exists() and not dead.exists()
    assert (lookalike / "notes.txt").read_text() == "mine"


def test_a_running_builds_temporary_is_left_alone(tmp_path):
    out = tmp_path / "r"
    live = tmp_path / ".r.abcd1234.tmp"
    live.mkdir()
    (live / ".esrprof-building").write_text(json.dumps({"pid": os.getpid(),
                                                        "host": os.uname().nodename}))
    files.recover_folder(out)
    assert live.is_dir()
