"""The environment record every result carries, so runs from different machines are never
compared unknowingly (the report and the gate read ``hardware``).

Works without a GPU and without NVML: fields that cannot be read are None.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esrprof._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import torch


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, sysctl-free fallbacks elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                name = line.split(":", 1)[1].strip()
                if name:
                    return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cuda_block(device: torch.device) -> dict[str, Any]:
    import torch

    from esrprof.memory import nvml, nvml_handle, read_gpu_state

    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    out: dict[str, Any] = {
        "gpu_name": props.name,
        "gpu_index": index,
        "gpu_memory_mib": props.total_memory / 1024**2,
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_count": torch.cuda.device_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "driver": None,
        "clocks_at_start": None,
    }
    with nvml() as pynvml:
        if pynvml is not None:
            try:
                driver = pynvml.nvmlSystemGetDriverVersion()
                out["driver"] = driver.decode() if isinstance(driver, bytes) else driver
                handle = nvml_handle(pynvml, device)
                persistence = pynvml.nvmlDeviceGetPersistenceMode(handle)
                out["persistence_mode"] = bool(persistence)
            except Exception:
                pass
    out["clocks_at_start"] = read_gpu_state(device)
    out["nvml"] = out["clocks_at_start"] is not None
    return out


def collect(device: str | torch.device = "cpu", dtype: str = "fp32", **extras: Any) -> dict:
    """Versions, hardware and settings. ``hardware`` is one stable string per machine kind:
    the GPU's name on CUDA, the CPU model and thread count otherwise. ``extras`` (tiling,
    channels_last, compile, ...) are added as given."""
    import torch  # here: same_hardware, which reports use, needs no torch

    dev = torch.device(device)
    threads = torch.get_num_threads()
    cudnn_version = None
    with contextlib.suppress(Exception):
        cudnn_version = torch.backends.cudnn.version()
    env: dict[str, Any] = {
        "hardware": "",
        "device": str(dev),
        "dtype": dtype,
        "esrprof": __version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn_version,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        env.update(_cuda_block(dev))
        env["hardware"] = env["gpu_name"]
    else:
        env["gpu_name"] = None
        env["driver"] = None
        env["hardware"] = f"{env['cpu_model']} ({threads_text(threads)})"
    env.update(extras)
    return env


def threads_text(n: Any) -> str:
    """``1 thread``, ``2 threads``: how every door says it."""
    return f"{n} thread" if n == 1 else f"{n} threads"


def _machine(hardware: Any) -> str:
    # records written before the plural was fixed say "(1 threads)": the same machine
    return str(hardware).replace("(1 threads)", "(1 thread)")


def same_hardware(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two environment records come from the same kind of machine (the one comparison
    the report and the gate make; an unknown machine equals none)."""
    return bool(a.get("hardware")) and _machine(a.get("hardware")) == _machine(b.get("hardware"))
