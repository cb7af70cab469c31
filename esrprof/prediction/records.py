"""The records a prediction returns: plain frozen data with ``to_dict``/``from_dict``.

Kept apart from :mod:`esrprof.prediction.api` (which traces models) so that a result file can be
read back into these types without loading the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from esrprof import validate
from esrprof.errors import ResultFileError
from esrprof.jsonio import array, number, text
from esrprof.prediction.calibration import Calibration
from esrprof.prediction.gpus import GpuSpec

SCHEMA = 2  # 2: autograd, attention, relative (the ratio to the year's baseline and the score)


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted ``torch.cuda.max_memory_allocated()`` for one forward, in MiB (1024²)."""

    input_shape: tuple[int, ...]
    peak_allocated_mib: float  # weights + everything the forward holds at its worst moment
    weights_mib: float  # parameter and buffer blocks
    input_mib: float
    output_mib: float
    activation_peak_mib: float  # peak minus weights and input: what the forward itself adds
    exact_peak_mib: float  # the same liveness at exact tensor sizes, without the allocator
    peak_module: str  # dotted path of the module whose op set the peak ("" = root)
    peak_op: str  # aten op name, "input" or "output"
    warmup_shapes: tuple[tuple[int, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["input_shape"] = list(self.input_shape)
        d["warmup_shapes"] = [list(s) for s in self.warmup_shapes]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "memory",
                  source: str = "<dict>") -> MemoryPrediction:
        """Every field checked (:func:`esrprof.validate.record`): MiB non-negative, shapes of
        positive integers."""
        return validate.record(cls, data, where, source, nested={
            "input_shape": validate.shape,
            "warmup_shapes": validate.records(validate.shape),
        })


@dataclass(frozen=True)
class KindTime:
    kind: str  # one of KINDS
    ms: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LayerTime:
    """Predicted time of one module's own ops (not its children's), floors included."""

    module: str
    module_type: str
    ms: float
    share: float
    kernels: int
    memory_bound_share: float  # of this layer's roofline time
    top_op: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RuntimePrediction:
    """Predicted forward time on the GPU, with where it goes."""

    input_shape: tuple[int, ...]
    ms: float
    kernels: int
    flops: int  # 2 x MACs of convolutions, matmuls and attention
    bytes_moved: int  # read + written by all kernels
    memory_bound_share: float  # of the predicted time: kernels limited by bandwidth
    compute_bound_share: float  # kernels limited by arithmetic
    floor_share: float  # per-kernel floors (the three shares add to 1)
    by_kind: tuple[KindTime, ...]
    top_layers: tuple[LayerTime, ...]

    @property
    def by_kind_ms(self) -> dict[str, float]:
        return {k.kind: k.ms for k in self.by_kind}

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["input_shape"] = list(self.input_shape)
        d["by_kind"] = [k.to_dict() for k in self.by_kind]
        d["top_layers"] = [layer.to_dict() for layer in self.top_layers]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "runtime",
                  source: str = "<dict>") -> RuntimePrediction:
        """Every field checked: the runtime positive, shares fractions, counts non-negative."""
        return validate.record(cls, data, where, source, domains={
            "ms": "positive", **_SHARES,
        }, nested={
            "input_shape": validate.shape,
            "by_kind": validate.records(lambda v, n, s: validate.record(
                KindTime, v, n, s, domains=_SHARES)),
            "top_layers": validate.records(lambda v, n, s: validate.record(
                LayerTime, v, n, s, domains=_SHARES)),
        })


# The fields of the prediction records that are fractions of a whole (0 to 1).
_SHARES = {name: "share" for name in ("share", "memory_bound_share", "compute_bound_share",
                                      "floor_share")}


@dataclass(frozen=True)
class Relative:
    """The predicted runtime against the year's baseline predicted the same way on the same
    GPU (most of the predictor's bias cancels in the ratio), and the score that implies.

    ``score``: the year's formula with the model's exact FLOPs and params (the year's
    convention, at the counting shape) and the predicted runtime ratio; lower is better, the
    baseline scores sum(weights) × e² (7.389 when the weights add to 1)."""

    challenge: str
    baseline: str  # registry name of the year's baseline model
    baseline_predicted_ms: float
    baseline_published_ms: float | None  # the year's published baseline runtime
    runtime_ratio: float  # predicted / baseline predicted
    flops_g: float | None  # the year's FLOPs figure of the model (G = 1e9 MACs)
    params_m: float
    baseline_flops_g: float | None
    baseline_params_m: float | None
    score: float | None
    weights: tuple[float, float, float] = (0.0, 0.0, 0.0)  # runtime, FLOPs, params

    @property
    def runtime_ms_scaled(self) -> float | None:
        """The ratio times the published baseline runtime: the figure the year would print."""
        if self.baseline_published_ms is None:
            return None
        return self.runtime_ratio * self.baseline_published_ms

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["weights"] = list(self.weights)
        d["runtime_ms_scaled"] = self.runtime_ms_scaled
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "relative",
                  source: str = "<dict>") -> Relative:
        """Every field checked (:func:`esrprof.validate.record`): runtimes and the ratio
        positive, three non-negative weights."""
        return validate.record(cls, data, where, source, domains={
            "baseline_predicted_ms": "positive", "baseline_published_ms": "positive",
            "runtime_ratio": "positive", "score": "positive",
        }, nested={"weights": _weights})


def _weights(value: Any, name: str, source: str) -> tuple[float, float, float]:
    items = array(value, name, source)
    if len(items) != 3:
        raise ResultFileError(f"{source}: {name} has {len(items)} values, not 3 "
                              "(runtime, FLOPs, params)")
    return tuple(float(number(w, f"{name}[{i}]", source, optional=False))  # type: ignore[return-value]
                 for i, w in enumerate(items))


@dataclass(frozen=True)
class Prediction:
    """Peak GPU memory and runtime of a model, predicted for one GPU. Not a measurement."""

    memory: MemoryPrediction
    runtime: RuntimePrediction
    gpu: GpuSpec
    dtype: str  # "fp32", "fp16", ...
    calibration: Calibration
    backend: str  # the trace's backend: "meta", "fake" or "real"
    fallback_reason: str | None = None
    preset: str | None = None
    seconds: float = 0.0  # cost of the prediction itself
    schema: int = field(default=SCHEMA)
    autograd: bool = False  # predicted with autograd recording (saved tensors kept alive)
    attention: tuple[str, ...] = ()  # SDPA kernels predicted ("flash", "efficient", "math")
    relative: Relative | None = None  # against the challenge's baseline, when a challenge

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "kind": "prediction",
            "preset": self.preset,
            "gpu": self.gpu.to_dict(),
            "dtype": self.dtype,
            "backend": self.backend,
            "fallback_reason": self.fallback_reason,
            "memory": self.memory.to_dict(),
            "runtime": self.runtime.to_dict(),
            "calibration": self.calibration.to_dict(),
            "seconds": self.seconds,
            "autograd": self.autograd,
            "attention": list(self.attention),
            "relative": self.relative.to_dict() if self.relative is not None else None,
        }

    def __str__(self) -> str:
        from esrprof import notebook

        return notebook.prediction_str(self)

    def _repr_markdown_(self) -> str:
        from esrprof import notebook

        return notebook.prediction_markdown(self)

    def _repr_html_(self) -> str:
        from esrprof import notebook

        return notebook.prediction_html(self)

    def to_dataframe(self) -> Any:
        """One row of the predicted figures (pandas)."""
        from esrprof import notebook

        return notebook.prediction_dataframe(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "prediction",
                  source: str = "<dict>") -> Prediction:
        """A prediction block read back: every field checked, each bad one a ResultFileError
        line naming ``source`` and the field (``prediction.runtime.ms``)."""
        schema = number(data.get("schema", 0) if isinstance(data, Mapping) else None,
                        f"{where}.schema", source, optional=False, integer=True)
        if schema > SCHEMA:
            raise ResultFileError(f"{source}: {where} schema {schema} is newer than this "
                                  f"esrprof reads ({SCHEMA})")
        return validate.record(cls, data, where, source, nested={
            "memory": lambda v, n, s: MemoryPrediction.from_dict(v, n, s),
            "runtime": lambda v, n, s: RuntimePrediction.from_dict(v, n, s),
            "gpu": lambda v, n, s: GpuSpec.from_dict(v, n, s),
            "calibration": lambda v, n, s: Calibration.from_dict(v, n, s),
            "preset": lambda v, n, s: text(v, n, s, optional=True),
            "fallback_reason": lambda v, n, s: text(v, n, s, optional=True),
            "relative": lambda v, n, s: None if v is None else Relative.from_dict(v, n, s),
        })
