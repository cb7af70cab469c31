"""How predicted time is grouped (no torch import: the report reads these too)."""

from __future__ import annotations

# Registry kinds (esrprof/counting/formulas.py) -> the groups a prediction reports time by.
GROUPS = ("convolution", "matmul", "elementwise", "data_movement", "normalization")
FLOOR = "kernel_floor"
KINDS = (*GROUPS, FLOOR)
GROUP_OF = {
    "conv": "convolution",
    "linear": "matmul",
    "matmul": "matmul",
    "attention": "matmul",
    "data_movement": "data_movement",
    "normalization": "normalization",
}  # everything else (element-wise, softmax, reduction, pooling, resampling, other)
DEFAULT_GROUP = "elementwise"

__all__ = ["DEFAULT_GROUP", "FLOOR", "GROUPS", "GROUP_OF", "KINDS"]
