"""Leave the user's model and torch exactly as they were.

Every measuring path (count, run, monitor, gate) enters :func:`preserved` so that train/eval flags
of *every* module, grad mode, RNG streams and cuDNN flags come back even when the model raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def preserved(model: nn.Module | None = None, *, eval_mode: bool = False) -> Iterator[None]:
    """Save and restore module flags, grad mode, CPU/CUDA RNG and cuDNN flags.

    With ``eval_mode`` every module is put in eval for the duration (each module's own flag is
    restored afterwards, not just the root's).
    """
    modes = [(m, m.training) for m in model.modules()] if model is not None else []
    grad_enabled = torch.is_grad_enabled()
    cpu_rng = torch.get_rng_state()
    cuda_rng = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else None
    )
    cudnn = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.enabled,
    )
    try:
        if eval_mode:
            for m, _ in modes:
                m.training = False
        yield
    finally:
        for m, flag in modes:
            m.training = flag
        torch.set_grad_enabled(grad_enabled)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.enabled,
        ) = cudnn
