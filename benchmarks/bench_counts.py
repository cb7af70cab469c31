"""How fast and how lean is esrprof's default count, against the peers, on the same model?

Three sections (``--only imdn|swin|startup`` runs one):

imdn     IMDN, timed interleaved round by round (so machine noise hits every method alike), the
         median of ``--repeats`` runs of:
           esrprof   esrprof.count(model, shape)             (meta tensors, the default)
           fvcore    FlopCountAnalysis(model, x).total()     (jit trace + real forward)
           thop      thop.profile(model, inputs=(x,))        (hooks + real forward)
           ntire     the challenge script's way: module hooks on a real forward
         and, each in a fresh subprocess, the peak resident-memory growth of one call above the
         process's baseline after imports and one small warm-up call (VmHWM reset through
         /proc/self/clear_refs).
swin     a Swin-style model (tests/patterns/swin_style.py: shifted-window masks built from the
         input size in every forward) counted at 128², 512² and 1024²: time, the 512²/128² ratio
         (target <= 1.5), RSS growth at 1024² (target < 100 MiB), beside torch's FlopCounterMode
         on a real forward at 128² and 256².
startup  what a user waits for: `python -c "import torch"` against the whole
         `esrprof profile reference_models/imdn.py:IMDN` command (target: at most 0.5 s more),
         and a first count in a fresh process against a later one.

    python benchmarks/bench_counts.py                 # all three
    python benchmarks/bench_counts.py --only imdn --sizes 256 --repeats 7
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
    if name == "flopcounter":
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return counter.get_total_flops() // 2
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


def swin_model() -> nn.Module:
    from tests.patterns.swin_style import SwinStyleSR

    torch.manual_seed(0)
    return SwinStyleSR(dim=48, stages=4, depth=6).eval()  # 24 blocks, 12 shifted: 12 masks


def memory_child(name: str, size: int, model_name: str = "imdn") -> None:
    """Runs in a subprocess: peak RSS growth of one call, after imports and a warm-up."""
    import logging

    logging.disable(logging.WARNING)
    from reference_models.imdn import IMDN

    model = swin_model() if model_name == "swin" else IMDN().eval()
    run_method(name, model, 16)  # lazy imports and one-time set-up are not per-count costs
    base = _rss_kib("VmRSS")
    with contextlib.suppress(OSError):  # reset VmHWM to the current RSS (Linux)
        Path("/proc/self/clear_refs").write_text("5")
    run_method(name, model, size)
    peak = _rss_kib("VmHWM")
    print(json.dumps({"base_mib": base / 1024, "peak_growth_mib": (peak - base) / 1024}))


def measure_memory(name: str, size: int, model_name: str = "imdn") -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", name, "--sizes", str(size),
         "--child-model", model_name],
        capture_output=True, text=True, cwd=ROOT, timeout=1800,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_imdn(sizes: list[int], repeats: int) -> None:
    from reference_models.imdn import IMDN

    model = IMDN().eval()
    print(f"IMDN, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {repeats} interleaved runs")
    for name in METHODS:  # warm-up: imports, jit/tracer caches, torch's lazy modules
        run_method(name, model, 16)
    for size in sizes:
        samples: dict[str, list[float]] = {m: [] for m in METHODS}
        results: dict[str, int] = {}
        for _ in range(repeats):
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
    print("\nratio: how many times longer the peer takes than esrprof's default count "
          "(every method's one-time warm-up excluded alike; see the startup section).")


def _median_time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def bench_swin(repeats: int) -> None:
    import esrprof

    model = swin_model()
    esrprof.count(model, (1, 3, 16, 16))  # warm-up
    print(f"\nSwin-style model (24 window-attention blocks, 12 masks built per forward), "
          f"median of {repeats}")
    print(f"{'size':<7}{'esrprof [ms]':>13}{'RSS growth [MiB]':>18}{'FlopCounterMode [ms]':>22}"
          f"{'ratio':>8}{'complete MACs [G]':>19}")
    sizes = (128, 256, 512, 1024)
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(repeats):  # interleaved: load from other processes hits every size alike
        for size in sizes:
            t0 = time.perf_counter()
            esrprof.count(model, (1, 3, size, size))
            samples[size].append(time.perf_counter() - t0)
    times = {size: statistics.median(v) for size, v in samples.items()}
    for size in sizes:
        shape = (1, 3, size, size)
        macs = esrprof.count(model, shape).complete.macs
        mem = measure_memory("esrprof", size, "swin")
        mem_text = f"{mem['peak_growth_mib']:.1f}" if "peak_growth_mib" in mem else "error"
        peer = ""
        ratio = ""
        if size <= 256:  # a real forward beyond that takes minutes on a laptop CPU
            t = _median_time(lambda size=size: run_method("flopcounter", model, size), 1)
            peer, ratio = f"{t * 1000:.0f}", f"{t / times[size]:.0f}x"
        print(f"{size:<7}{times[size] * 1000:>13.1f}{mem_text:>18}{peer:>22}{ratio:>8}"
              f"{macs / 1e9:>19.2f}")
    print(f"time 512²/128²: {times[512] / times[128]:.2f} (target <= 1.5); "
          f"1024²/128²: {times[1024] / times[128]:.2f}")


def _wall(cmd: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def bench_startup(repeats: int) -> None:
    import shutil

    esrprof_cmd = shutil.which("esrprof")
    cli = ([esrprof_cmd] if esrprof_cmd else [sys.executable, "-m", "esrprof"])
    torch_s = _wall([sys.executable, "-c", "import torch"], repeats)
    cli_s = _wall([*cli, "profile", "reference_models/imdn.py:IMDN"], repeats)
    first = subprocess.run(
        [sys.executable, "-c",
         "import time, esrprof; from reference_models.imdn import IMDN; m = IMDN()\n"
         "t = time.perf_counter(); esrprof.count(m, (1, 3, 256, 256)); a = time.perf_counter()\n"
         "esrprof.count(m, (1, 3, 256, 256)); b = time.perf_counter()\n"
         "print(f'{(a - t) * 1000:.0f} {(b - a) * 1000:.0f}')"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    print(f"\nStart-up, median of {repeats} fresh processes")
    print(f"python -c 'import torch'                          {torch_s:6.2f} s")
    print(f"esrprof profile reference_models/imdn.py:IMDN      {cli_s:6.2f} s "
          f"(+{cli_s - torch_s:.2f} s; target <= +0.5 s)")
    print(f"IMDN 256²: first count in a process {first[0]} ms, the next {first[1]} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=("imdn", "swin", "startup"), default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-model", default="imdn", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.sizes[0], args.child_model)
        return

    import logging

    logging.disable(logging.WARNING)  # fvcore's per-op warnings
    if args.only in (None, "imdn"):
        bench_imdn(args.sizes, args.repeats)
    if args.only in (None, "swin"):
        bench_swin(args.repeats)
    if args.only in (None, "startup"):
        bench_startup(args.repeats)


if __name__ == "__main__":
    main()
