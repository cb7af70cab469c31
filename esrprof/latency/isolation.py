"""Running user code where its death is seen: a child process that hands back its answer.

A verdict is only a verdict when it was *given*. A model whose forward calls ``os._exit(0)``,
kills its own process with a signal, or never returns cannot be caught by ``try``: in the
process that asked for the verdict it would end that process with whatever exit code it chose
(0, "pass"), or hang it. So every door that runs user code for a verdict (``esrprof gate``,
``esrprof baseline save``, the pytest fixture ``esrprof_latency``) calls :func:`run_isolated`:
the work runs in a child process, which writes its answer (a value, or the
:class:`~esrprof.errors.EsrprofError` it raised) to a file it renames into place when done. The
parent waits for it, bounded by the gate's deadline plus a grace, and a child that ends without
an answer, is killed by a signal, or runs past the bound (it is killed) is a
:class:`ChildFailed`: exit 1, one line naming the cause.

How the child starts: on Linux, when CUDA is not initialised in this process, by ``fork`` (a
fraction of a second: benchmarks/bench_isolation.py; the child has the parent's objects, so
the pytest fixture's model is not copied, and an injected clock keeps working). Elsewhere,
or after CUDA is initialised (a forked child cannot use it), by a fresh interpreter
(``python -m esrprof.latency.isolation``) that unpickles the work; it pays torch's import
again (1-3 s on a quiet machine).

A forked child runs one intra-op thread only: GNU OpenMP's pool does not survive ``fork`` (a
child of a process that computed with two threads deadlocks on its first parallel op). The
doors pass their ``threads``; more than one picks the fresh interpreter.

The child protects against accidents, not malice: code that runs in it can do anything the
user can, write a fake answer included (see docs/security.md).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esrprof.errors import EsrprofError, ModelError, UsageError

_RESULT = "answer.pickle"
_PAYLOAD = "work.pickle"
_POLL_S = 0.02


class ChildFailed(ModelError):
    """The child process ended without an answer, was killed, or ran past its bound (exit 1)."""


def grace_seconds(budget_s: float) -> float:
    """Time a child gets past its deadline to finish the batch in hand and write its answer."""
    return min(30.0, 2.0 + 0.25 * budget_s)


def fork_is_safe(threads: int | None = 1) -> bool:
    """Whether a forked child can run torch: Linux, CUDA not initialised here, one thread."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_initialized():
                return False
    return threads == 1


def run_isolated(
    work: Callable[..., Any],
    args: tuple[Any, ...] = (),
    *,
    what: str,
    bound_s: float,
    threads: int | None = 1,
    method: str = "auto",
) -> Any:
    """``work(*args)`` in a child process; its return value, or the EsrprofError it raised.

    ``bound_s`` is how long the parent waits (from now) before it kills the child: the work's
    own deadline plus :func:`grace_seconds`. ``what`` names the work in the one-line error
    (``"the gate timing net.py:Net"``). ``method`` is ``auto``, ``fork`` or ``spawn``.
    """
    if method == "auto":
        method = "fork" if fork_is_safe(threads) else "spawn"
    folder = Path(tempfile.mkdtemp(prefix="esrprof-child-"))
    try:
        if method == "fork":
            child = _ForkedChild(work, args, folder)
        else:
            child = _SpawnedChild(work, args, folder, what)
        return _wait(child, folder, what, bound_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(child: Any, folder: Path, what: str, bound_s: float) -> Any:
    end = time.monotonic() + bound_s
    status: int | None = None
    try:
        while status is None:
            status = child.poll()
            if status is None:
                if time.monotonic() >= end:
                    child.kill()
                    raise ChildFailed(
                        f"{what} gave no verdict within {bound_s:.3g} s (the time budget and "
                        f"its grace); killed it: a model that hangs?"
                    )
                time.sleep(_POLL_S)
    finally:
        if status is None:
            child.kill()
    answer = folder / _RESULT
    if not answer.is_file():
        raise ChildFailed(f"{what} ended without a verdict: {_cause(status)}")
    try:
        kind, value = pickle.loads(answer.read_bytes())
    except Exception as exc:  # a torn or foreign file: no verdict
        raise ChildFailed(f"{what} left an unreadable answer ({type(exc).__name__}): "
                          f"{_cause(status)}") from None
    if kind == "ok":
        return value
    if kind == "error" and isinstance(value, EsrprofError):
        raise value
    raise ChildFailed(f"{what} failed: {value}")


def _cause(status: int) -> str:
    """``exit code 0`` or ``killed by signal SIGKILL``, said so a user knows where to look."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"the process was killed by {name} (the model's code, or the system's OOM killer?)"
    return (f"the process exited with code {status} before answering (os._exit or a crash in "
            "the model's code?)")


def _answer(work: Callable[..., Any], args: tuple[Any, ...], folder: Path) -> None:
    """Run the work and write its answer; in the child only."""
    try:
        value: tuple[str, Any] = ("ok", work(*args))
    except EsrprofError as exc:
        value = ("error", exc)
    except BaseException as exc:  # a bug in esrprof: say what it was
        from esrprof.errors import describe

        value = ("error", f"{describe(exc)} (an esrprof bug: please report it)")
    try:
        data = pickle.dumps(value)
    except Exception as exc:  # an answer that cannot travel
        data = pickle.dumps(("error", f"its answer cannot be sent back ({exc})"))
    partial = folder / (_RESULT + ".part")
    partial.write_bytes(data)
    os.replace(partial, folder / _RESULT)


class _ForkedChild:
    def __init__(self, work: Callable[..., Any], args: tuple[Any, ...], folder: Path) -> None:
        for stream in (sys.stdout, sys.stderr):  # else the child prints the parent's buffer again
            with contextlib.suppress(Exception):
                stream.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork in a process with threads; the child touches no
            # lock those threads may hold before it runs torch (see the module's docstring).
            warnings.simplefilter("ignore", DeprecationWarning)
            self.pid = os.fork()
        if self.pid == 0:  # the child: never return into the caller's stack
            code = 0
            try:
                _answer(work, args, folder)
            except BaseException:  # no answer written: the parent says so
                code = 70
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(code)
        self.status: int | None = None

    def poll(self) -> int | None:
        if self.status is None:
            pid, raw = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(raw)
        return self.status

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, raw = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(raw)


class _SpawnedChild:
    def __init__(self, work: Callable[..., Any], args: tuple[Any, ...], folder: Path,
                 what: str) -> None:
        try:
            payload = pickle.dumps(list(sys.path)) + pickle.dumps((work, args))
        except Exception as exc:  # a model pickle cannot carry
            raise UsageError(
                f"{what}: the work cannot be sent to a child process ({type(exc).__name__}: "
                f"{str(exc)[:200]}); define the model's class at module level"
            ) from None
        (folder / _PAYLOAD).write_bytes(payload)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "esrprof.latency.isolation", str(folder)],
            stdin=subprocess.DEVNULL,
        )

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _spawned_main(folder: Path) -> int:
    with (folder / _PAYLOAD).open("rb") as fh:
        # the parent's import path first: the work's classes (a test module's, a user
        # package's) are imported by name while it is unpickled
        sys.path[:] = pickle.load(fh)
        try:
            work, args = pickle.load(fh)
        except Exception as exc:  # a class defined in the parent's __main__, say
            from esrprof.errors import describe

            reason = UsageError(f"the work cannot be loaded in a fresh interpreter "
                                f"({describe(exc)}); define the model's class in an "
                                "importable module")
            work, args = _raise, (reason,)
    _answer(work, args, folder)
    return 0


def _raise(error: BaseException) -> None:
    raise error


if __name__ == "__main__":  # pragma: no cover - the spawned child
    sys.exit(_spawned_main(Path(sys.argv[1])))
