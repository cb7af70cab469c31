"""What the sweep shows while it runs (a tqdm bar) and when it ends (a table of failures).

The library never prints: the CLI makes a :class:`Bar` and passes its ``update`` to the sweep.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from esrprof.sweep.state import DONE, FAILED, RUNNING, TIMED_OUT


class Bar:
    """done / failed / running, and tqdm's estimate of the time left."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._bar: Any = None
        self._said: set[tuple[str, str]] | None = None

    def update(self, state: Any, finished: int, total: int) -> None:
        counts = state.counts()
        if not self.enabled:
            self._lines(state)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.stream, unit="run", dynamic_ncols=True,
                             desc="sweep")
        self._bar.set_postfix_str(
            f"done {counts[DONE]}, failed {counts[FAILED] + counts[TIMED_OUT]}, "
            f"running {counts[RUNNING]}", refresh=False)
        self._bar.update(finished - self._bar.n)

    def _lines(self, state: Any) -> None:
        """Without a terminal: one line per entry as it ends."""
        if self._said is None:  # what earlier sweeps finished is not news
            self._said = {(n, e.status) for n, e in state.entries.items()}
        for name, e in list(state.entries.items()):
            if e.status in (DONE, FAILED, TIMED_OUT) and (name, e.status) not in self._said:
                self._said.add((name, e.status))
                why = f": {e.why}" if e.why else ""
                print(f"  {name}: {e.status} ({e.seconds or 0:.1f} s){why}", file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def failure_table(failures: list[tuple[str, str, str, str | None]]) -> str:
    """entry | status | why | log, one row per failed or timed-out entry."""
    from tabulate import tabulate

    rows = [(name, status, why, log or "") for name, status, why, log in failures]
    return tabulate(rows, headers=("entry", "status", "why", "log"), tablefmt="simple")


def repeat_table(repeats: dict[str, dict[str, Any]]) -> str:
    from tabulate import tabulate

    rows = []
    for name, r in repeats.items():
        if "mean_ms" not in r:
            rows.append((name, r["runs"], "", "", "", ""))
            continue
        avg = r.get("organisers_average_ms")
        rows.append((name, r["runs"], f"{r['mean_ms']:.2f}", f"{r['stdev_ms']:.2f}",
                     f"{r['spread_pct']:.1f}", f"{avg:.2f}" if avg is not None else "-"))
    return tabulate(rows, headers=("entry", "runs", "mean [ms]", "stdev [ms]",
                                   "spread [%]", "5-run avg [ms]"), tablefmt="simple")
