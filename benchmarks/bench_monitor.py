"""What does `esrprof.Monitor` cost a training loop?

    python benchmarks/bench_monitor.py

Trains a small SR network (IMDN-style, 4 blocks of 32 channels, x4, L1 loss, Adam, batch 4 of
32x32 LR patches) on the CPU and reports:

* the cost of ``monitor.step()`` on a step where it does not measure, as a share of one
  training step (the issue asks for < 0.5 %), measured two ways: the call alone in a tight loop,
  and whole training steps with and without the monitor, interleaved;
* the cost of a step where it measures (probe forwards), to choose ``every``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from esrprof.latency.statistics import estimate_ratio
from esrprof.monitor import Monitor


class SmallSR(nn.Module):
    def __init__(self, nf: int = 32, blocks: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.body = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.05),
                          nn.Conv2d(nf, nf, 3, padding=1))
            for _ in range(blocks)
        ])
        self.tail = nn.Conv2d(nf, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        return self.up(self.tail(self.body(y) + y))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per arm")
    parser.add_argument("--every", type=int, default=1000)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = SmallSR()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr, hr = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 128, 128)
    monitor = Monitor(model, probe_shape=(1, 3, 32, 32), every=args.every)

    def train_step() -> None:
        loss = nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        train_step()

    # 1. the call alone (loop included): a non-measuring step is an increment and a modulo.
    # A monitor whose `every` is never reached keeps every call on that path.
    idle = Monitor(model, probe_shape=(1, 3, 32, 32), every=10**12, count=False)
    calls = 200_000
    started = time.perf_counter_ns()
    for _ in range(calls):
        idle.step()
    per_call_ns = (time.perf_counter_ns() - started) / calls

    # 2. whole training steps, with and without the monitor, interleaved
    plain, watched = [], []
    for i in range(args.steps):
        for arm in ((0, 1) if i % 2 else (1, 0)):  # alternate which arm goes first
            started = time.perf_counter_ns()
            train_step()
            if arm:
                idle.step()
                watched.append(time.perf_counter_ns() - started)
            else:
                plain.append(time.perf_counter_ns() - started)
    step_ns = statistics.median(plain)

    # 3. a measuring step
    started = time.perf_counter_ns()
    monitor.measure()
    measure_ms = (time.perf_counter_ns() - started) / 1e6

    print(f"training step (median of {args.steps}): {step_ns / 1e6:.2f} ms on "
          f"{torch.get_num_threads()} threads")
    print(f"monitor.step() on a non-measuring step: {per_call_ns:.0f} ns = "
          f"{100 * per_call_ns / step_ns:.4f} % of a training step (limit 0.5 %)")
    est = estimate_ratio(watched, plain)
    print(f"interleaved training steps, with / without monitor.step(): {est.slowdown:+.2%} "
          f"(95% CI {est.low - 1:+.2%} to {est.high - 1:+.2%}; machine noise, not the monitor)")
    print(f"a measuring step (1 warm-up + 5 probe forwards at 1x3x32x32, memory read): "
          f"{measure_ms:.1f} ms; every={args.every} costs "
          f"{100 * measure_ms * 1e6 / (args.every * step_ns):.3f} % of training on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
