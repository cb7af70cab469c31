"""``DIR/sweep.json``: the state of every entry, rewritten atomically after every change.

A reader (or a sweep resumed after a power loss) sees the state before a change or after it,
never half of one. Each entry keeps its status, one line of why when it did not finish, the path
of its log, and the key that decides whether a done entry is still done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from esrprof.errors import ResultFileError, UsageError
from esrprof.files import write_text
from esrprof.jsonio import dumps, read_json

STATE_FILE = "sweep.json"
STATE_KIND = "esrprof sweep"
STATE_VERSION = 1

PENDING, RUNNING, DONE, FAILED, TIMED_OUT, SKIPPED = (
    "pending", "running", "done", "failed", "timed_out", "skipped")
STATUSES = (PENDING, RUNNING, DONE, FAILED, TIMED_OUT, SKIPPED)
FINISHED = (DONE, FAILED, TIMED_OUT)  # what a resumed sweep keeps while the key is unchanged


@dataclass(frozen=True)
class EntryState:
    name: str
    status: str = PENDING
    key: str = ""
    why: str | None = None  # one line, for failed / timed_out / skipped
    log: str | None = None  # relative to the sweep folder
    result: str | None = None  # relative to the sweep folder, when done
    team: str | None = None
    seconds: float | None = None  # the last attempt's wall time, process start included
    attempts: int = 0
    worker: str | None = None  # where it ran: "local:0", "local:cuda1", a Ray node id
    repeats: list[dict[str, Any]] = field(default_factory=list)  # one dict per finished run

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntryState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        state = cls(**known)
        if state.status not in STATUSES:
            raise ValueError(f"unknown status {state.status!r}")
        return state


class SweepState:
    """Every entry's state, kept in memory and mirrored to ``folder/sweep.json``.

    Thread-safe: local workers update their entries from their own threads.
    """

    def __init__(self, folder: Path, entries: dict[str, EntryState],
                 meta: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.entries = entries
        self.meta = dict(meta or {})
        self._lock = threading.RLock()

    @property
    def path(self) -> Path:
        return self.folder / STATE_FILE

    @classmethod
    def load(cls, folder: str | Path) -> SweepState:
        """The state in ``folder`` (an empty one for a folder without sweep.json)."""
        folder = Path(folder)
        path = folder / STATE_FILE
        if not path.exists():
            return cls(folder, {})
        data = read_json(path)
        if not isinstance(data, dict) or data.get("kind") != STATE_KIND:
            raise ResultFileError(f"{path}: not an esrprof sweep state file")
        if not isinstance(data.get("version"), int) or data["version"] > STATE_VERSION:
            raise ResultFileError(f"{path}: sweep state version {data.get('version')!r} is not "
                                  f"one this esrprof reads ({STATE_VERSION})")
        try:
            entries = {e["name"]: EntryState.from_dict(e) for e in data.get("entries", [])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultFileError(f"{path}: malformed entry: {exc}") from None
        return cls(folder, entries, data.get("meta"))

    def get(self, name: str) -> EntryState:
        with self._lock:
            return self.entries[name]

    def set(self, name: str, **changes: Any) -> EntryState:
        """Change one entry and write the whole file atomically."""
        with self._lock:
            current = self.entries.get(name) or EntryState(name=name)
            self.entries[name] = replace(current, **changes)
            self.save()
            return self.entries[name]

    def save(self) -> None:
        with self._lock:
            data = {
                "kind": STATE_KIND,
                "version": STATE_VERSION,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "meta": self.meta,
                "counts": self.counts(),
                "entries": [asdict(e) for e in self.entries.values()],
            }
            write_text(self.path, dumps(data) + "\n")

    def counts(self) -> dict[str, int]:
        with self._lock:
            out = dict.fromkeys(STATUSES, 0)
            for e in self.entries.values():
                out[e.status] += 1
            return out

    def names(self, statuses: Iterable[str]) -> list[str]:
        wanted = set(statuses)
        with self._lock:
            return [n for n, e in self.entries.items() if e.status in wanted]


def plan(state: SweepState, keys: Mapping[str, str], teams: Mapping[str, str | None], *,
         redo: Iterable[str] = (), retry_failed: bool = False) -> list[str]:
    """Reconcile the state with this sweep's entries; returns the names to run.

    Kept: a done (or failed, timed-out) entry whose key is unchanged and whose result file is
    still there. Run: everything else — new, pending, running when the last sweep stopped
    (the entry in flight), changed, or named by ``redo``.
    """
    unknown = sorted(set(redo) - set(keys))
    if unknown:
        raise UsageError(f"--redo {unknown[0]}: no entry of that name")
    todo = []
    for name, key in keys.items():
        old = state.entries.get(name)
        keep = (
            old is not None and old.key == key and name not in redo
            and ((old.status == DONE and old.result and (state.folder / old.result).is_file())
                 or (old.status in (FAILED, TIMED_OUT) and not retry_failed))
        )
        if keep:
            if old.team != teams.get(name):
                state.entries[name] = replace(old, team=teams.get(name))
            continue
        state.entries[name] = EntryState(
            name=name, status=PENDING, key=key, team=teams.get(name),
            attempts=old.attempts if old is not None else 0)
        todo.append(name)
    for name, old in list(state.entries.items()):
        if name not in keys and old.status != SKIPPED:
            state.entries[name] = replace(old, status=SKIPPED,
                                          why="no longer listed in ENTRIES")
    state.save()
    return todo


def is_sweep_folder(folder: Path) -> bool:
    return (Path(folder) / STATE_FILE).is_file()


def sweep_results(folder: str | Path) -> list[Path]:
    """The result records of a sweep folder's done entries, in ENTRIES order (what
    ``esrprof report DIR`` reads; failed entries, repeats and logs are not results)."""
    state = SweepState.load(folder)
    done = [state.folder / e.result for e in state.entries.values()
            if e.status == DONE and e.result]
    if not done:
        raise ResultFileError(f"{folder}: sweep folder with no done entry yet")
    return done
