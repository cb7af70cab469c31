"""The runtime model's constants, one set per GPU generation, and what each one means.

The runtime of one kernel is ``max(flops / (peak × compute_efficiency), bytes / (bandwidth ×
bandwidth_efficiency)) + kernel_floor``, summed over the forward's kernels (runtime.py). Three
constants, each with a physical meaning:

- ``compute_efficiency``: the share of the datasheet's peak FLOP/s (TF32 for fp32 convolutions
  on Ampere and later, tensor cores for fp16/bf16) that a convolution or matmul kernel reaches.
  At 1 the arithmetic of these small networks is never what limits them: cuDNN's Winograd 3×3
  kernels do fewer multiplications than the direct count, which offsets the rest.
- ``bandwidth_efficiency``: the share of the datasheet's DRAM bandwidth that a bandwidth-limited
  kernel reaches, averaged over the kernels of a small-SR forward (few channels, tiles read with
  halos, fresh outputs written). A copy kernel reaches 0.8–0.9; these reach much less.
- ``kernel_floor_us``: the time every kernel costs beyond its roofline time: the launch and the
  host-side dispatch (Python, the dispatcher, cuDNN's per-call heuristic with
  ``cudnn.benchmark = False``). It depends on the software of the era (PyTorch 1.11 in 2022,
  1.13 in 2024–2026) as much as on the chip.

Beside the three, ``class_factors`` scale the roofline time of one op cost class. The published
fits carry one, for ``linear`` (the GEMM of an ``nn.Linear``: tall and skinny in an SR model,
far below the bandwidth roofline); ``esrprof calibrate`` measures one per class on a device.

Each generation's constants are fitted once, by :mod:`esrprof.prediction.fit`, to every
published runtime of a model esrprof can trace (``published.py``: the NTIRE 2022 Table 1
reference models on a Titan Xp; the NTIRE 2024/2025/2026 baselines on an RTX 3090 and an RTX
A6000). ``python benchmarks/fit_prediction.py`` refits them and prints the leave-one-out error
that docs/prediction.md quotes. Generations with no published figure borrow a fitted one's
constants, stated in ``assumption``. No model has a constant of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

GENERATIONS = ("pascal", "turing", "ampere", "ada", "hopper")


@dataclass(frozen=True)
class Calibration:
    """The three constants of one GPU generation and where they come from."""

    compute_efficiency: float
    bandwidth_efficiency: float
    kernel_floor_us: float
    gpu: str = "titan-xp"  # the GPU the fit's figures were measured on (the first, if several)
    input_shape: tuple[int, ...] = (1, 3, 339, 510)
    fitted_on: tuple[str, ...] = ()  # "model@gpu" of every figure the fit used
    rms_log_error: float | None = None  # in-sample, over fitted_on
    generation: str = "pascal"
    loo_rms_log_error: float | None = None  # leave-one-out, over fitted_on
    assumption: str = ""  # how a generation without published figures got its constants
    # measured / predicted roofline time per op cost class (runtime.COST_CLASSES): from the
    # microbenchmarks of ``esrprof calibrate`` on one device, or fitted with the constants
    class_factors: tuple[tuple[str, float], ...] = ()

    @property
    def constants(self) -> tuple[float, float, float]:
        return (self.compute_efficiency, self.bandwidth_efficiency, self.kernel_floor_us)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["fitted_on"] = list(self.fitted_on)
        d["class_factors"] = dict(self.class_factors)  # {class: factor} in JSON
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "calibration",
                  source: str = "<dict>") -> Calibration:
        """Every field checked (:func:`esrprof.validate.record`): efficiencies in (0, 1],
        class factors positive."""
        from esrprof import validate

        return validate.record(cls, data, where, source, domains={
            "compute_efficiency": "positive", "bandwidth_efficiency": "positive",
        }, limits={"compute_efficiency": 1.0, "bandwidth_efficiency": 1.0},
            nested={"input_shape": validate.shape, "class_factors": _class_factors})


def _class_factors(value: Any, name: str, source: str) -> tuple[tuple[str, float], ...]:
    """``{class: factor}`` in JSON -> ((class, factor), ...), each factor positive."""
    from esrprof.jsonio import mapping, number

    return tuple((str(k), float(number(v, f"{name}.{k}", source, optional=False,
                                       low="positive", high=1e6)))
                 for k, v in mapping(value or {}, name, source).items())


REFERENCE_MODELS = (
    "IMDN", "RFDN", "RLFN", "FMEN", "EFDN", "BSRN", "IMDN+", "EFDN-plain", "MobileSR",
)

# The documented constants: the output of ``python benchmarks/fit_prediction.py`` (one joint
# fit over every published figure: the bandwidth efficiency per generation; the floor and the
# Linear factor shared; the compute efficiency held at 1), rounded. tests/test_predict_fit.py
# refits them and checks these.
_FLOOR_US = 79.9
# nn.Linear's GEMM in an SR model is tall and skinny (M = H*W, K, N = a few dozen channels):
# it runs at about 1/6 of the bandwidth roofline the other kernels reach (docs/prediction.md)
_LINEAR = (("linear", 5.76),)
PASCAL = Calibration(
    compute_efficiency=1.0,
    bandwidth_efficiency=0.424,
    kernel_floor_us=_FLOOR_US,
    gpu="titan-xp",
    input_shape=(1, 3, 339, 510),
    fitted_on=tuple(f"{m}@titan-xp" for m in REFERENCE_MODELS),
    rms_log_error=0.098,
    generation="pascal",
    loo_rms_log_error=0.116,
    class_factors=_LINEAR,
)
AMPERE = Calibration(
    compute_efficiency=1.0,
    bandwidth_efficiency=1.0,
    kernel_floor_us=_FLOOR_US,
    gpu="rtx-a6000",
    input_shape=(1, 3, 339, 510),
    fitted_on=("RLFN@rtx-3090", "EFDN@rtx-a6000", "SPAN@rtx-a6000"),
    rms_log_error=0.096,
    generation="ampere",
    loo_rms_log_error=0.142,
    assumption="three figures (one baseline per year on an Ampere GPU): the bandwidth "
    "efficiency is fitted on them (it reaches its bound, 1: beside the shared floor they "
    "leave no bandwidth loss to fit), the floor and the Linear factor are shared with "
    "Pascal's nine figures",
    class_factors=_LINEAR,
)
_BORROWED = ("no published runtime of a model esrprof can trace was measured on a {gen} GPU: "
             "the {src} constants are used (same software era of the challenges that "
             "published figures; the datasheet's peaks and bandwidth carry the difference)")
CALIBRATIONS: dict[str, Calibration] = {
    "pascal": PASCAL,
    "turing": Calibration(*AMPERE.constants, gpu=AMPERE.gpu, input_shape=AMPERE.input_shape,
                          generation="turing", class_factors=AMPERE.class_factors,
                          assumption=_BORROWED.format(gen="Turing", src="Ampere")),
    "ampere": AMPERE,
    "ada": Calibration(*AMPERE.constants, gpu=AMPERE.gpu, input_shape=AMPERE.input_shape,
                       generation="ada", class_factors=AMPERE.class_factors,
                       assumption=_BORROWED.format(gen="Ada", src="Ampere")),
    "hopper": Calibration(*AMPERE.constants, gpu=AMPERE.gpu, input_shape=AMPERE.input_shape,
                          generation="hopper", class_factors=AMPERE.class_factors,
                          assumption=_BORROWED.format(gen="Hopper", src="Ampere")),
}
# The NTIRE 2022 (Titan Xp) constants, the default before generations existed.
CALIBRATION = PASCAL


def calibration_for(generation: str) -> Calibration:
    """The constants of a generation ("" or unknown: Ampere's, the most recent fitted)."""
    return CALIBRATIONS.get(generation, AMPERE)


__all__ = [
    "AMPERE",
    "CALIBRATION",
    "CALIBRATIONS",
    "GENERATIONS",
    "PASCAL",
    "REFERENCE_MODELS",
    "Calibration",
    "calibration_for",
]
