"""Where the ntire2022 and ntire2024 conventions disagree with complete, layer by layer, and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from esrprof.counting.ntire2024 import NOT_MACS, SKIPPED
from esrprof.results import Divergence, Ntire2024Divergence, Ntire2024Record, NtireRecord, OpRecord

_RULE_REASONS = {
    "activation": "activation outputs counted as MACs by ntire2022 "
    "(complete tallies them as element-wise ops)",
    "batchnorm2d": "BatchNorm2d counted as 1-2 MACs per element by ntire2022 "
    "(complete tallies it as normalization)",
    "linear": "Linear on a >2-D input: ntire2022 counts batch·in.shape[1]·out.shape[1], "
    "not the layer's multiply-accumulates",
    "conv": "ConvTranspose2d counted on its output size by ntire2022 "
    "(complete: every input position through the kernel)",
}


def find_divergences(
    ops: Iterable[OpRecord],
    ntire: Iterable[NtireRecord],
    module_types: Mapping[str, str],
) -> tuple[Divergence, ...]:
    """Every module whose own MACs differ between the two conventions, with the reason."""
    complete: dict[str, int] = {}
    mac_ops: dict[str, dict[str, int]] = {}
    for r in ops:
        if r.macs:
            complete[r.module] = complete.get(r.module, 0) + r.macs
            mac_ops.setdefault(r.module, {})
            mac_ops[r.module][r.op] = mac_ops[r.module].get(r.op, 0) + r.calls
    hooked = {r.module: r for r in ntire}
    out = []
    for module in dict.fromkeys([*hooked, *complete]):
        n_macs = hooked[module].macs if module in hooked else 0
        c_macs = complete.get(module, 0)
        if n_macs == c_macs:
            continue
        if module in hooked:
            reason = _RULE_REASONS[hooked[module].rule]
            if hooked[module].rule == "conv" and module_types.get(module) != "ConvTranspose2d":
                reason = "convolution module whose forward differs from a plain conv"
        else:
            listed = ", ".join(f"{op} ×{calls}" for op, calls in mac_ops[module].items())
            reason = f"functional ops not hooked by ntire2022: {listed}"
        out.append(Divergence(module, module_types.get(module, ""), n_macs, c_macs, reason))
    return tuple(out)


# fvcore's ops whose count is the same multiply-accumulates as complete's, when shapes allow
_MAC_OPS = {"_convolution", "linear", "matmul", "mm", "bmm", "addmm", "einsum"}


def find_ntire2024_divergences(
    ops: Iterable[OpRecord],
    fvcore: Iterable[Ntire2024Record],
    module_types: Mapping[str, str],
) -> tuple[Ntire2024Divergence, ...]:
    """Every module whose own MACs differ between ntire2024 (fvcore's count) and complete."""
    complete: dict[str, int] = {}
    mac_ops: dict[str, dict[str, int]] = {}
    for r in ops:
        if r.macs:
            complete[r.module] = complete.get(r.module, 0) + r.macs
            calls = mac_ops.setdefault(r.module, {})
            calls[r.op] = calls.get(r.op, 0) + r.calls
    counted: dict[str, int] = {}
    seen: dict[str, dict[str, int]] = {}
    for f in fvcore:
        counted[f.module] = counted.get(f.module, 0) + f.macs
        calls = seen.setdefault(f.module, {})
        calls[f.op] = calls.get(f.op, 0) + f.calls
    out = []
    for module in dict.fromkeys([*counted, *complete]):
        n_macs, c_macs = counted.get(module, 0), complete.get(module, 0)
        if n_macs == c_macs:
            continue
        reasons = [NOT_MACS[op] for op in seen.get(module, {}) if op in NOT_MACS]
        skipped = [SKIPPED[op] for op in seen.get(module, {}) if op in SKIPPED]
        if skipped:
            reasons.append("fvcore has no handle for " + ", ".join(skipped))
        fv_macs = {op for op in seen.get(module, {}) if op in _MAC_OPS}
        if not fv_macs and not skipped and module in mac_ops:
            listed = ", ".join(f"{op} ×{calls}" for op, calls in mac_ops[module].items())
            reasons.append(f"ops fvcore does not count: {listed}")
        elif fv_macs and not reasons:
            reasons.append("fvcore's rule for " + ", ".join(sorted(fv_macs)) + " differs from "
                           "the multiply-accumulates (einsum through numpy's path, a matmul "
                           "batch only the right operand carries, or an op fvcore skips)")
        out.append(Ntire2024Divergence(module, module_types.get(module, ""), n_macs, c_macs,
                                       "; ".join(reasons) or "fvcore's rules differ here"))
    return tuple(out)
