"""Optional dependencies: one place imports them, and a missing one is one line that says what to
install.

``pip install esrprof`` brings what counting, prediction and the card need (torch, numpy,
tabulate, tqdm). The rest comes with an extra::

    report   pandas, matplotlib, scipy, adjustText   esrprof report, Result.to_dataframe()
    peers    fvcore, thop                             --counters fvcore,thop
    gpu      nvidia-ml-py (pynvml)                    NVML memory and clock readings on a GPU
    run      pillow                                   --run on image folders (PNG, JPEG)
    pytest   pytest-benchmark                         the plugin's `benchmark` integration

Every optional import goes through :func:`require` (:func:`check` where a door wants to say it
before any work, :func:`available` where the feature just stays off without it), so a missing
package is a :class:`MissingExtraError` (exit 2) naming the ``pip install`` to run, never an
ImportError traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from esrprof.errors import UsageError

# top-level module -> (the distribution that provides it, the extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "pandas": ("pandas", "report"),
    "matplotlib": ("matplotlib", "report"),
    "scipy": ("scipy", "report"),
    "adjustText": ("adjustText", "report"),
    "fvcore": ("fvcore", "peers"),
    "thop": ("ultralytics-thop", "peers"),
    "pynvml": ("nvidia-ml-py", "gpu"),
    "PIL": ("pillow", "run"),
    "pytest_benchmark": ("pytest-benchmark", "pytest"),
}


class MissingExtraError(UsageError):
    """An optional package is not installed (exit 2): the message names the pip command."""


def install_hint(module: str, what: str | None = None) -> str:
    """``"esrprof report needs pandas: pip install 'esrprof[report]'"``."""
    dist, extra = EXTRAS[module.partition(".")[0]]
    need = f"{what} needs {dist}" if what else f"{dist} is not installed"
    return f"{need}: pip install 'esrprof[{extra}]'"


def require(module: str, what: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or a one-line MissingExtraError when the package
    (a key of :data:`EXTRAS`) is not installed. ``what`` names the feature that needs it."""
    top = module.partition(".")[0]
    if top not in EXTRAS:
        raise KeyError(f"{top!r} is not an optional dependency of esrprof")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # only the package itself missing; a broken install inside it stays a real error
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise
        raise MissingExtraError(install_hint(module, what)) from None


def check(module: str, what: str | None = None) -> None:
    """:func:`require` without the import: a door says what is missing before it does any
    work, and before it pays for importing the package."""
    if not available(module):
        raise MissingExtraError(install_hint(module, what))


def available(module: str) -> bool:
    """Whether an optional package can be imported (without importing it)."""
    top = module.partition(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a None entry in sys.modules (tests) raises ValueError
        return False
