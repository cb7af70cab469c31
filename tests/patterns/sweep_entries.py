"""A tiny x2 model whose constructor misbehaves on request, as a sweep's submissions may:
tests copy this file next to their ENTRIES and name a ``mode`` in each entry's kwargs."""

import os
import sys
import time

import torch
from torch import nn

_LEAKED: list = []


class Tiny(nn.Module):
    def __init__(self, c: int = 4, mode: str = "ok", wait: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(c, 12, 3, padding=1))
        self.up = nn.PixelShuffle(2)
        if wait:
            time.sleep(wait)
        if mode == "slow":  # as slow as the test says, without changing the entry's key
            time.sleep(float(os.environ.get("ESRPROF_TEST_SLOW", "0")))
        if mode == "crash":
            raise RuntimeError("boom in the constructor")
        if mode == "hang":
            time.sleep(3600)
        if mode == "exit0":
            os._exit(0)
        if mode == "sysexit":
            sys.exit(0)
        if mode == "hog":
            self.hog = bytearray(16 << 30)  # far above the test's memory cap
        if mode == "gpuleak":  # 2 GiB left on the GPU for as long as the process lives
            _LEAKED.append(torch.empty(1 << 29, device="cuda"))
        if mode == "globals":  # what a careless submission leaves behind in a shared process
            torch.set_default_dtype(torch.float64)
            torch.set_num_threads(1)
            torch.manual_seed(1234)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))
