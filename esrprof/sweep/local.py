"""Local workers: one thread per slot (a GPU, or a CPU worker), each running one entry at a time
in a fresh child process (:func:`esrprof.sweep.child.run_child`)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from esrprof.errors import UsageError
from esrprof.sweep.child import kill_group, run_child

_GIB = 1 << 30


def local_gpus() -> list[str]:
    """The GPUs this machine lends the sweep (as CUDA_VISIBLE_DEVICES names them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no usable CUDA: CPU workers
        return []


def slots(workers: int | None, gpus: list[str]) -> list[str | None]:
    """One slot per worker: a GPU each (round robin), or None (CPU) on a machine without one."""
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if not gpus:
        return [None] * (workers or 1)
    return [gpus[i % len(gpus)] for i in range(workers or len(gpus))]


def memory_cap(memory_gib: float | None, n_cpu_workers: int, gpu: bool) -> int | None:
    """The address-space cap of one child, in bytes. Given: that. Default: none on a GPU (CUDA
    reserves far more address space than memory), on a CPU 80 % of RAM shared by the workers,
    never under 4 GiB."""
    if memory_gib is not None:
        return int(memory_gib * _GIB) if memory_gib > 0 else None
    if gpu:
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return max(4 * _GIB, int(0.8 * total / max(1, n_cpu_workers)))


def run_local(tasks: list[Any], writer: Any, options: Any,
              progress: Callable[..., None] | None, stop: threading.Event) -> None:
    queue = deque(tasks)
    lock = threading.Lock()
    live: dict[int, Any] = {}
    plan = slots(options.workers, local_gpus())

    def work(index: int, gpu: str | None) -> None:
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU worker never touches a GPU
        label = f"local:{index}" + (f":cuda{gpu}" if gpu is not None else "")
        cap = memory_cap(options.memory_gib, len(plan), gpu is not None)
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                task = queue.popleft()
            writer.started(task, label)
            try:
                outcome = run_child(writer.new_task(task, writer.work_path(task)),
                                    writer.folder / ".work", writer.log_path(task),
                                    timeout_s=options.timeout_s, memory_bytes=cap, env=env,
                                    stop=stop, live=live)
            except OSError as exc:  # the child could not even start
                writer.failed_task(task, f"cannot start the worker process: {exc}", label)
                continue
            writer.finished_task(task, outcome, writer.work_path(task), label)

    threads = [threading.Thread(target=work, args=(i, g), name=f"esrprof-sweep-{i}",
                                daemon=True) for i, g in enumerate(plan)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            if progress is not None:
                progress(writer.state, writer.finished, len(tasks))
            time.sleep(0.2)
        if progress is not None:
            progress(writer.state, writer.finished, len(tasks))
    except BaseException:
        stop.set()  # each worker kills its child and puts its entry back to pending
        for t in threads:
            t.join(timeout=10)
        for proc in list(live.values()):
            kill_group(proc)
        raise
