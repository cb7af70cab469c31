"""Fast doors: `esrprof --help`, every command's `--help` and every usage error that can be known
before a model is built answer without importing torch (issue 18, item 3).

The cases run in one fresh interpreter, one after the other: after each, the child records its
exit code, its stderr and whether ``torch`` is in ``sys.modules``; a case that imported torch
ends that interpreter and the next case starts a new one. Timing is left to
benchmarks/bench_startup.py: a shared machine makes timed tests flaky.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrprof.cli import COMMANDS

IMDN = "esrprof.reference_models.imdn:IMDN"

# (argv, exit code, a piece of the one stderr line); None: a help text (exit 0, on stdout)
USAGE_ERRORS: list[tuple[list[str], int, str]] = [
    (["--no-such-flag"], 2, "unrecognized arguments"),
    (["no-such-command"], 2, "invalid choice"),
    # profile
    (["profile", "nope.py:Net"], 2, "no such file: nope.py"),
    (["profile", "nospec"], 2, "must be FILE.py:Class"),
    (["profile", "no_such_pkg_xyz.models:Net"], 2, "no module named"),
    (["profile", "./notes.txt:Net"], 2, "is not a .py file"),
    (["profile", IMDN, "--input-shape", "1,a,3"], 2, "--input-shape"),
    (["profile", IMDN, "--input-shape", "1,3,0,4"], 2, "must be positive"),
    (["profile", IMDN, "--kwargs", "{bad"], 2, "--kwargs"),
    (["profile", IMDN, "--kwargs", "[1, 2]"], 2, "must be a JSON object"),
    (["profile", IMDN, "--weights", "nope.pth"], 2, "no such checkpoint"),
    (["profile", IMDN, "--gpu", "no-such-gpu"], 2, "no-such-gpu"),
    (["profile", IMDN, "--counters", "flopsy"], 2, "unknown counter 'flopsy'"),
    (["profile", IMDN, "--trials", "3"], 2, "only applies with --run"),
    (["profile", IMDN, "--per-layer", "0"], 2, "positive"),
    (["profile", IMDN, "--backend", "gpu"], 2, "invalid choice"),
    (["profile", IMDN, "--json", "notes.txt/out.json"], 2, "a parent of it is a file"),
    # zoo
    (["zoo", "NOPE"], 2, "no reference model named 'NOPE'"),
    (["zoo", "IMDN", "--json", "notes.txt/rows.json"], 2, "a parent of it is a file"),
    (["zoo", "fetch", "RLFN"], 2, "pass --sha256"),
    (["zoo", "fetch", "NOPE"], 2, "no reference model named 'NOPE'"),
    (["zoo", "fetch", "RLFN", "--sha256", "abc"], 2, "64 hexadecimal digits"),
    (["zoo", "fetch", "RLFN", "--sha256", "0" * 64, "-o", "notes.txt"], 2, "exists"),
    # report
    (["report", "nope.json", "-o", "rep"], 2, "nope.json: no such file"),
    (["report", "notes.txt"], 2, "required"),
    (["report", "notes.txt", "-o", "rep", "--top-layers", "0"], 2, "--top-layers"),
    (["report", "notes.txt", "-o", "rep", "--score", "ntire1999"], 2, "invalid choice"),
    # gate
    (["gate", "nope.py:Net", "--baseline", "broken.json"], 2, "no such file: nope.py"),
    (["gate", IMDN, "--baseline", "nope.json"], 2, "nope.json: no such file"),
    (["gate", IMDN, "--baseline", "broken.json"], 2, "broken.json"),
    (["gate", IMDN, "--baseline", "broken.json", "--input-shape", "x"], 2, "--input-shape"),
    (["gate", IMDN, "--baseline", "broken.json", "--kwargs", "3"], 2, "must be a JSON object"),
    (["gate", IMDN], 2, "--baseline"),
    # baseline
    (["baseline", "save", IMDN], 2, "-o/--output"),
    (["baseline", "save", "nope.py:Net", "-o", "b.json"], 2, "no such file: nope.py"),
    (["baseline", "save", IMDN, "-o", "b.json", "--samples", "2"], 2, "--samples"),
    (["baseline", "save", IMDN, "-o", "b.json", "--input-shape", "1,a"], 2, "--input-shape"),
    (["baseline", "show", "nope.json"], 2, "nope.json: no such file"),
    (["baseline", "show", "broken.json"], 2, "broken.json"),
    (["baseline", "nope"], 2, "invalid choice"),
]

# every command, whoever added it, refuses an unknown flag (or first a missing argument)
USAGE_ERRORS += [([name, "--no-such-flag-xyz"], 2, "") for name in COMMANDS]

HELPS: list[list[str]] = [
    ["--help"],
    ["--version"],
    *([name, "--help"] for name in COMMANDS),
    ["baseline", "save", "--help"],
    ["baseline", "show", "--help"],
]

CHILD = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from esrprof.cli import main

    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        except SystemExit as exc:
            code = exc.code
        results.append({"argv": argv, "code": code, "out": out.getvalue(),
                        "err": err.getvalue(), "torch": "torch" in sys.modules,
                        "heavy": sorted(m for m in ("numpy", "pandas", "matplotlib", "scipy")
                                        if m in sys.modules)})
        if results[-1]["torch"] or results[-1]["heavy"]:
            break  # the next cases need a fresh interpreter
    print(json.dumps(results))
    """
)


def _run_all(cases: list[list[str]], folder: Path) -> list[dict]:
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "broken.json").write_text("{not json\n")
    results: list[dict] = []
    while len(results) < len(cases):
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases[len(results):])],
                              cwd=folder, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results += json.loads(done.stdout)
    return results


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("doors")
    cases = [argv for argv, _, _ in USAGE_ERRORS] + HELPS
    return {json.dumps(r["argv"]): r for r in _run_all(cases, folder)}


@pytest.mark.parametrize("argv", HELPS, ids=" ".join)
def test_help_answers_without_torch(answers, argv):
    r = answers[json.dumps(argv)]
    assert r["code"] == 0, r
    assert ("usage:" in r["out"]) or r["out"].startswith("esrprof "), r
    assert not r["torch"], f"`esrprof {' '.join(argv)}` imported torch"


@pytest.mark.parametrize(("argv", "code", "says"), USAGE_ERRORS, ids=lambda v: (
    " ".join(v) if isinstance(v, list) else None))
def test_usage_errors_answer_in_one_line_without_torch(answers, argv, code, says):
    r = answers[json.dumps(argv)]
    assert r["code"] == code, r
    lines = r["err"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("esrprof: error: "), r["err"]
    assert says in lines[0], lines[0]
    assert not r["torch"], f"`esrprof {' '.join(argv)}` imported torch before refusing"


def test_the_doors_import_nothing_heavy(answers):
    # numpy, pandas, matplotlib and scipy stay out too: the doors cost the interpreter, no more
    heavy = {" ".join(r["argv"]): r["heavy"] for r in answers.values() if r["heavy"]}
    assert not heavy


def test_every_command_has_a_usage_error_case():
    covered = {argv[0] for argv, _, _ in USAGE_ERRORS}
    assert set(COMMANDS) <= covered


def test_the_check_can_fail(tmp_path):
    # the same harness sees torch when a path imports it (a model built for real)
    model = tmp_path / "tiny.py"
    model.write_text("import torch\nclass Net(torch.nn.Conv2d):\n"
                     "    def __init__(self):\n        super().__init__(3, 3, 1)\n")
    [r] = _run_all([["profile", "tiny.py:Net", "--no-predict", "--input-shape", "1,3,4,4"]],
                   tmp_path)
    assert r["code"] == 0, r
    assert r["torch"]


def test_a_valid_command_still_does_its_work(tmp_path):
    # the checks moved before the work; the work still runs after them
    [r] = _run_all([["zoo", "IMDN", "--no-predict"]], tmp_path)
    assert r["code"] == 0, r
    assert "IMDN" in r["out"] and r["torch"]
