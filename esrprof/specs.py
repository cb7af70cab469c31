"""What a model spec, ``--kwargs`` and ``--weights`` say, checked without importing torch.

``FILE.py:Class`` must name a file that exists, ``package.module:Class`` a package that is
installed, ``--kwargs`` a JSON object and ``--weights`` a file. The command line runs these
checks before it imports the work (and torch), so a typo answers at once; ``esrprof.loading``
runs the same ones when it builds the model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from esrprof.errors import ResultFileError, SpecError, UsageError
from esrprof.jsonio import loads


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` JSON -> dict; anything but a JSON object is a usage error."""
    if text is None or not text.strip():
        return {}
    try:
        value = loads(text, "--kwargs")
    except ResultFileError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(value, dict):
        raise UsageError(f"--kwargs must be a JSON object, got {type(value).__name__}")
    return value


def split_spec(spec: str) -> tuple[str, str]:
    """``"a/b.py:Net"`` -> ``("a/b.py", "Net")``; a spec without both halves is refused."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise SpecError(f"model spec {spec!r} must be FILE.py:Class or package.module:Class")
    return target, attr


def is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def check_file(path: Path, attr: str = "Class") -> None:
    """A spec's file exists and is Python source."""
    if not path.exists():
        raise SpecError(f"no such file: {path}{_module_form_hint(path, attr)}")
    if path.suffix != ".py":
        raise SpecError(f"{path} is not a .py file")


def check_spec(spec: str) -> None:
    """Everything about ``spec`` that can be known without importing it (or torch)."""
    target, attr = split_spec(spec)
    if is_file_target(target):
        check_file(Path(target), attr)
        return
    top = target.partition(".")[0]
    try:
        found = importlib.util.find_spec(top)  # the top package only: nothing is imported
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise SpecError(f"no module named {target!r}")


def check_weights(path: str | Path | None) -> None:
    if path is not None and not Path(path).is_file():
        raise UsageError(f"no such checkpoint: {path}")


def _module_form_hint(path: Path, attr: str = "Class") -> str:
    """After a wheel install there is no checkout: say which module to name instead."""
    if path.is_absolute() or path.suffix != ".py":
        return ""
    dotted = ".".join(path.with_suffix("").parts)
    if not all(p.isidentifier() for p in dotted.split(".")):
        return ""
    for candidate in (f"esrprof.{dotted}", dotted):  # the reference models install in esrprof
        try:
            if importlib.util.find_spec(candidate) is not None:
                return f" (installed as a module: use {candidate}:{attr})"
        except (ImportError, ValueError):
            continue
    return ""
