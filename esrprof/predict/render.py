"""The card's prediction block: a few lines of text from a Prediction (nothing is computed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from esrprof.predict.kinds import KINDS

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.predict.api import Prediction

_KIND_WORDS = {
    "convolution": "convolution",
    "matmul": "matmul/attention",
    "elementwise": "element-wise",
    "data_movement": "data movement",
    "normalization": "normalization",
    "kernel_floor": "kernel floors",
}


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def prediction_block(p: Prediction, top_kinds: int = 4) -> str:
    """The block ``esrprof profile`` prints, plainly labelled as a prediction."""
    m, r = p.memory, p.runtime
    challenge = p.preset == "ntire2022"
    where = f"the {p.preset} protocol, " if p.preset else ""
    lines = [
        f"Predicted ({where}{p.gpu.label}, {p.dtype}) — from the shape trace, not measured",
        f"  peak GPU memory  {m.peak_allocated_mib:9.1f} MiB  at {_shape(m.input_shape)}"
        + (" (the largest validation image)" if challenge else "")
        + f"; weights {m.weights_mib:.1f} MiB; peak at "
        f"{m.peak_module or '(root)'}: {m.peak_op}",
        f"  runtime          {r.ms:9.1f} ms   at {_shape(r.input_shape)}"
        + (" (a typical image)" if challenge else "")
        + f"; {100 * r.memory_bound_share:.0f} % in bandwidth-limited kernels, "
        f"{r.kernels} kernels",
    ]
    kinds = sorted((k for k in r.by_kind if k.kind in KINDS and k.ms > 0),
                   key=lambda k: -k.ms)[:top_kinds]
    if kinds:
        lines.append("  time by kind: " + ", ".join(
            f"{_KIND_WORDS.get(k.kind, k.kind)} {100 * k.share:.0f} %" for k in kinds))
    if p.fallback_reason:
        lines.append(f"  note: traced on {p.backend} tensors ({p.fallback_reason})")
    return "\n".join(lines)


__all__ = ["prediction_block"]
