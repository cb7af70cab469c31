"""The runtime model's three constants, and how they were fitted.

One calibration for every model and GPU: a compute efficiency (share of the datasheet's peak
FLOP/s a kernel reaches), a bandwidth efficiency (share of the datasheet's memory bandwidth)
and a floor per kernel (launch and host-side dispatch). They were fitted once, by least squares
on log(predicted / published), to the published Titan Xp runtimes of the nine reference models
of ``reference_models/`` at the challenge's typical image (1×3×339×510, fp32): see
:func:`esrprof.prediction.fit.fit_calibration`, ``benchmarks/bench_predict.py --fit`` and
docs/prediction.md.
No model has a constant of its own.

What the fit says: the compute efficiency reaches its bound of 1 (cuDNN's Winograd 3×3
kernels do fewer multiplications than the direct count, so the dense convolutions of these
networks are never what limits them), the bandwidth efficiency is low (these layers have
few channels; a convolution reads its input through tiles and writes a fresh output, and the
cuDNN heuristics of 2022 rarely reached the bus's rate) and each kernel costs about 35 µs
beyond its roofline time (PyTorch 1.11 eager dispatch plus cuDNN's per-call algorithm
heuristic with ``cudnn.benchmark = False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Calibration:
    """The three constants and where they come from."""

    compute_efficiency: float
    bandwidth_efficiency: float
    kernel_floor_us: float
    gpu: str = "titan-xp"
    input_shape: tuple[int, ...] = (1, 3, 339, 510)
    fitted_on: tuple[str, ...] = ()
    rms_log_error: float | None = None  # of the fit, over fitted_on

    @property
    def constants(self) -> tuple[float, float, float]:
        return (self.compute_efficiency, self.bandwidth_efficiency, self.kernel_floor_us)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["fitted_on"] = list(self.fitted_on)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "calibration",
                  source: str = "<dict>") -> Calibration:
        """Every field checked (:func:`esrprof.validate.record`): efficiencies in (0, 1]."""
        from esrprof import validate

        return validate.record(cls, data, where, source, domains={
            "compute_efficiency": "positive", "bandwidth_efficiency": "positive",
        }, limits={"compute_efficiency": 1.0, "bandwidth_efficiency": 1.0},
            nested={"input_shape": validate.shape})


REFERENCE_MODELS = (
    "IMDN", "RFDN", "RLFN", "FMEN", "EFDN", "BSRN", "IMDN+", "EFDN-plain", "MobileSR",
)

# The documented calibration: the output of fit_calibration() on the nine reference models,
# rounded. tests/test_predict_runtime.py refits and checks these figures.
CALIBRATION = Calibration(
    compute_efficiency=1.0,
    bandwidth_efficiency=0.283,
    kernel_floor_us=34.1,
    gpu="titan-xp",
    input_shape=(1, 3, 339, 510),
    fitted_on=REFERENCE_MODELS,
    rms_log_error=0.232,
)


__all__ = ["CALIBRATION", "REFERENCE_MODELS", "Calibration"]
