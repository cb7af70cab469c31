"""``esrprof zoo fetch NAME``: the released checkpoints in the registry, downloaded and verified
(issue 18, item 1). Downloads are of local ``file://`` URLs: no network in tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esrprof.cli import main
from esrprof.zoo import fetch as fetch_module
from esrprof.zoo.fetch import FetchError, fetch
from esrprof.zoo.registry import REGISTRY, WEIGHTS, released_weights

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"not really a checkpoint\n" * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def release(tmp_path) -> str:
    src = tmp_path / "mirror" / "team04_rlfn.pth"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    return src.as_uri()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# ------------------------------------------------------------------------------ registry


def test_every_reference_model_names_its_released_checkpoint():
    assert set(WEIGHTS) == set(REGISTRY)
    names = [w.file_name for w in WEIGHTS.values()]
    assert len(set(names)) == len(names)
    for name, w in WEIGHTS.items():
        assert w.url.startswith("https://github.com/") and w.commit in w.url, name
        assert w.url.endswith("/" + w.path)
        assert w.sha256 is None or len(w.sha256) == 64
    assert released_weights("rlfn").file_name == "team04_rlfn.pth"


def test_the_docs_tell_the_weights_story_once():
    doc = (ROOT / "docs" / "reference_models.md").read_text(encoding="utf-8")
    for name, w in WEIGHTS.items():
        assert w.file_name in doc, f"{name}: {w.file_name} not in docs/reference_models.md"
    assert "esrprof zoo fetch" in doc
    # one name for RLFN's file everywhere
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "rlfn_ntire2022.pth" not in path.read_text(encoding="utf-8"), path


# ------------------------------------------------------------------------------ fetching


def test_fetch_downloads_and_verifies(tmp_path, release, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "zoo", "fetch", "RLFN", "--url", release, "--sha256", SHA)
    assert (code, err) == (0, "")
    target = tmp_path / "team04_rlfn.pth"
    assert target.read_bytes() == PAYLOAD
    assert f"sha256 {SHA} (verified)" in out
    assert "esrprof profile esrprof.reference_models.rlfn:RLFN --weights team04_rlfn.pth" in out
    assert _leftovers(tmp_path) == []
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fetch_into_a_folder_or_a_named_file(tmp_path, release):
    folder = tmp_path / "weights"
    folder.mkdir()
    got = fetch("rlfn", folder, url=release, sha256=SHA.upper())
    assert got.path == folder / "team04_rlfn.pth" and got.size == len(PAYLOAD)
    named = fetch("RLFN", tmp_path / "new" / "sub" / "mine.pth", url=release, sha256=SHA)
    assert named.path.read_bytes() == PAYLOAD


def test_a_wrong_sha256_writes_nothing(tmp_path, release, capsys):
    target = tmp_path / "out.pth"
    code, _, err = _cli(capsys, "zoo", "fetch", "RLFN", "--url", release, "--sha256", "0" * 64,
                        "-o", str(target))
    assert code == 1
    assert err.count("\n") == 1 and f"sha256 {SHA} is not the expected {'0' * 64}" in err
    assert not target.exists() and _leftovers(tmp_path) == []


def test_an_existing_file_is_never_replaced(tmp_path, release, capsys):
    target = tmp_path / "team04_rlfn.pth"
    target.write_bytes(b"mine")
    code, _, err = _cli(capsys, "zoo", "fetch", "RLFN", "--url", release, "--sha256", SHA,
                        "-o", str(target))
    assert code == 2 and "exists: esrprof zoo fetch never replaces a file" in err
    assert target.read_bytes() == b"mine"
    link = tmp_path / "link.pth"
    link.symlink_to(tmp_path / "nowhere.pth")  # a dangling symlink is a name taken too
    with pytest.raises(Exception, match="exists"):
        fetch("RLFN", link, url=release, sha256=SHA)
    assert link.is_symlink() and not (tmp_path / "nowhere.pth").exists()


def test_a_name_taken_during_the_download_is_not_replaced(tmp_path, release, monkeypatch):
    target = tmp_path / "late.pth"
    real = fetch_module._download

    def slow(source, fd, timeout):
        result = real(source, fd, timeout)
        target.write_bytes(b"written meanwhile")
        return result

    monkeypatch.setattr(fetch_module, "_download", slow)
    with pytest.raises(Exception, match="exists"):
        fetch("RLFN", target, url=release, sha256=SHA)
    assert target.read_bytes() == b"written meanwhile" and _leftovers(tmp_path) == []


@pytest.mark.parametrize(("argv", "says"), [
    (["zoo", "fetch", "RLFN"], "sha256 of RLFN's released checkpoint is unknown"),
    (["zoo", "fetch", "NOPE"], "no reference model named 'NOPE'"),
    (["zoo", "fetch"], "takes one model name"),
    (["zoo", "fetch", "RLFN", "IMDN"], "takes one model name"),
    (["zoo", "fetch", "RLFN", "--sha256", "abc"], "64 hexadecimal digits"),
    (["zoo", "fetch", "RLFN", "--sha256", "0" * 64, "--url", "ftp://x/y.pth"], "only https"),
    (["zoo", "IMDN", "--sha256", "0" * 64], "only with `esrprof zoo fetch NAME`"),
    (["zoo", "fetch", "RLFN", "--json", "x.json"], "--json: not with esrprof zoo fetch"),
])
def test_usage_errors_are_one_line_before_any_download(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fetch_module, "_download", lambda *a: pytest.fail("downloaded"))
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and says in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_is_one_line(tmp_path, capsys):
    missing = (tmp_path / "gone.pth").as_uri()
    code, _, err = _cli(capsys, "zoo", "fetch", "RLFN", "--url", missing, "--sha256", SHA,
                        "-o", str(tmp_path / "w.pth"))
    assert code == 1 and err.startswith("esrprof: error: cannot download ") and \
        err.count("\n") == 1
    assert not (tmp_path / "w.pth").exists() and _leftovers(tmp_path) == []
    with pytest.raises(FetchError):
        fetch("RLFN", tmp_path / "w.pth", url=missing, sha256=SHA)


def test_a_fetched_checkpoint_loads_strictly(tmp_path, capsys):
    # the released layout (reference_models/data/rlfn.tsv) saved, fetched, and profiled
    import torch

    from esrprof.zoo.registry import get

    src = tmp_path / "team04_rlfn.pth"
    torch.save(get("RLFN").build().state_dict(), src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    got = fetch("RLFN", tmp_path / "fetched", url=src.as_uri(), sha256=digest)
    code, out, err = _cli(capsys, "profile", "esrprof.reference_models.rlfn:RLFN", "--weights",
                          str(got.path), "--no-predict", "--input-shape", "1,3,16,16")
    assert code == 0, err
    assert "#Params" in out or "params" in out.lower()


def test_fetch_needs_no_torch(tmp_path, release):
    code = ("import sys; from esrprof.zoo.fetch import fetch; "
            f"fetch('RLFN', {str(tmp_path / 'w.pth')!r}, url={release!r}, sha256={SHA!r}); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr
