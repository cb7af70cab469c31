"""The op kinds of the complete convention: plain names, importable without torch (the result
records read them; :mod:`esrprof.counting.formulas` assigns them)."""

from __future__ import annotations

# Kinds whose cost is multiply-accumulates ("custom": a formula the caller supplied).
MAC_KINDS = ("conv", "linear", "matmul", "attention", "custom")
# Kinds tallied by output elements: real work, but no multiply-accumulates.
ELEMENT_KINDS = ("elementwise", "normalization", "resampling", "pooling", "softmax", "reduction",
                 "data_movement")
# "view" ops alias storage and cost nothing; "other" ops are unknown: their cost is missing.
KINDS = (*MAC_KINDS, *ELEMENT_KINDS, "view", "other")
