"""A training-loop helper: count once, then every N steps time the model on a probe input.

    monitor = esrprof.Monitor(model, probe_shape=(1, 3, 64, 64), every=500, log="eff.jsonl")
    for batch in loader:
        ...
        optimizer.step()
        monitor.step()

Training is left exactly as it was (weights bit-identical with and without the monitor): each
measurement runs inside :func:`esrprof.state.preserved` (every module's train flag, grad mode,
CPU and CUDA RNG, cuDNN flags), under ``torch.inference_mode``, on a probe drawn from a private
generator. A step that does not measure costs one increment and one modulo.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from esrprof.errors import OutputError, UsageError
from esrprof.files import make_parent
from esrprof.jsonio import dumps
from esrprof.probe import check_shape

_FIELDS = (
    "step",
    "unix_time",
    "latency_ms",
    "latency_min_ms",
    "latency_max_ms",
    "repeats",
    "memory_mib",
    "params",
    "macs",
    "complete_macs",
)


@dataclass(frozen=True)
class MonitorRecord:
    step: int
    unix_time: float
    latency_ms: float  # median of the repeats
    latency_min_ms: float
    latency_max_ms: float
    repeats: int
    memory_mib: float | None  # CUDA: peak allocated during the probe; CPU: peak resident set
    params: int | None
    macs: int | None  # ntire2022 MACs (the challenge's "FLOPs") at the probe shape
    complete_macs: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Monitor:
    """Latency and memory of ``model`` on a probe input every ``every`` steps.

    ``log`` is a ``.jsonl`` or ``.csv`` file that records are appended to; ``tensorboard`` a
    log folder or a ``SummaryWriter`` (needs the tensorboard package). ``threads`` pins the
    intra-op threads while measuring (default: leave them as training set them).
    """

    def __init__(
        self,
        model: nn.Module,
        probe_shape: Sequence[int] = (1, 3, 64, 64),
        every: int = 100,
        log: str | os.PathLike[str] | None = None,
        *,
        repeats: int = 5,
        warmup: int = 1,
        threads: int | None = None,
        tensorboard: Any = None,
        count: bool = True,
        clock: Any = None,
        on_record: Callable[[MonitorRecord], None] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise UsageError(f"Monitor needs a torch.nn.Module, got {type(model).__name__}")
        # every argument is checked here, never on a measuring step hours into training
        _check_int("every", every, 1)
        _check_int("repeats", repeats, 1)
        _check_int("warmup", warmup, 0)
        if threads is not None:
            _check_int("threads", threads, 1)
        if log is not None and not isinstance(log, (str, os.PathLike)):
            raise UsageError(f"log={log!r}: must be a path")
        if not isinstance(count, bool):
            raise UsageError(f"count={count!r}: must be True or False")
        if on_record is not None and not callable(on_record):
            raise UsageError(f"on_record={on_record!r}: must be callable")
        if clock is not None and not callable(getattr(clock, "time_ms", None)):
            raise UsageError(f"clock={clock!r}: must have a time_ms(fn) method")
        _check_real(model)
        self.model = model
        self.probe_shape = check_shape(probe_shape)
        self.every = every
        self.repeats = repeats
        self.warmup = warmup
        self.threads = threads
        self.records: list[MonitorRecord] = []
        self._steps = 0
        self._log = _LogFile(Path(log)) if log is not None else None
        self._writer = _tensorboard_writer(tensorboard)
        self._clock = clock
        self._on_record = on_record
        self.counts: Any = None
        self.count_error: str | None = None
        if count:
            self._count()

    # The hot path: everything else happens only on measuring steps.
    def step(self, step: int | None = None) -> MonitorRecord | None:
        """Advance one training step (or jump to ``step``); measure when it is due."""
        if step is not None and step == self._steps:
            return None  # the same step again (gradient accumulation): measured already
        self._steps = self._steps + 1 if step is None else step
        if self._steps % self.every:
            return None
        return self.measure()

    @property
    def steps(self) -> int:
        return self._steps

    def measure(self) -> MonitorRecord:
        """Time the probe now, append the record to the log, and return it. Two monitors of
        one model (two threads) take turns: :func:`esrprof.state.preserved` holds the model
        for the whole measurement."""
        _check_real(self.model)
        times, memory_mib = self._time_probe()
        record = self._record(times, memory_mib)
        self.records.append(record)
        self._publish(record)
        return record

    def _time_probe(self) -> tuple[list[float], float | None]:
        """The latency samples and the peak memory of one measurement (the gate's own sampling:
        eval mode, inference mode, flags and RNG restored, threads as asked)."""
        import torch

        from esrprof.latency.sampling import sample_latency
        from esrprof.memory import SplitMemory
        from esrprof.probe import device_dtype

        # NVML sampling is off: a probe is too short for it.
        with SplitMemory(torch.device(device_dtype(self.model)[0]), use_nvml=False) as memory:
            times = sample_latency(self.model, self.probe_shape, samples=self.repeats,
                                   warmup=self.warmup, threads=self.threads, clock=self._clock,
                                   what="the probe forward")
        key = "max_allocated_mib" if memory.record.get("kind") == "cuda" else "peak_rss_mib"
        return times, memory.record.get(key)

    def _record(self, times: list[float], memory_mib: float | None) -> MonitorRecord:
        from statistics import median

        counts = self.counts
        return MonitorRecord(
            step=self._steps,
            unix_time=time.time(),
            latency_ms=float(median(times)),
            latency_min_ms=min(times),
            latency_max_ms=max(times),
            repeats=self.repeats,
            memory_mib=memory_mib,
            params=counts.params if counts is not None else None,
            macs=counts.ntire2022.macs if counts is not None else None,
            complete_macs=counts.complete.macs if counts is not None else None,
        )

    def _publish(self, record: MonitorRecord) -> None:
        if self._log is not None:
            self._log.append(record)
        if self._writer is not None:
            for key in ("latency_ms", "memory_mib"):
                value = getattr(record, key)
                if value is not None:
                    self._writer.add_scalar(f"esrprof/{key}", value, record.step)
        if self._on_record is not None:
            self._on_record(record)

    def close(self) -> None:
        if self._writer is not None and hasattr(self._writer, "flush"):
            self._writer.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self) -> None:
        # A model the counter cannot handle must not stop training: keep the reason instead.
        from esrprof.errors import EsrprofError

        try:
            from esrprof.api import count

            self.counts = count(self.model, self.probe_shape)
        except (EsrprofError, RuntimeError, NotImplementedError, TypeError) as exc:
            self.count_error = f"{exc.__class__.__name__}: {exc}"


def _check_int(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UsageError(f"{name}={value!r}: must be an integer of at least {least}")


def _check_real(model: nn.Module) -> None:
    """A model on the meta device has shapes but no values: nothing to time."""
    from itertools import chain

    meta = next((n for n, t in chain(model.named_parameters(), model.named_buffers())
                 if t.device.type == "meta"), None)
    if meta is not None:
        raise UsageError(f"the model is on the meta device ({meta}): it has no weights to "
                         "time; build it on a real device")


class _LogFile:
    """An append-only log. One open-append-close per record: a crash mid-training keeps every
    earlier line. ``open(..., "a")`` creates the file with the umask's mode, appends to a file
    the user already has, and writes through a symlink or a device node without replacing it."""

    def __init__(self, path: Path):
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise UsageError(f"log {path}: use a .jsonl or .csv file")
        if path.is_dir():
            raise OutputError(f"cannot write the log {path}: it is a folder")
        self.path = path
        self.csv = suffix == ".csv"
        make_parent(path, f"the log {path}")
        _check_existing_log(path, self.csv)

    def append(self, record: MonitorRecord) -> None:
        row = record.to_dict()
        try:
            with self.path.open("a", encoding="utf-8", newline="") as fh:
                if self.csv:
                    writer = csv.DictWriter(fh, fieldnames=_FIELDS)
                    if fh.tell() == 0:
                        writer.writeheader()
                    writer.writerow(row)
                else:
                    fh.write(dumps(row, indent=None) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot append to the log {self.path}: "
                              f"{exc.strerror or exc}") from None


def _check_existing_log(path: Path, is_csv: bool) -> None:
    """Appending is for esrprof's own logs: an existing non-empty regular file must start as a
    monitor log does (the CSV header, or a JSON line that reads as a valid record); a notes
    file of the user's is refused before training starts, never appended to."""
    from esrprof import validate
    from esrprof.errors import ResultFileError
    from esrprof.jsonio import loads, read_bytes

    try:
        if not path.exists() or not path.is_file() or path.stat().st_size == 0:
            return  # new, or a pipe or device written through
        first = read_bytes(path, 1 << 16, head=True).split(b"\n", 1)[0].decode("utf-8")
        if is_csv:
            if first.strip() != ",".join(_FIELDS):
                raise ResultFileError(f"{path}: line 1 is not the header of an esrprof log")
        else:
            validate.record(MonitorRecord, loads(first, f"{path}: line 1"), "line 1",
                            str(path), domains={"latency_ms": "positive"})
    except (ResultFileError, UnicodeDecodeError, OSError) as exc:
        reason = str(exc).removeprefix(f"{path}: ")  # one path per message
        raise OutputError(f"the log {path} exists and is not an esrprof monitor log ({reason}); "
                          "nothing was changed: choose another log file") from None


def _tensorboard_writer(target: Any) -> Any:
    if target is None:
        return None
    if hasattr(target, "add_scalar"):
        return target
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "tensorboard logging needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(target))
