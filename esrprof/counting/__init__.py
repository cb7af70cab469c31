"""Counting: the ntire2022 module-hook convention and the complete dispatch-level count."""

from esrprof.counting.engine import BACKENDS, check_shape, count

__all__ = ["BACKENDS", "check_shape", "count"]
