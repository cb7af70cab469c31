"""How much the timing harness adds over a bare loop of the same forward (CPU, ~1 ms model).

    python benchmarks/bench_timer.py [--rounds 25] [--calls 200] [--threads 1] [--size 90]

Three figures, each relative to the forward's own time (target: under 1 % each):

1. clock bias: calls alternate between a forward timed inline with ``perf_counter_ns`` and one
   timed through ``make_clock("cpu").time_ms``; mean of the clock's samples / mean of the inline
   ones - 1, median over rounds (alternating call by call cancels load drift);
2. fixed cost: the wall time one ``time_ms`` call adds around a no-op, divided by the forward's
   time (what the harness costs per image, whether or not it lands inside the sample);
3. measure(): the split runtime ``esrprof.run.measure`` reports over 20 synthetic images vs the
   best of three hand-written passes doing the same per-image work (prepare the input untimed,
   time the forward inline, copy the output back); median over interleaved rounds.

Why the malloc settings: on glibc the cost of a CPU forward of a small SR model flips between two
levels (here ~1.2 and ~2.1 ms for the same 84x127 image) depending on whether its large
intermediates come from the heap or from fresh, page-faulting mmaps, which follows the dynamic
mmap threshold, i.e. whatever ran before. That lottery is 40 times the effect measured here, so
this script re-executes itself with the thresholds pinned (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``); ``--no-pin-malloc`` shows the raw behaviour.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

from esrprof.run import RunConfig, measure, open_images, to_input
from esrprof.timing import make_clock, pinned_threads

PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


class Small(nn.Module):
    """A x2 SR-shaped net of about 1 ms per 90x90 forward on one CPU core."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 12, 3, padding=1),
        )
        self.up = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))


def clock_bias_round(fn, calls: int) -> tuple[float, float]:
    """(mean inline-timed ms, mean clock-timed ms), alternating call by call."""
    clock = make_clock("cpu")
    inline, clocked = [], []
    for i in range(2 * calls):
        if i % 2 == 0:
            start = time.perf_counter_ns()
            fn()
            inline.append((time.perf_counter_ns() - start) / 1e6)
        else:
            clocked.append(clock.time_ms(fn))
    return statistics.fmean(inline), statistics.fmean(clocked)


def fixed_cost_ms(calls: int = 20000) -> float:
    """Wall ms one ``time_ms`` call adds around a no-op, net of the bare no-op call."""
    clock = make_clock("cpu")

    def noop() -> None:
        return None

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(calls):
            noop()
        bare = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        for _ in range(calls):
            clock.time_ms(noop)
        wrapped = time.perf_counter_ns() - start
        best = min(best, (wrapped - bare) / 1e6 / calls)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=90)
    ap.add_argument("--no-pin-malloc", action="store_true",
                    help="leave glibc's dynamic mmap threshold alone")
    args = ap.parse_args()
    if not args.no_pin_malloc and any(os.environ.get(k) != v for k, v in PINNED_MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **PINNED_MALLOC})

    model = Small().eval()
    x = torch.rand(1, 3, args.size, args.size)

    def forward() -> object:
        return model(x)

    cfg = RunConfig(device="cpu", synthetic="quick", max_images=20, splits=("valid",),
                    trials=3, warmup=1, scale=2, pixel_range=1, threads=args.threads)
    lrs = [r.load_lr() for r in open_images(cfg, torch.device("cpu"), 2).splits[0].images]

    def hand_pass() -> float:
        total = 0
        for lr in lrs:
            xi = to_input(lr, cfg, 1, torch.device("cpu"))
            start = time.perf_counter_ns()
            y = model(xi)
            total += time.perf_counter_ns() - start
            y = y.to("cpu")
            del xi, y
        return total / 1e6 / len(lrs)

    with torch.inference_mode(), pinned_threads(args.threads):
        for _ in range(50):
            forward()
        bias, forward_ms = [], []
        for _ in range(args.rounds):
            inline, clocked = clock_bias_round(forward, args.calls)
            bias.append(clocked / inline - 1)
            forward_ms.append(inline)
        per_call = statistics.median(forward_ms)
        fixed = fixed_cost_ms()

    measure_ratio, per_image = [], 0.0
    for _ in range(args.rounds):
        with torch.inference_mode(), pinned_threads(args.threads):
            b1 = min(hand_pass() for _ in range(3))
        per_image = measure(model, cfg).runtime_ms
        with torch.inference_mode(), pinned_threads(args.threads):
            b2 = min(hand_pass() for _ in range(3))
        measure_ratio.append(per_image / ((b1 + b2) / 2) - 1)

    figures = {
        "clock": statistics.median(bias),
        "fixed": fixed / per_call,
        "measure": statistics.median(measure_ratio),
    }
    malloc = "glibc thresholds pinned" if not args.no_pin_malloc else "glibc defaults"
    print(f"model: {sum(p.numel() for p in model.parameters())} params, {args.size}x{args.size} "
          f"input, {args.threads} thread(s), {malloc}: forward {per_call:.3f} ms")
    print(f"clock bias   (clock samples vs inline-timed, alternating): "
          f"{100 * figures['clock']:+.2f} %  [{args.rounds} rounds x {args.calls} pairs]")
    print(f"fixed cost   (one time_ms call around a no-op)           : "
          f"{100 * figures['fixed']:+.3f} %  [{1e3 * fixed:.2f} us per call]")
    print(f"measure()    (split runtime vs hand-written best-of-3)    : "
          f"{100 * figures['measure']:+.2f} %  [{len(lrs)} images, {per_image:.3f} ms/image]")
    worst = max(abs(v) for v in figures.values())
    print(f"harness overhead: {100 * worst:.2f} % (target < 1 %): "
          f"{'OK' if worst < 0.01 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
