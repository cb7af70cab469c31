"""Model code written for the organisers' GPU, run where there is none.

Team model files often move tensors to CUDA themselves: ``self.cuda()`` and a warm-up forward in
``__init__``, ``self.mean.cuda()`` or ``x.to("cuda")`` in ``forward``, ``torch.zeros(...,
device="cuda")``. Counting and prediction do not depend on where the tensors live, so while
:func:`stay_on_device` is active those requests leave each tensor where it is (a factory asked
for CUDA makes its tensor on the CPU), and :attr:`StayOnDevice.moves` counts them so the caller
can say so. Nothing else changes: ``torch.cuda.is_available()`` still says False, and a model
that calls ``torch.cuda.synchronize()`` still fails, with its own message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


def _is_cuda(device: Any) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.split(":", 1)[0].strip() == "cuda"
    return False


class StayOnDevice(TorchFunctionMode):
    """A torch-function mode that turns every move to CUDA into a no-op (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.moves = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.cuda:
            self.moves += 1
            return args[0]
        if func is torch.Tensor.to:
            rest = list(args[1:])
            moved = bool(rest) and _is_cuda(rest[0])
            if moved:
                rest.pop(0)
            if _is_cuda(kwargs.get("device")):
                moved = True
                del kwargs["device"]
            if moved:
                self.moves += 1
                if not rest and not {k for k in kwargs if k not in ("non_blocking", "copy")}:
                    return args[0]
                return func(args[0], *rest, **kwargs)
        elif _is_cuda(kwargs.get("device")):  # a factory: torch.zeros(..., device="cuda")
            self.moves += 1
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextmanager
def stay_on_device(active: bool = True) -> Iterator[StayOnDevice | None]:
    """Leave tensors where they are while active (a no-op context when not)."""
    if not active:
        yield None
        return
    with StayOnDevice() as mode:
        yield mode


def moves_note(moves: int, when: str) -> str:
    """The one line a caller prints when :func:`stay_on_device` intercepted ``moves``."""
    s = "" if moves == 1 else "s"
    return (f"the model asked for CUDA {moves} time{s} {when}; there is no CUDA here, so "
            "its tensors stayed on the CPU (counts and predictions do not depend on the device)")


__all__ = ["StayOnDevice", "moves_note", "stay_on_device"]
