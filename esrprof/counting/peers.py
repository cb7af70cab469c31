"""Cross-checks: the same model and input through fvcore and thop, beside our count.

Both peers need a real forward (fvcore traces with torch.jit, thop hooks real modules), so they
run on one real input under the same state guard as our count. A peer that fails gives a note;
the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from esrprof.counting.counters import parse_counters as parse_counters  # home: no torch
from esrprof.errors import USER_CODE_ERRORS, describe
from esrprof.extras import require
from esrprof.probe import model_input
from esrprof.results import PeerCount
from esrprof.state import preserved


def _fvcore(model: nn.Module, x: torch.Tensor) -> int:
    analysis = require("fvcore.nn", "--counters fvcore").FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    # fvcore logs per-op warnings through logging even with the flags above on some paths
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return int(analysis.total())
    finally:
        logger.setLevel(level)


def _thop(model: nn.Module, x: torch.Tensor) -> int:
    macs, _params = require("thop", "--counters thop").profile(model, inputs=(x,), verbose=False)
    return int(macs)


PEERS: dict[str, Callable[[nn.Module, torch.Tensor], int]] = {"fvcore": _fvcore, "thop": _thop}


def run_peers(model: nn.Module, input_shape: Sequence[int], names: Iterable[str]) -> dict[
    str, PeerCount
]:
    out: dict[str, PeerCount] = {}
    x = model_input(model, input_shape)
    for name in names:
        started = time.perf_counter()
        try:
            with preserved(model, eval_mode=True), torch.no_grad():
                macs = PEERS[name](model, x)
            out[name] = PeerCount(name, macs, time.perf_counter() - started)
        except USER_CODE_ERRORS as exc:  # a peer (or the model under it) failed: a note
            out[name] = PeerCount(name, None, time.perf_counter() - started, describe(exc, 200))
    return out
