"""The command line fails safe: one line and a non-zero exit for every bad input, and user code
never decides the exit code."""

from __future__ import annotations

import io
import textwrap

import pytest

from esrprof.cli import main

IMDN = "reference_models/imdn.py:IMDN"


@pytest.fixture(autouse=True)
def _in_repo(root, monkeypatch):
    monkeypatch.chdir(root)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture()
def model_file(tmp_path):
    def write(body: str, name: str = "zz_user_model.py"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


@pytest.mark.parametrize("where", ["import", "constructor", "forward"])
@pytest.mark.parametrize("code", [0, 7])
def test_sys_exit_in_user_code_is_a_model_error(capsys, model_file, where, code):
    path = model_file(f"""
        import sys
        from torch import nn
        {'sys.exit(' + str(code) + ')' if where == 'import' else ''}
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 3, 1)
                {'sys.exit(' + str(code) + ')' if where == 'constructor' else ''}
            def forward(self, x):
                {'sys.exit(' + str(code) + ')' if where == 'forward' else 'return self.conv(x)'}
    """, name=f"zz_exit_{where}_{code}.py")
    exit_code, _out, err = cli(capsys, "profile", f"{path}:Net", "--input-shape", "8x8")
    assert exit_code == 1
    assert f"sys.exit({code})" in _one_line(err)


def test_per_layer_before_the_spec_keeps_its_default(capsys):
    code, out, err = cli(capsys, "profile", "--per-layer", IMDN, "--input-shape", "16x16")
    assert code == 0, err
    assert "Top 15 layers" in out
    code, out, _ = cli(capsys, "profile", "--per-layer", "4", IMDN, "--input-shape", "16x16")
    assert code == 0 and "Top 4 layers" in out


@pytest.mark.parametrize("bad", ["0", "-2", "x"])
def test_per_layer_needs_a_positive_number(capsys, bad):
    with pytest.raises(SystemExit) as info:
        main(["profile", IMDN, f"--per-layer={bad}"])
    assert info.value.code == 2
    assert "--per-layer" in capsys.readouterr().err


def test_profile_without_a_spec_profiles_the_embedded_default(capsys):
    code, out, err = cli(capsys, "profile")
    assert code == 0, err
    for figure in ("0.894", "58.53", "154.14", "43"):
        assert figure in out


def test_deeply_nested_kwargs_is_one_line(capsys):
    deep = "[" * 5000 + "]" * 5000
    code, _, err = cli(capsys, "profile", IMDN, "--kwargs", '{"a": ' + deep + "}")
    assert code == 2
    assert "nested too deeply" in _one_line(err)


def test_the_divergence_table_says_when_rows_are_cut(capsys):
    code, out, _ = cli(capsys, "profile", IMDN, "--input-shape", "16x16", "--challenge",
                       "ntire2022")
    assert code == 0
    assert "Divergences: ntire2022 - complete" in out
    assert "the 5 largest of 24 layers" in out


def test_a_closed_pipe_ends_quietly(capsys, monkeypatch):
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["profile", IMDN, "--input-shape", "8x8"]) == 0
    assert capsys.readouterr().err == ""


def test_an_unexpected_failure_is_one_line(capsys, monkeypatch):
    import esrprof.api

    def boom(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(esrprof.api, "profile", boom)
    code, _, err = cli(capsys, "profile", IMDN)
    assert code == 1
    assert "RecursionError" in _one_line(err) and "--debug" in err


def test_wheel_users_are_pointed_at_the_module_form(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkout here: the file form cannot be found
    code, _, err = cli(capsys, "profile", "reference_models/imdn.py:IMDN")
    assert code == 2
    line = _one_line(err)
    assert "no such file" in line
    assert "use esrprof.reference_models.imdn:IMDN" in line
