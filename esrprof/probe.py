"""The model probe: where a model lives, what it computes in, and the fixed input every door uses.

Counting, runs, the gate, the monitor, the peers' cross-checks and the pytest plugin all ask the
same questions of a model (which device, which dtype, is this shape valid, give me an input).
They ask them here, so the answers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from esrprof.errors import InputShapeError, UsageError

DTYPE_LABELS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """A tuple of positive ints, or an InputShapeError (exit 2) saying what is wrong."""
    try:
        dims = list(input_shape) if not isinstance(input_shape, (str, bytes)) else None
    except TypeError:
        dims = None
    if dims is None:
        raise InputShapeError(f"input shape must be a sequence of integers, got {input_shape!r}")
    shape: list[int] = []
    for d in dims:
        if isinstance(d, (bool, str, bytes)) or not _integral(d):
            raise InputShapeError(f"input shape must be integers, got {tuple(dims)!r}")
        shape.append(int(d))
    if not shape or any(d <= 0 for d in shape):
        raise InputShapeError(f"input shape must be positive integers, got {tuple(shape)}")
    return tuple(shape)


def check_dtype(dtype: Any) -> torch.dtype | None:
    """None (the model's own dtype) or a floating ``torch.dtype``; anything else (``"fp16"``,
    ``torch.int64``) is a UsageError line naming what was given."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise UsageError(f"dtype must be a torch floating dtype such as torch.float16, got "
                         f"{dtype!r}")
    if not dtype.is_floating_point:
        raise UsageError(f"dtype {dtype_label(dtype)} is not a floating dtype; a model computes "
                         "in torch.float32, torch.float16 or torch.bfloat16")
    return dtype


def _integral(value: Any) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False


def device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device of the model's first tensor and the dtype of its first floating one.

    A model without tensors computes in fp32 on the CPU.
    """
    device, dtype = None, None
    for t in (*model.parameters(), *model.buffers()):
        if device is None:
            device = t.device
        if t.is_floating_point():
            dtype = t.dtype
            break
    return device or torch.device("cpu"), dtype or torch.float32


def usable_device(text: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` (or ``auto``: cuda when there is one) when this machine has
    it; a UsageError line (exit 2) otherwise."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"unknown device {text!r} (cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {text}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {text}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UsageError(f"device {text}: only cpu and cuda are supported")
    return device


def shape_text(shape: Sequence[int]) -> str:
    """``1x3x256x256``: how every message and card writes a shape."""
    return "x".join(str(d) for d in shape)


def dtype_label(dtype: torch.dtype) -> str:
    """``fp32``/``fp16``/``bf16``, or torch's own name for anything else."""
    return DTYPE_LABELS.get(dtype, str(dtype).replace("torch.", ""))


def probe_input(
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    *,
    seed: int = 0,
) -> torch.Tensor:
    """A fixed uniform [0, 1) image from a private generator: the global RNG is never touched."""
    shape = check_shape(input_shape)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=torch.float32)
    return x.to(device=device, dtype=dtype or torch.float32)


def model_input(model: nn.Module, input_shape: Sequence[int], *, seed: int = 0) -> torch.Tensor:
    """:func:`probe_input` on the model's own device and dtype."""
    device, dtype = device_dtype(model)
    return probe_input(input_shape, device, dtype, seed=seed)


def forward_of(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    """A zero-argument call of the model on ``x``: what a clock times."""

    def forward() -> Any:
        return model(x)

    return forward
