"""How fast and how lean is esrprof's default count, against the peers, on the same model?

Times, interleaved round by round (so machine noise hits every method alike), the median of
``--repeats`` runs of:
  esrprof   esrprof.count(model, shape)                 (meta tensors, the default)
  fvcore    FlopCountAnalysis(model, x).total()         (jit trace + real forward)
  thop      thop.profile(model, inputs=(x,))            (hooks + real forward)
  ntire     the challenge script's way: module hooks on a real forward
and, each in a fresh subprocess, the peak resident-memory growth of one call above the process's
baseline after imports and one small warm-up call (VmHWM reset through /proc/self/clear_refs).

    python benchmarks/bench_counts.py                 # IMDN at 256x256 and 1024x1024
    python benchmarks/bench_counts.py --sizes 256 --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("esrprof", "fvcore", "thop", "ntire")


def ntire_hook_count(model: nn.Module, x: torch.Tensor) -> int:
    """The challenge script's method: forward hooks on module instances, real tensors."""
    total = 0

    def conv(m, inp, out):
        nonlocal total
        total += out.shape[0] * out.shape[2] * out.shape[3] * m.weight.numel()

    def elems(m, inp, out):
        nonlocal total
        total += out.numel()

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)):
            handles.append(m.register_forward_hook(elems))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def run_method(name: str, model: nn.Module, size: int) -> int:
    shape = (1, 3, size, size)
    if name == "esrprof":
        import esrprof

        return esrprof.count(model, shape).ntire2022.macs
    x = torch.rand(shape)
    if name == "fvcore":
        from fvcore.nn import FlopCountAnalysis

        a = FlopCountAnalysis(model, x)
        a.unsupported_ops_warnings(False)
        a.uncalled_modules_warnings(False)
        return int(a.total())
    if name == "thop":
        import thop

        return int(thop.profile(model, inputs=(x,), verbose=False)[0])
    return ntire_hook_count(model, x)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(name: str, size: int) -> None:
    """Runs in a subprocess: peak RSS growth of one call, after imports and a warm-up."""
    import logging

    logging.disable(logging.WARNING)
    from reference_models.imdn import IMDN

    model = IMDN().eval()
    run_method(name, model, 16)  # lazy imports and one-time set-up are not per-count costs
    base = _rss_kib("VmRSS")
    with contextlib.suppress(OSError):  # reset VmHWM to the current RSS (Linux)
        Path("/proc/self/clear_refs").write_text("5")
    run_method(name, model, size)
    peak = _rss_kib("VmHWM")
    print(json.dumps({"base_mib": base / 1024, "peak_growth_mib": (peak - base) / 1024}))


def measure_memory(name: str, size: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", name, "--sizes", str(size)],
        capture_output=True, text=True, cwd=ROOT, timeout=1800,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.sizes[0])
        return

    import logging

    logging.disable(logging.WARNING)  # fvcore's per-op warnings
    from reference_models.imdn import IMDN

    model = IMDN().eval()
    print(f"IMDN, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} interleaved runs")
    for name in METHODS:  # warm-up: imports, jit/tracer caches, torch's lazy modules
        run_method(name, model, 16)
    for size in args.sizes:
        samples: dict[str, list[float]] = {m: [] for m in METHODS}
        results: dict[str, int] = {}
        for _ in range(args.repeats):
            for name in METHODS:
                t0 = time.perf_counter()
                results[name] = run_method(name, model, size)
                samples[name].append(time.perf_counter() - t0)
        med = {m: statistics.median(s) for m, s in samples.items()}
        print(f"\n1x3x{size}x{size}")
        print(f"{'method':<9}{'median [ms]':>13}{'ratio peer/esrprof':>20}{'MACs [G]':>11}"
              f"{'peak mem growth [MiB]':>24}")
        for name in METHODS:
            mem = measure_memory(name, size)
            mem_text = (f"{mem['peak_growth_mib']:.1f}" if "peak_growth_mib" in mem
                        else str(mem.get("error")))
            print(f"{name:<9}{med[name] * 1000:>13.1f}{med[name] / med['esrprof']:>19.0f}x"
                  f"{results[name] / 1e9:>11.2f}{mem_text:>24}")
    print("\nratio: how many times longer the peer takes than esrprof's default count. "
          "esrprof's one-time start-up (torch's lazy import of its Python meta kernels, about "
          "1 s and 70 MiB once per process) is excluded like every method's warm-up.")


if __name__ == "__main__":
    main()
