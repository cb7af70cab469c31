"""The latency rooms import one way: isolation <- statistics <- sampling <- baseline <- gate
(read with ast, function-local imports included, since a cycle hidden in a function is still a
cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import esrprof

PACKAGE = Path(esrprof.__file__).parent
ORDER = ["isolation", "statistics", "sampling", "baseline", "gate"]
# Modules above the latency rooms: none of the rooms may import them.
DOORS = {"esrprof.cli", "esrprof.pytest_plugin", "esrprof.monitor", "esrprof.api",
         "esrprof.integrations"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_room_is_in_the_order():
    rooms = {p.stem for p in (PACKAGE / "latency").glob("*.py")} - {"__init__"}
    assert rooms == set(ORDER)


def test_no_room_imports_a_later_one_or_a_door():
    for i, room in enumerate(ORDER):
        names = imported(PACKAGE / "latency" / f"{room}.py")
        later = {f"esrprof.latency.{r}" for r in ORDER[i:]}
        assert not names & later, f"{room} imports {sorted(names & later)}"
        doors = {n for n in names if any(n == d or n.startswith(d + ".") for d in DOORS)}
        assert not doors, f"{room} imports {sorted(doors)}"


def test_statistics_is_pure_numpy():
    names = imported(PACKAGE / "latency" / "statistics.py")
    assert not {n for n in names if n.split(".")[0] in {"torch", "esrprof"}}


def test_the_old_modules_are_gone_and_nothing_imports_them():
    assert not (PACKAGE / "gate.py").exists() and not (PACKAGE / "baseline.py").exists()
    for path in PACKAGE.rglob("*.py"):
        names = imported(path)
        assert not names & {"esrprof.gate", "esrprof.baseline"}, path


def test_one_clock_protocol():
    defined = [p for p in PACKAGE.rglob("*.py")
               if any(isinstance(n, ast.ClassDef) and n.name == "Clock"
                      for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert [p.relative_to(PACKAGE).as_posix() for p in defined] == ["timing.py"]


def test_the_detector_sees_a_function_local_back_edge(tmp_path):
    # the check must be able to fail: a hidden import inside a function is found
    sample = tmp_path / "statistics.py"
    sample.write_text("def f():\n    from esrprof.latency.gate import run_gate\n")
    assert "esrprof.latency.gate" in imported(sample)
