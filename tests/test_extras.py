"""A light core install (issue 18, item 4): what each extra brings, and what a missing one says.

A fresh virtual environment per case would take minutes. Instead the extra's package is made
unimportable: in this process (``sys.modules[name] = None``, the ``absent`` fixture) for the
library's paths, and in a child interpreter (a finder first on ``sys.meta_path`` answers "No
module named ..." for it, as for a package never installed) for the command line's, each
checking the one line that names the ``pip install`` to run.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from esrprof import extras
from esrprof.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "reference_models" / "data" / "ntire2022_table1.csv"
IMDN = "esrprof.reference_models.imdn:IMDN"


BLOCKER = """import sys


class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent())
"""


def _child(code: str, *blocked: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    prelude = BLOCKER.format(blocked=sorted({m.partition(".")[0] for m in blocked}))
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, cwd=cwd or ROOT)


def _cli(argv: list[str], *blocked: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    code = f"from esrprof.cli import main\nsys.exit(main({argv!r}))\n"
    return _child(code, *blocked, cwd=cwd)


@pytest.fixture
def absent(monkeypatch):
    """``absent("pandas")``: in this process, the package (and any of its submodules already
    loaded) cannot be imported, as if it had never been installed."""

    def hide(*names: str) -> None:
        for name in names:
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                monkeypatch.setitem(sys.modules, loaded, None)
            monkeypatch.setitem(sys.modules, name, None)

    return hide


def _one_line(done: subprocess.CompletedProcess, extra: str) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr  # no traceback
    assert f"pip install 'esrprof[{extra}]'" in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------- the helper


def test_require_names_the_extra_and_the_feature(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(extras.MissingExtraError) as caught:
        extras.require("pandas", "the report")
    assert str(caught.value) == "the report needs pandas: pip install 'esrprof[report]'"
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    with pytest.raises(extras.MissingExtraError, match=r"^ultralytics-thop is not installed: "):
        monkeypatch.setitem(sys.modules, "thop", None)
        extras.require("thop")
    assert not extras.available("thop")
    with pytest.raises(extras.MissingExtraError, match=r"esrprof\[peers\]"):
        extras.check("thop", "--counters thop")


def test_require_returns_the_module_when_present():
    assert extras.require("pandas") is sys.modules["pandas"]
    assert extras.available("pandas")
    extras.check("scipy")  # present: silent


def test_require_refuses_a_name_that_is_not_an_extra():
    with pytest.raises(KeyError):
        extras.require("json")


def test_a_broken_package_is_not_called_missing(tmp_path):
    # an ImportError from inside the package (its own dependency gone) stays a real error
    pkg = tmp_path / "fvcore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import no_such_dependency_xyz\n")
    done = _child(f"""
        sys.path.insert(0, {str(tmp_path)!r})
        from esrprof.extras import require
        try:
            require("fvcore")
        except ModuleNotFoundError as exc:
            print("real", exc.name)
        """)
    assert done.stdout.strip() == "real no_such_dependency_xyz", done.stderr


# ------------------------------------------------------------------------------- each extra


def test_report_without_pandas_is_one_line_before_any_work(tmp_path):
    done = _cli(["report", str(TABLE), "-o", str(tmp_path / "rep")], "pandas")
    assert _one_line(done, "report") == \
        "esrprof: error: esrprof report needs pandas: pip install 'esrprof[report]'"
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("module", ["matplotlib", "scipy"])
def test_report_without_matplotlib_or_scipy(tmp_path, module):
    done = _cli(["report", str(TABLE), "-o", str(tmp_path / "rep")], module)
    assert f"needs {module}" in _one_line(done, "report")


def _small_table(folder: Path) -> Path:
    table = folder / "three.csv"
    table.write_text("".join(TABLE.read_text(encoding="utf-8").splitlines(True)[:4]))
    return table


def test_report_tables_only_need_no_matplotlib(tmp_path, absent, capsys):
    from esrprof.cli import main

    absent("matplotlib")
    code = main(["report", str(_small_table(tmp_path)), "-o", str(tmp_path / "rep"),
                 "--no-charts", "--no-predict"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "rep" / "index.html").is_file()


def test_the_report_library_raises_the_same_line(tmp_path, absent):
    from esrprof.report import ReportOptions, build_report

    absent("pandas")
    with pytest.raises(extras.MissingExtraError) as caught:
        build_report([str(_small_table(tmp_path))], ReportOptions(title="t"))
    assert str(caught.value) == "the report needs pandas: pip install 'esrprof[report]'"


def test_to_dataframe_without_pandas(absent):
    from esrprof.reference_models.imdn import IMDN

    import esrprof

    result = esrprof.profile(IMDN(), (1, 3, 16, 16))
    absent("pandas")
    with pytest.raises(extras.MissingExtraError,
                       match=r"^to_dataframe\(\) needs pandas: pip install 'esrprof\[report\]'$"):
        result.to_dataframe()


@pytest.mark.parametrize(("counter", "module"), [("fvcore", "fvcore"), ("thop", "thop")])
def test_counters_without_their_package(counter, module):
    code = f"""
        from esrprof.cli import main
        code = main(["profile", {IMDN!r}, "--counters", {counter!r}, "--no-predict"])
        print("torch" in sys.modules, file=sys.stderr)
        sys.exit(code)
        """
    done = _child(code, module)
    line, torch_loaded = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert line == f"esrprof: error: --counters {counter} needs " \
        f"{extras.EXTRAS[module][0]}: pip install 'esrprof[peers]'"
    assert torch_loaded == "False"  # said before anything was built


def test_the_peer_adapters_require_their_package(absent):
    import torch

    from esrprof.counting.peers import PEERS

    absent("fvcore", "thop")
    said = []
    for fn in PEERS.values():
        with pytest.raises(extras.MissingExtraError) as caught:
            fn(torch.nn.Conv2d(3, 3, 1), torch.rand(1, 3, 4, 4))
        said.append(str(caught.value))
    assert said == [
        "--counters fvcore needs fvcore: pip install 'esrprof[peers]'",
        "--counters thop needs ultralytics-thop: pip install 'esrprof[peers]'",
    ]


def test_no_nvml_is_a_note_with_the_install_line(absent):
    import torch

    from esrprof.memory import NvmlSampler, nvml

    absent("pynvml")
    with nvml() as handle:
        assert handle is None
    note = NvmlSampler(torch.device("cpu")).start().note
    assert note == "nvidia-ml-py is not installed: pip install 'esrprof[gpu]'; no NVML figures"


def test_image_folders_without_pillow(tmp_path):
    (tmp_path / "lr").mkdir()
    done = _cli(["profile", IMDN, "--run", "--lr-dir", str(tmp_path / "lr"), "--no-predict"],
                "PIL")
    assert "reading images (--data, --lr-dir, --hr-dir) needs pillow" in _one_line(done, "run")


def test_reading_an_image_without_pillow(tmp_path, absent):
    from esrprof.data import read_image

    absent("PIL")
    with pytest.raises(extras.MissingExtraError,
                       match=r"^reading images needs pillow: pip install 'esrprof\[run\]'$"):
        read_image(tmp_path / "x.png")


def test_zoo_needs_no_scipy(absent):
    # the zoo's rank agreement is computed with numpy: scipy is the report's
    from esrprof.zoo.compare import spearman

    absent("scipy")
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)


def test_zoo_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from esrprof.zoo.compare import spearman

    xs, ys = [1, 2, 2, 3, 5, 5, 5], [0.3, 0.1, 0.1, 0.9, 0.5, 0.7, 0.2]
    assert spearman(xs, ys) == pytest.approx(spearmanr(xs, ys).statistic, abs=1e-12)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2], [1, 2]) is None


def test_fitting_a_calibration_without_scipy(absent):
    from esrprof.prediction.fit import fit_calibration

    absent("scipy")
    with pytest.raises(extras.MissingExtraError,
                       match=r"^fitting a calibration needs scipy: pip install"):
        fit_calibration({}, {})


PLUGIN_TEST = """
import torch

def test_bench(esrprof_benchmark):
    esrprof_benchmark(torch.nn.Conv2d(3, 3, 1), (1, 3, 4, 4), rounds=2, warmup_rounds=0)

def test_plain():
    assert True
"""


def test_the_pytest_plugin_without_pytest_benchmark(tmp_path):
    # the plugin loads (every other test runs); the fixture that needs pytest-benchmark fails
    # its own test with the install line
    (tmp_path / "test_b.py").write_text(PLUGIN_TEST)
    # pytest's assertion-rewriting finder goes first on sys.meta_path and finds plugins itself:
    # the conftest puts the blocker back in front of it
    (tmp_path / "conftest.py").write_text(BLOCKER.format(blocked=["pytest_benchmark"]))
    done = _child("""
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:benchmark", "-p", "no:cacheprovider",
                              "test_b.py"]))
        """, "pytest_benchmark", cwd=tmp_path)
    assert "1 passed, 1 error" in done.stdout, done.stdout + done.stderr
    assert "esrprof_benchmark needs pytest-benchmark: pip install 'esrprof[pytest]'" \
        in done.stdout
    assert "Traceback" not in done.stdout


# ------------------------------------------------------------------------------- the rules


def _optional_imports_outside_the_helper() -> list[str]:
    offenders = []
    for path in sorted((ROOT / "esrprof").rglob("*.py")):
        if path.name == "extras.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                skip.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                if name.partition(".")[0] in extras.EXTRAS:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    return offenders


def test_every_optional_import_goes_through_the_helper():
    assert _optional_imports_outside_the_helper() == []


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()


def test_pyproject_extras_hold_what_the_helper_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    for module, (dist, extra) in extras.EXTRAS.items():
        names = {_requirement_name(r) for r in optional[extra]}
        assert dist.lower() in names, f"{module}: {dist} not in [{extra}]"
    # the core: torch, numpy and at most three small packages
    core = [_requirement_name(r) for r in project["dependencies"]]
    assert core[:2] == ["torch", "numpy"] and len(core) <= 5, core
    assert not set(core) & {dist.lower() for dist, _ in extras.EXTRAS.values()}
    # [all] is every extra but the integrations; [dev] is all + the tools
    assert optional["all"] == ["esrprof[report,peers,gpu,run,pytest]"]
    assert set(re.findall(r"\[(.*)\]", optional["all"][0])[0].split(",")) == \
        {extra for _, extra in extras.EXTRAS.values()}
    assert "esrprof[all]" in optional["dev"]
    assert {"pytest", "ruff"} <= {_requirement_name(r) for r in optional["dev"]}


def test_ci_and_readme_install_the_extras():
    ci = (ROOT / ".ci" / "run").read_text()
    assert '".[dev]"' in ci
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[all]"' in readme and 'pip install -e ".[dev]"' in readme


def test_import_esrprof_loads_no_extra():
    # (pynvml is left out: torch.cuda itself imports it when it is installed)
    done = _child("""
        import json, esrprof
        esrprof.count  # the engine too
        print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in
                                ("pandas", "matplotlib", "scipy", "fvcore", "thop", "PIL",
                                 "pytest_benchmark"))))
        """)
    assert json.loads(done.stdout) == [], done.stderr
