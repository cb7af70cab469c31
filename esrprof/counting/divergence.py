"""Where the ntire2022 and complete conventions disagree, layer by layer, and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from esrprof.results import Divergence, NtireRecord, OpRecord

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
