"""What goes into a run's forwards: the model in the config's device, dtype and memory format,
the image set the config names, and each LR image as the model's input."""

from __future__ import annotations

import copy

import torch
from torch import nn

from esrprof import data as data_mod
from esrprof.errors import ModelError, describe
from esrprof.run.config import DTYPES, RunConfig


def prepare_model(model: nn.Module, config: RunConfig, device: torch.device) -> nn.Module:
    """The model to run: the user's own when nothing needs converting, else a converted copy
    (so values, devices and strides of the user's tensors never change)."""
    dtype = DTYPES[config.dtype]
    if not _needs_copy(model, device, dtype, config.channels_last):
        return model
    try:
        work = copy.deepcopy(model)
    except Exception as exc:
        raise ModelError(
            f"cannot copy the model to move it to {device}/{config.dtype} ({describe(exc)}); "
            "move it there yourself"
        ) from None
    try:
        work = work.to(device=device, dtype=dtype)
        if config.channels_last:
            work = work.to(memory_format=torch.channels_last)
    except Exception as exc:  # out of memory on the device, or a module that refuses the move
        raise ModelError(f"cannot move the model to {device}/{config.dtype}: "
                         f"{describe(exc)}") from None
    return work


def _needs_copy(model: nn.Module, device: torch.device, dtype: torch.dtype, cl: bool) -> bool:
    # Every tensor, not the first one's (as esrprof.probe.device_dtype answers): a model
    # half on another device or dtype must be converted too.
    if cl:
        return True
    for t in [*model.parameters(), *model.buffers()]:
        if t.device != device or (t.is_floating_point() and t.dtype != dtype):
            return True
    return False


def to_input(lr: torch.Tensor, config: RunConfig, pixel_range: int,
             device: torch.device) -> torch.Tensor:
    """One ``3,H,W`` uint8 LR image as the model's ``1,3,H,W`` input, on ``device``."""
    x = lr.float()
    if pixel_range == 1:
        x = x / 255.0
    x = x.unsqueeze(0).to(DTYPES[config.dtype])
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device)


def open_images(config: RunConfig, device: torch.device, scale: int | None) -> data_mod.ImageSet:
    """The image set the config asks for, limited to ``max_images``."""
    if config.data:
        images = data_mod.div2k(config.data, config.splits, scale=scale)
    elif config.lr_dir or config.hr_dir:
        images = data_mod.folder(config.lr_dir, config.hr_dir, scale=scale,
                                 split=config.splits[0])
    else:
        mode = config.synthetic
        quick = mode == "quick" or (mode == "auto" and device.type != "cuda")
        return data_mod.synthetic(config.splits, quick=quick, images_per_split=config.max_images,
                                  seed=config.seed, challenge=config.challenge)
    return data_mod.limit(images, config.max_images)
