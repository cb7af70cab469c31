"""``esrprof sweep``: many submissions, each measured in its own fresh process.

entries.py (what to run), state.py (DIR/sweep.json), worker.py (the child), child.py (one child:
start, cap, time out, outcome), run.py (plan and write back), local.py and ray_executor.py (where
children run), progress.py (bar and tables).
"""

from esrprof.sweep.entries import Entry, read_entries
from esrprof.sweep.run import Summary, SweepOptions, run_sweep
from esrprof.sweep.state import SweepState

__all__ = ["Entry", "Summary", "SweepOptions", "SweepState", "read_entries", "run_sweep"]
