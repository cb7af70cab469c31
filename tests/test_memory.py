"""Memory records on the CPU, and the NVML paths driven by a fake pynvml (no GPU needed)."""

from __future__ import annotations

import os
import sys
import time
import types

import pytest
import torch

from esrprof import memory
from esrprof.memory import (
    NvmlSampler,
    RssPeak,
    SplitMemory,
    decode_throttle,
    gpu_state,
    read_gpu_state,
)

linux_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")


def test_decode_throttle_names_and_flags_real_throttling():
    assert decode_throttle(0) == ([], False)
    assert decode_throttle(0x1) == (["gpu_idle"], False)
    names, throttled = decode_throttle(0x4 | 0x40)
    assert names == ["sw_power_cap", "hw_thermal_slowdown"] and throttled
    names, throttled = decode_throttle(0x1000)
    assert names == ["unknown_0x1000"] and not throttled


@linux_proc
def test_rss_peak_sees_a_transient_allocation():
    with RssPeak() as peak:
        big = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, pages touched
        del big
    rec = peak.record
    assert rec["method"] in ("vmhwm", "sampled")
    if rec["method"] == "vmhwm":  # exact: the freed 64 MiB still shows in the peak
        assert rec["peak_rss_growth_mib"] >= 60


@linux_proc
def test_rss_peak_falls_back_to_sampling(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    with RssPeak(interval_s=0.001) as peak:
        big = torch.ones(64 * 1024 * 1024 // 4)
        time.sleep(0.05)  # let the sampler see it
        del big
    assert peak.record["method"] == "sampled"
    assert peak.record["peak_rss_growth_mib"] >= 50


def test_rss_peak_unavailable_does_not_crash(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "no_status")
    with RssPeak() as peak:
        pass
    assert peak.record["method"] == "unavailable"
    assert peak.record["peak_rss_growth_mib"] is None


def test_split_memory_on_cpu_is_labelled_cpu():
    with SplitMemory(torch.device("cpu")) as m:
        pass
    assert m.record["kind"] == "cpu"
    assert "peak_rss_growth_mib" in m.record


def test_without_a_gpu_nvml_reports_unavailable():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert read_gpu_state(torch.device("cuda:0")) is None
    rec = NvmlSampler(torch.device("cuda:0")).start().stop()
    assert rec["available"] is False and rec["note"]


def _fake_pynvml(pids, used_bytes=2 * 1024**3, proc_bytes=700 * 1024**2, mask=0x4):
    m = types.ModuleType("pynvml")
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0
    state = {"used": used_bytes}
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetHandleByUUID = lambda uuid: "h"
    m.nvmlDeviceGetHandleByIndex = lambda i: "h"

    def mem_info(handle):
        state["used"] += 100 * 1024**2
        return types.SimpleNamespace(used=state["used"])

    m.nvmlDeviceGetMemoryInfo = mem_info
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=p, usedGpuMemory=proc_bytes) for p in pids
    ]
    m.nvmlDeviceGetClockInfo = lambda h, kind: 1980 if kind == 1 else 2619
    m.nvmlDeviceGetMaxClockInfo = lambda h, kind: 1980
    m.nvmlDeviceGetTemperature = lambda h, kind: 61
    m.nvmlDeviceGetPowerUsage = lambda h: 250_000

    def throttle(h):
        return mask

    m.nvmlDeviceGetCurrentClocksThrottleReasons = throttle
    return m


def test_gpu_state_from_nvml_fields():
    fake = _fake_pynvml([])
    s = gpu_state(fake, "h")
    assert s["sm_clock_mhz"] == 1980 and s["mem_clock_mhz"] == 2619
    assert s["temperature_c"] == 61 and s["power_w"] == 250.0
    assert s["throttle_reasons"] == ["sw_power_cap"] and s["throttled"] is True


def test_gpu_state_tolerates_refused_fields():
    fake = _fake_pynvml([])

    def refuse(*a):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake.nvmlDeviceGetPowerUsage = refuse
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = refuse
    s = gpu_state(fake, "h")
    assert s["power_w"] is None and s["throttled"] is None


def test_nvml_sampler_matches_our_pid(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([os.getpid()]))
    sampler = NvmlSampler(torch.device("cuda:0"), interval_s=0.001).start()
    time.sleep(0.02)
    rec = sampler.stop()
    assert rec["available"] and rec["scope"] == "process"
    assert rec["process_peak_mib"] == pytest.approx(700)
    assert rec["device_growth_mib"] > 0
    assert rec["device_peak_mib"] >= 2048 + 100


def test_nvml_sampler_falls_back_to_device_wide_when_pid_is_hidden(monkeypatch):
    # Inside containers NVML lists host PIDs: ours is not found.
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([123456789]))
    rec = NvmlSampler(torch.device("cuda:0"), interval_s=0.001).start().stop()
    assert rec["scope"] == "device-wide" and rec["process_peak_mib"] is None
    assert "device-wide" in rec["note"]
    assert rec["device_growth_mib"] >= 100  # the fake device grew 100 MiB per reading
