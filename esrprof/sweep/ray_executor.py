"""Ray: the same tasks as Ray tasks on a cluster, one GPU each where the cluster has GPUs.

Each Ray task still runs its entry in a fresh child process (:func:`run_child`) on its node, in a
scratch folder there, and hands back the record's text and the log; the driver writes both into
DIR, as for local workers. A task whose node or worker was lost goes back to pending and is
submitted once more; a second loss leaves it pending for the next sweep. Ray is an optional
extra: ``pip install esrprof[ray]``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esrprof.errors import UsageError
from esrprof.sweep.child import Outcome, run_child
from esrprof.sweep.state import PENDING

_LOSSES_ALLOWED = 1  # resubmissions after a lost node, per task and sweep


def run_on_node(task: dict[str, Any], timeout_s: float | None,
                memory_bytes: int | None) -> dict[str, Any]:
    """The body of one Ray task: the child in a scratch folder; its record and log as text."""
    import os

    node = "ray"
    try:
        import ray

        node = f"ray:{ray.get_runtime_context().get_node_id()[:8]}"
    except Exception:  # outside Ray (a test calling it directly)
        pass
    with tempfile.TemporaryDirectory(prefix="esrprof-sweep-") as scratch:
        root = Path(scratch)
        out = root / Path(task["out"]).name
        task = {**task, "out": str(out)}
        log = root / "entry.log"
        outcome = run_child(task, root, log, timeout_s=timeout_s, memory_bytes=memory_bytes,
                            env=dict(os.environ))
        record = out.read_text(encoding="utf-8") if outcome.status == "done" else None
        return {"status": outcome.status, "why": outcome.why, "seconds": outcome.seconds,
                "returncode": outcome.returncode, "record": record,
                "log": log.read_text(encoding="utf-8", errors="replace"), "worker": node}


def connect(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'esrprof[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=None if address in (None, "", "auto-local") else address,
                     log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # no cluster at that address, a version mismatch
            raise UsageError(f"--ray {address}: cannot connect: {exc}") from None
    return ray


def run_ray(tasks: list[Any], writer: Any, options: Any,
            progress: Callable[..., None] | None, stop: threading.Event) -> None:
    ray = connect(None if options.ray == "auto" else options.ray)
    gpus = ray.cluster_resources().get("GPU", 0)
    remote = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                        max_retries=0)(run_on_node)
    cap = None if options.memory_gib in (None, 0) else int(options.memory_gib * (1 << 30))
    pending: dict[Any, Any] = {}
    losses: dict[tuple[str, int], int] = {}

    def submit(task: Any) -> None:
        payload = writer.new_task(task, writer.work_path(task))
        pending[remote.remote(payload, options.timeout_s, cap)] = task
        writer.started(task, "ray (queued)")

    for task in tasks:
        submit(task)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    reply = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the node or its worker was lost
                    key = (task.name, task.k)
                    losses[key] = losses.get(key, 0) + 1
                    why = f"lost its Ray worker: {type(exc).__name__}"
                    writer.finished_task(task, Outcome(PENDING, why, 0.0, None), None, "ray")
                    if losses[key] <= _LOSSES_ALLOWED:
                        submit(task)
                    continue
                _write_back(writer, task, reply)
            if progress is not None:
                progress(writer.state, writer.finished, len(tasks))
            if stop.is_set():
                raise KeyboardInterrupt
    except BaseException:
        for ref, task in list(pending.items()):
            ray.cancel(ref, force=True)
            writer.finished_task(task, Outcome(PENDING, "stopped with the sweep", 0.0, None),
                                 None, "ray")
        raise


def _write_back(writer: Any, task: Any, reply: dict[str, Any]) -> None:
    log = writer.log_path(task)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(reply["log"])
    outcome = Outcome(reply["status"], reply["why"], reply["seconds"], reply["returncode"])
    record = None
    if reply["record"] is not None:
        record = writer.work_path(task)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(reply["record"], encoding="utf-8")
    writer.finished_task(task, outcome, record, reply["worker"])

