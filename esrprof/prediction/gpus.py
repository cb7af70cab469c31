"""GPU specifications from vendor datasheets, and the ``custom:`` spec a user can write.

Only what the runtime model uses: peak arithmetic throughput per dtype, memory bandwidth and the
per-kernel floor. Peaks are the datasheet's dense figures (no structured sparsity). Tensor-core
rates are those with fp32 accumulation, which is what PyTorch's fp16/bf16 convolutions and
matmuls use. ``tf32_tflops`` is the rate fp32 *convolutions* run at on GPUs that have it:
PyTorch's default ``torch.backends.cudnn.allow_tf32 = True`` lets cuDNN use TF32 tensor cores
for fp32 convolutions, while fp32 matmuls stay on the fp32 rate
(``torch.backends.cuda.matmul.allow_tf32`` defaults to False). Sources: docs/prediction.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from esrprof.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class GpuSpec:
    """Peak rates of one GPU (TFLOPS = 1e12 FLOP/s, GB/s = 1e9 B/s)."""

    name: str
    label: str
    fp32_tflops: float
    bandwidth_gbs: float
    fp16_tflops: float | None = None  # tensor cores, fp32 accumulate, dense
    bf16_tflops: float | None = None
    tf32_tflops: float | None = None
    # None: the calibration's per-kernel floor. That floor is mostly host-side work (Python,
    # the dispatcher, cuDNN's per-call algorithm heuristic), so every GPU shares it unless a
    # spec says otherwise.
    floor_us: float | None = None
    memory_gib: float | None = None
    source: str = ""

    def peak_flops(self, dtype: torch.dtype, op_kind: str = "conv") -> float:
        """FLOP/s for an arithmetic op of ``op_kind`` ("conv" or "matmul") in ``dtype``.

        A dtype the GPU has no fast path for runs at its fp32 rate (Pascal's fp16 is 1/64 of
        fp32 on paper, but PyTorch computes such ops with fp32 arithmetic on those GPUs).
        """
        rate = self.fp32_tflops
        name = str(dtype).removeprefix("torch.")  # by name: `--gpu` is checked before torch loads
        if name == "float16" and self.fp16_tflops:
            rate = max(rate, self.fp16_tflops)
        elif name == "bfloat16" and self.bf16_tflops:
            rate = max(rate, self.bf16_tflops)
        elif name == "float32" and op_kind == "conv" and self.tf32_tflops:
            rate = max(rate, self.tf32_tflops)
        return rate * 1e12

    @property
    def bandwidth(self) -> float:
        """Bytes per second."""
        return self.bandwidth_gbs * 1e9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GpuSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


_ADA = "NVIDIA Ada GPU Architecture whitepaper (v2.1), Appendix A, GeForce RTX 4090"
GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec(
            "titan-xp", "NVIDIA TITAN Xp", fp32_tflops=12.15, bandwidth_gbs=547.6,
            memory_gib=12,
            source="NVIDIA TITAN Xp product page: 3840 CUDA cores at 1582 MHz boost "
            "(2 FLOP/cycle: 12.15 TFLOPS), 12 GB GDDR5X at 11.4 Gbps on 384 bits "
            "(547.6 GB/s). Pascal: no tensor cores, fp16 at 1/64 rate. The NTIRE 2022 GPU.",
        ),
        GpuSpec(
            "rtx-3090", "NVIDIA GeForce RTX 3090", fp32_tflops=35.58, bandwidth_gbs=936.2,
            fp16_tflops=71.0, bf16_tflops=71.0, tf32_tflops=35.6, memory_gib=24,
            source="NVIDIA Ampere GA102 GPU Architecture whitepaper, Table 9 (RTX 3090): "
            "10496 CUDA cores at 1695 MHz, FP16/BF16 tensor with FP32 accumulate 71 TFLOPS "
            "dense, TF32 35.6 TFLOPS, 936 GB/s GDDR6X. The NTIRE 2024 GPU.",
        ),
        GpuSpec(
            "rtx-a6000", "NVIDIA RTX A6000", fp32_tflops=38.7, bandwidth_gbs=768.0,
            fp16_tflops=154.8, bf16_tflops=154.8, tf32_tflops=77.4, memory_gib=48,
            source="NVIDIA RTX A6000 datasheet: 10752 CUDA cores, 38.7 TFLOPS FP32, "
            "309.7 TFLOPS tensor (sparse; 154.8 dense FP16/BF16, 77.4 dense TF32), "
            "48 GB GDDR6 at 768 GB/s. The NTIRE 2025 GPU.",
        ),
        GpuSpec(
            "a100", "NVIDIA A100 SXM4 80GB", fp32_tflops=19.5, bandwidth_gbs=2039.0,
            fp16_tflops=312.0, bf16_tflops=312.0, tf32_tflops=156.0, memory_gib=80,
            source="NVIDIA A100 Tensor Core GPU datasheet: FP32 19.5 TFLOPS, TF32 156, "
            "FP16/BF16 312 (dense), A100 80GB SXM 2039 GB/s HBM2e.",
        ),
        GpuSpec(
            "a100-40gb", "NVIDIA A100 SXM4 40GB", fp32_tflops=19.5, bandwidth_gbs=1555.0,
            fp16_tflops=312.0, bf16_tflops=312.0, tf32_tflops=156.0, memory_gib=40,
            source="NVIDIA A100 Tensor Core GPU datasheet: as the 80GB part, 1555 GB/s HBM2.",
        ),
        GpuSpec(
            "h100", "NVIDIA H100 SXM5 80GB", fp32_tflops=66.9, bandwidth_gbs=3350.0,
            fp16_tflops=989.4, bf16_tflops=989.4, tf32_tflops=494.7, memory_gib=80,
            source="NVIDIA H100 Tensor Core GPU datasheet (SXM): FP32 67 TFLOPS, TF32 989, "
            "FP16/BF16 1979 TFLOPS with sparsity (half dense), 3.35 TB/s HBM3.",
        ),
        GpuSpec(
            "h100-pcie", "NVIDIA H100 PCIe 80GB", fp32_tflops=51.2, bandwidth_gbs=2000.0,
            fp16_tflops=756.0, bf16_tflops=756.0, tf32_tflops=378.0, memory_gib=80,
            source="NVIDIA H100 Tensor Core GPU datasheet (PCIe): FP32 51 TFLOPS, "
            "FP16/BF16 1513 with sparsity (756 dense), 2.0 TB/s HBM2e.",
        ),
        GpuSpec(
            "h200", "NVIDIA H200 SXM 141GB", fp32_tflops=66.9, bandwidth_gbs=4800.0,
            fp16_tflops=989.4, bf16_tflops=989.4, tf32_tflops=494.7, memory_gib=141,
            source="NVIDIA H200 Tensor Core GPU datasheet: H100 SXM compute, 141 GB HBM3e "
            "at 4.8 TB/s.",
        ),
        GpuSpec(
            "rtx-4090", "NVIDIA GeForce RTX 4090", fp32_tflops=82.6, bandwidth_gbs=1008.0,
            fp16_tflops=165.2, bf16_tflops=165.2, tf32_tflops=82.6, memory_gib=24,
            source=f"{_ADA}: 16384 CUDA cores at 2520 MHz (82.6 TFLOPS FP32), FP16/BF16 "
            "tensor with FP32 accumulate 165.2 TFLOPS dense, TF32 82.6, 1008 GB/s GDDR6X.",
        ),
    )
}

_ALIASES = {"titanxp": "titan-xp", "3090": "rtx-3090", "a6000": "rtx-a6000", "4090": "rtx-4090"}

_CUSTOM_KEYS = {
    "fp32_tflops": "fp32_tflops",
    "bandwidth_gbs": "bandwidth_gbs",
    "fp16_tflops": "fp16_tflops",
    "bf16_tflops": "bf16_tflops",
    "tf32_tflops": "tf32_tflops",
    "floor_us": "floor_us",
}
_REQUIRED = ("fp32_tflops", "bandwidth_gbs")
CUSTOM_FORMAT = "custom:fp32_tflops=F,bandwidth_gbs=F[,fp16_tflops=F,bf16_tflops=F,floor_us=F]"


def gpu_spec(gpu: str | GpuSpec) -> GpuSpec:
    """A named GPU (case-insensitive), a ``custom:key=value,...`` spec, or a GpuSpec as is.

    Raises UsageError (one line) for an unknown name, listing the known ones, or a malformed
    custom spec, saying what is wrong.
    """
    if isinstance(gpu, GpuSpec):
        return gpu
    if not isinstance(gpu, str) or not gpu.strip():
        raise UsageError(f"GPU must be a name or {CUSTOM_FORMAT}, got {gpu!r}")
    text = gpu.strip()
    if text.lower().startswith("custom:"):
        return parse_custom(text)
    key = text.lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key in GPUS:
        return GPUS[key]
    raise UsageError(
        f"unknown GPU {text!r}; known: {', '.join(GPUS)}, or {CUSTOM_FORMAT}"
    )


def parse_custom(text: str) -> GpuSpec:
    """``custom:fp32_tflops=14,bandwidth_gbs=448[,fp16_tflops=..,floor_us=..]``."""
    body = text.split(":", 1)[1].strip()
    if not body:
        raise UsageError(f"empty custom GPU spec; expected {CUSTOM_FORMAT}")
    values: dict[str, float] = {}
    for part in body.split(","):
        if "=" not in part:
            raise UsageError(f"custom GPU spec: {part.strip()!r} is not key=value "
                             f"(expected {CUSTOM_FORMAT})")
        k, v = (s.strip() for s in part.split("=", 1))
        if k not in _CUSTOM_KEYS:
            raise UsageError(f"custom GPU spec: unknown key {k!r}; keys: "
                             f"{', '.join(_CUSTOM_KEYS)}")
        if k in values:
            raise UsageError(f"custom GPU spec: {k} given twice")
        try:
            number = float(v)
        except ValueError:
            raise UsageError(f"custom GPU spec: {k}={v!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and k != "floor_us"):
            raise UsageError(f"custom GPU spec: {k} must be a positive number, got {v}")
        values[k] = number
    missing = [k for k in _REQUIRED if k not in values]
    if missing:
        raise UsageError(f"custom GPU spec: missing {', '.join(missing)} "
                         f"(expected {CUSTOM_FORMAT})")
    label = ", ".join(f"{k}={values[k]:g}" for k in values)
    return GpuSpec(
        name="custom", label=f"custom ({label})", source="user-given", **values
    )


def with_floor(spec: GpuSpec, floor_us: float) -> GpuSpec:
    """The spec with its per-kernel floor set (used where the spec leaves it to calibration)."""
    return replace(spec, floor_us=floor_us)


__all__ = ["CUSTOM_FORMAT", "GPUS", "GpuSpec", "gpu_spec", "parse_custom", "with_floor"]
