"""Peak memory during a split: torch.cuda peaks, an NVML sampler, and a CPU fallback.

* CUDA: the peak is reset at the start of each split (the challenge's script never reset it, so
  its test-split figure carried the valid split's peak) and ``max_memory_allocated`` /
  ``max_memory_reserved`` are read at the end. The activation peak is ``max_memory_allocated``
  minus ``memory_allocated`` before the pass (weights and whatever else was already resident).
* NVML (nvidia-ml-py): a background thread polls the device's used memory and, where the
  driver shows it, this process's. NVML's per-process figure includes the CUDA context
  (300-500 MB) and inside containers lists host PIDs, so matching our PID can fail; then only the
  device-wide figures are reported, labelled as such.
* CPU: the peak resident-set growth during the split. On Linux the kernel's high-water mark is
  reset by writing ``5`` to ``/proc/self/clear_refs`` (exact, no polling); elsewhere a thread
  samples the RSS. It is labelled as what it is: not comparable with the GPU figure.

Nothing here raises for a missing GPU or NVML: the record says what was not available.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch

from esrprof.extras import MissingExtraError, require

MIB = 1024.0**2

# NVML clocks-throttle-reason bits (nvml.h, stable since driver 3xx).
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the clocks were pulled down under load (idle and user settings are not).
THROTTLING = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def decode_throttle(mask: int) -> tuple[list[str], bool]:
    """Reason names set in an NVML throttle mask, and whether any of them is real throttling."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names, bool(mask & THROTTLING)


# ---------------------------------------------------------------------------------- NVML


@contextmanager
def nvml() -> Iterator[Any]:
    """The initialised ``pynvml`` module, or None when it or the driver is missing."""
    try:
        pynvml = require("pynvml")
    except MissingExtraError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no NVML here
        yield None
        return
    try:
        yield pynvml
    finally:
        with suppress(Exception):
            pynvml.nvmlShutdown()


def nvml_handle(pynvml: Any, device: torch.device) -> Any:
    """NVML handle of a torch CUDA device, by UUID (robust to CUDA_VISIBLE_DEVICES), falling
    back to the index."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:
        return pynvml.nvmlDeviceGetHandleByIndex(index)


def _safe(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def gpu_state(pynvml: Any, handle: Any) -> dict[str, Any]:
    """Clocks, temperature, power and throttle reasons right now; a field is None when the
    driver refuses it."""
    clock = pynvml.NVML_CLOCK_SM
    # Renamed "event reasons" in newer NVML; the old name stays as an alias in most bindings.
    reasons_fn = (getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                  or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    mask = _safe(reasons_fn, handle)
    reasons, throttled = decode_throttle(mask) if mask is not None else (None, None)
    power = _safe(pynvml.nvmlDeviceGetPowerUsage, handle)
    return {
        "sm_clock_mhz": _safe(pynvml.nvmlDeviceGetClockInfo, handle, clock),
        "mem_clock_mhz": _safe(pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_MEM),
        "max_sm_clock_mhz": _safe(pynvml.nvmlDeviceGetMaxClockInfo, handle, clock),
        "temperature_c": _safe(pynvml.nvmlDeviceGetTemperature, handle,
                               pynvml.NVML_TEMPERATURE_GPU),
        "power_w": None if power is None else power / 1000.0,
        "throttle_reasons": reasons,
        "throttled": throttled,
    }


def read_gpu_state(device: torch.device) -> dict[str, Any] | None:
    """One snapshot of :func:`gpu_state` for a torch device, or None without NVML."""
    with nvml() as pynvml:
        if pynvml is None:
            return None
        try:
            return gpu_state(pynvml, nvml_handle(pynvml, device))
        except Exception:
            return None


class NvmlSampler:
    """Background thread polling the device's (and this process's) used memory."""

    def __init__(self, device: torch.device, interval_s: float = 0.01) -> None:
        self.device = device
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self.note: str | None = None
        self.baseline = 0
        self.device_peak = 0
        self.process_peak: int | None = None
        self.samples = 0

    def _read(self) -> None:
        info = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        self.device_peak = max(self.device_peak, int(info.used))
        pid = os.getpid()
        try:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
        except Exception:
            procs = []
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            if p.pid == pid and used is not None:
                self.process_peak = max(self.process_peak or 0, int(used))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._read()
            except Exception:
                return

    def start(self) -> NvmlSampler:
        try:
            pynvml = require("pynvml")
        except MissingExtraError as exc:
            self.note = f"{exc}; no NVML figures"
            return self
        try:
            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = nvml_handle(pynvml, self.device)
            self.baseline = int(pynvml.nvmlDeviceGetMemoryInfo(self._handle).used)
            self._read()
        except Exception as exc:
            self.note = f"NVML unavailable ({type(exc).__name__}): no NVML figures"
            self._shutdown()
            return self
        self._thread = threading.Thread(target=self._loop, name="esrprof-nvml", daemon=True)
        self._thread.start()
        return self

    def _shutdown(self) -> None:
        if self._nvml is not None:
            with suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None

    def stop(self) -> dict[str, Any]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            with suppress(Exception):
                self._read()
        self._shutdown()
        if self._thread is None:
            return {"available": False, "note": self.note}
        process = self.process_peak
        return {
            "available": True,
            "device_peak_mib": self.device_peak / MIB,
            "device_growth_mib": (self.device_peak - self.baseline) / MIB,
            "process_peak_mib": None if process is None else process / MIB,
            "scope": "process" if process is not None else "device-wide",
            "samples": self.samples,
            "note": (
                "NVML process memory includes the CUDA context"
                if process is not None
                else "this PID not visible to NVML (containers list host PIDs): device-wide "
                "figures only, which include other processes"
            ),
        }


# ---------------------------------------------------------------------------------- CUDA


class CudaPeak:
    """Reset the peak on entry, read the peaks on exit (both synchronised)."""

    def __init__(self, device: torch.device, reset: bool = True) -> None:
        self.device = device
        self.reset = reset  # False: the peak carries over from before (the 2024-2026 script)
        self.before = 0
        self.record: dict[str, Any] = {}

    def __enter__(self) -> CudaPeak:
        torch.cuda.synchronize(self.device)
        if self.reset:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.before = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device)
        self.record = {
            "max_allocated_mib": peak / MIB,
            "max_reserved_mib": torch.cuda.max_memory_reserved(self.device) / MIB,
            "allocated_before_mib": self.before / MIB,
            "activation_peak_mib": (peak - self.before) / MIB,
            "peak_reset": self.reset,
        }


# ----------------------------------------------------------------------------------- CPU

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


class RssPeak:
    """Peak resident-set growth over the block, on the CPU.

    Methods, best first: ``vmhwm`` (reset the kernel's high-water mark, read it after),
    ``sampled`` (a thread polling RSS every ``interval_s``: short peaks can be missed), or
    ``unavailable``.
    """

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.method = "unavailable"
        self.before: int | None = None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.record: dict[str, Any] = {}

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None:
                self.peak = max(self.peak or 0, rss)

    def __enter__(self) -> RssPeak:
        self.before = current_rss_bytes()
        if self.before is None:
            return self
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
            self.method = "vmhwm"
            return self
        except OSError:
            pass
        self.method = "sampled"
        self.peak = self.before
        self._thread = threading.Thread(target=self._poll, name="esrprof-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "vmhwm":
            hwm = _status_kib("VmHWM")
            self.peak = None if hwm is None else hwm * 1024
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            rss = current_rss_bytes()
            if rss is not None:
                self.peak = max(self.peak or 0, rss)
        if self.before is None or self.peak is None:
            self.record = {"method": "unavailable", "peak_rss_growth_mib": None,
                           "note": "resident memory is not readable on this platform"}
            return
        self.record = {
            "method": self.method,
            "rss_before_mib": self.before / MIB,
            "peak_rss_mib": self.peak / MIB,
            "peak_rss_growth_mib": max(0, self.peak - self.before) / MIB,
        }


class SplitMemory:
    """What one split's memory record holds on this device: CUDA peaks plus the NVML sampler on
    a GPU, the RSS growth on a CPU."""

    def __init__(self, device: torch.device, *, use_nvml: bool = True,
                 reset: bool = True) -> None:
        self.device = device
        self.use_nvml = use_nvml
        self.reset = reset  # the CUDA peak (a CPU's RSS growth is per split either way)
        self._cuda: CudaPeak | None = None
        self._nvml: NvmlSampler | None = None
        self._rss: RssPeak | None = None
        self.record: dict[str, Any] = {}

    def __enter__(self) -> SplitMemory:
        if self.device.type == "cuda":
            if self.use_nvml:
                self._nvml = NvmlSampler(self.device).start()
            self._cuda = CudaPeak(self.device, self.reset).__enter__()
        else:
            self._rss = RssPeak().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda is not None:
            self._cuda.__exit__(*exc)
            nvml_record = (self._nvml.stop() if self._nvml is not None
                           else {"available": False, "note": "NVML sampling off"})
            self.record = {"kind": "cuda", **self._cuda.record, "nvml": nvml_record}
        elif self._rss is not None:
            self._rss.__exit__(*exc)
            self.record = {"kind": "cpu", **self._rss.record}
