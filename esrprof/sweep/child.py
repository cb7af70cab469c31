"""One entry in one fresh process: start it, cap it, time it out, read how it ended.

Local workers and Ray tasks both call :func:`run_child`; neither imports the entry's code. The
child runs in its own session (process group) so that a timeout or an interrupted sweep kills
it whole, with its own children; on Linux it also dies with the thread that started it, so a
sweep killed with SIGKILL leaves no entry running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esrprof.jsonio import dumps, loads
from esrprof.sweep.state import DONE, FAILED, PENDING, TIMED_OUT

ERROR_PREFIX = "esrprof: error: "  # the worker's one line of why, the last such line wins
# The record carries this token so the parent knows it was written by this task, not left over.
TOKEN_KEY = "sweep_token"
_PR_SET_PDEATHSIG = 1
_KILL_GRACE_S = 2.0
ATTEMPT = "=== esrprof sweep attempt: "  # opens each attempt's part of a log


@dataclass(frozen=True)
class Outcome:
    status: str  # done, failed, timed_out, or pending (stopped by the sweep, to be redone)
    why: str | None
    seconds: float
    returncode: int | None


class Stopped(Exception):
    """The sweep is stopping (SIGINT, SIGTERM): the entry in flight goes back to pending."""


def new_task(entry: dict[str, Any], rules: dict[str, Any], out: Path) -> dict[str, Any]:
    return {"entry": entry, "rules": rules, "out": str(out), "token": secrets.token_hex(8)}


def run_child(task: dict[str, Any], work: Path, log: Path, *, timeout_s: float | None,
              memory_bytes: int | None, env: dict[str, str] | None = None,
              stop: threading.Event | None = None,
              live: dict[int, subprocess.Popen] | None = None) -> Outcome:
    """Run ``task`` in ``python -m esrprof.sweep.worker``; its record goes to ``task['out']``
    (under ``work``), its output to ``log``. ``stop`` set: kill it, outcome pending."""
    work.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    task_file = work / f"{Path(task['out']).stem}.task.json"
    task_file.write_text(dumps(task), encoding="utf-8")
    Path(task["out"]).unlink(missing_ok=True)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    start = time.perf_counter()
    with open(log, "ab") as fh:
        fh.write(f"{ATTEMPT}{task['entry']['name']} at "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "esrprof.sweep.worker", str(task_file)],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=child_env,
            start_new_session=True, preexec_fn=_limits(memory_bytes),
        )
        if live is not None:
            live[proc.pid] = proc
        try:
            rc, timed_out, stopped = _wait(proc, timeout_s, stop)
        finally:
            if live is not None:
                live.pop(proc.pid, None)
    seconds = time.perf_counter() - start
    task_file.unlink(missing_ok=True)
    if stopped:
        return Outcome(PENDING, "stopped with the sweep", seconds, rc)
    if timed_out:
        return Outcome(TIMED_OUT, f"timed out after {timeout_s:g} s (process group killed)",
                       seconds, rc)
    why = read_outcome(task, rc, log)
    return Outcome(DONE if why is None else FAILED, why, seconds, rc)


def _wait(proc: subprocess.Popen, timeout_s: float | None,
          stop: threading.Event | None) -> tuple[int, bool, bool]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            return proc.wait(timeout=0.1), False, False
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            return kill_group(proc), False, True
        if deadline is not None and time.monotonic() > deadline:
            return kill_group(proc), True, False


def kill_group(proc: subprocess.Popen) -> int:
    """SIGTERM the child's whole process group, SIGKILL it after a grace period."""
    for sig, wait in ((signal.SIGTERM, _KILL_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def read_outcome(task: dict[str, Any], rc: int | None, log: Path) -> str | None:
    """None when the child wrote this task's record; else one line of why."""
    out = Path(task["out"])
    error = last_error(log)
    if rc == 0 and out.is_file():
        try:
            data = loads(out.read_text(encoding="utf-8"), str(out))
            if (data.get("environment") or {}).get(TOKEN_KEY) == task["token"]:
                return None
        except Exception:  # a torn or foreign file is a failure, said below
            pass
        return error or "the record it wrote is not this task's (torn or foreign file)"
    if error:
        return error
    if rc is not None and rc < 0:
        name = _signal_name(-rc)
        hint = " (the memory cap?)" if -rc in (signal.SIGKILL, signal.SIGSEGV) else ""
        return f"killed by {name}{hint}"
    if rc == 0:
        return "the process exited with code 0 without writing its record (os._exit in user code?)"
    return f"the process exited with code {rc} and no error line (see its log)"


def last_error(log: Path) -> str | None:
    """The last ``esrprof: error:`` line of the log (the part after the prefix)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    block = tail.rpartition(ATTEMPT)[2]  # this attempt's lines only
    for line in reversed(block.splitlines()):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX):].strip()[:300]
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _limits(memory_bytes: int | None):
    """The child's preexec: the address-space cap, and death with its parent thread (Linux)."""
    def apply() -> None:
        if memory_bytes:
            try:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            except (ImportError, ValueError, OSError):
                pass  # the OS does not allow it: no cap
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return apply
