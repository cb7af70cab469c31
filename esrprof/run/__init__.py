"""Runs: the challenge's runtime, memory and PSNR protocol, with its flaws fixed.

A run passes over image splits (valid, test). Per split: load the LR images (untimed), warm up,
reset the memory peak, then ``trials`` passes over the split timing each image's forward alone
(input already on the device, output copied back after the synchronise). Every per-image sample
is kept; the split's runtime is the best trial's per-image mean and the final runtime the mean
of the split figures, as the challenge reported it. PSNR is computed from the first trial's
outputs when HR references and trained weights exist.

:func:`measure` leaves the model as it was: every module's train/eval flag, grad mode, RNG
streams and cuDNN flags are restored, and a model that must change device, dtype or memory
format for the run is copied rather than converted in place.

The rooms: ``config`` (RunConfig), ``records`` (what a run records, to and from JSON),
``prepare`` (the model, the images and the input of each forward), ``loop`` (measure and the
steps of one split).
"""

from esrprof.run.config import DTYPES, ON_OOM, SYNTHETIC_MODES, RunConfig
from esrprof.run.loop import is_out_of_memory, measure
from esrprof.run.prepare import open_images, prepare_model, to_input
from esrprof.run.records import ImageQuality, RunResult, SplitResult

__all__ = [
    "DTYPES",
    "ON_OOM",
    "SYNTHETIC_MODES",
    "ImageQuality",
    "RunConfig",
    "RunResult",
    "SplitResult",
    "is_out_of_memory",
    "measure",
    "open_images",
    "prepare_model",
    "to_input",
]
