"""The one vocabulary of op kinds: what the counting registry labels each aten op, how the
runtime prediction groups them, and the words the card and the report print for each.

No torch import: result records, the report and the card read these names.

- **Registry kinds** (:data:`OP_KINDS`): the formula registry (``counting/formulas.py``) gives
  each aten op one of these; the engine (``counting/engine.py``, :func:`label`) turns the
  ``matmul`` of an ``nn.Linear`` (subclasses included) into ``linear``, once, for every
  observer.
- **Time groups** (:data:`TIME_KINDS`): what a predicted runtime is split by. Each registry kind
  belongs to one group (:func:`group_of`); ``kernel_floor`` is the per-kernel floor.
"""

from __future__ import annotations

from typing import Literal

# Kinds whose cost is multiply-accumulates ("custom": a formula the caller supplied).
MAC_KINDS = ("conv", "linear", "matmul", "attention", "custom")
# Kinds tallied by output elements: real work, but no multiply-accumulates.
ELEMENT_KINDS = ("elementwise", "normalization", "resampling", "pooling", "softmax", "reduction",
                 "data_movement")
# "view" ops alias storage and cost nothing; "other" ops are unknown: their cost is missing.
OP_KINDS = (*MAC_KINDS, *ELEMENT_KINDS, "view", "other")

OpKind = Literal["conv", "linear", "matmul", "attention", "custom", "elementwise",
                 "normalization", "resampling", "pooling", "softmax", "reduction",
                 "data_movement", "view", "other"]

# The groups a predicted runtime is reported by, and the per-kernel floor.
TIME_GROUPS = ("convolution", "matmul", "elementwise", "data_movement", "normalization")
FLOOR = "kernel_floor"
TIME_KINDS = (*TIME_GROUPS, FLOOR)
TimeKind = Literal["convolution", "matmul", "elementwise", "data_movement", "normalization",
                   "kernel_floor"]

GROUP_OF: dict[str, str] = {
    "conv": "convolution",
    "linear": "matmul",
    "matmul": "matmul",
    "attention": "matmul",
    "custom": "matmul",
    "data_movement": "data_movement",
    "normalization": "normalization",
}  # everything else (element-wise, softmax, reduction, pooling, resampling, other)
DEFAULT_GROUP = "elementwise"

# Kinds whose arithmetic the roofline costs (2 x MACs at the GPU's peak), and the peak they use.
ARITHMETIC_PEAK: dict[str, str] = {"conv": "conv", "linear": "matmul", "matmul": "matmul",
                                   "attention": "matmul", "custom": "matmul"}

# Words for each time group: the card (short) and the report (long).
TIME_WORDS = {
    "convolution": "convolution",
    "matmul": "matmul/attention",
    "elementwise": "element-wise",
    "data_movement": "data movement",
    "normalization": "normalization",
    "kernel_floor": "kernel floors",
}
TIME_LABELS = {
    "convolution": "convolution",
    "matmul": "attention / matmul",
    "elementwise": "element-wise",
    "data_movement": "data movement (cat, copies, pixel-shuffle)",
    "normalization": "normalization",
    "kernel_floor": "kernel floor",
}


def group_of(kind: str) -> str:
    """The time group of a registry kind."""
    return GROUP_OF.get(kind, DEFAULT_GROUP)


def label(kind: str, in_linear: bool) -> str:
    """The kind an op is booked under: a matmul run by an ``nn.Linear`` (or subclass) is
    ``linear``, so by-kind totals keep layers and free-standing matmuls apart."""
    return "linear" if kind == "matmul" and in_linear else kind


__all__ = [
    "ARITHMETIC_PEAK",
    "DEFAULT_GROUP",
    "ELEMENT_KINDS",
    "FLOOR",
    "GROUP_OF",
    "MAC_KINDS",
    "OP_KINDS",
    "TIME_GROUPS",
    "TIME_KINDS",
    "TIME_LABELS",
    "TIME_WORDS",
    "OpKind",
    "TimeKind",
    "group_of",
    "label",
]
