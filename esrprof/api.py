"""``count`` and ``profile``: counts (and, with a run config, a run) of one model as one record.

``esrprof profile`` and ``esrprof zoo`` call these; the monitor counts through ``count``. The
latency doors (gate, baseline, pytest plugin) time through ``esrprof.latency`` instead, over the
same probe and state guard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from esrprof.challenges import Challenge
from esrprof.counting import engine
from esrprof.counting.formulas import Formulas
from esrprof.counting.peers import parse_counters, run_peers
from esrprof.errors import ModelError
from esrprof.prediction.gpus import GpuSpec
from esrprof.prediction.records import Prediction
from esrprof.probe import device_dtype, dtype_label
from esrprof.results import Counts, ModelInfo, Result


def count(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    *,
    counters: str | Iterable[str] = (),
    backend: str = "auto",
    dtype: torch.dtype | None = None,
    formulas: Formulas | None = None,
) -> Counts:
    """Params, buffers, ntire2022 and complete MACs, activations and convs of one forward.

    Runs on meta tensors by default (no arithmetic, milliseconds at any input size) and leaves
    the model as it was, attributes included. ``counters=("fvcore", "thop")`` adds the peers'
    totals for comparison; ``formulas={aten_op: fn}`` (or ``{aten_op: (kind, fn)}``) overrides
    or adds MAC formulas for this count only, as fvcore's ``set_op_handle`` does.
    """
    counts = engine.count(model, input_shape, backend=backend, dtype=dtype, formulas=formulas)
    names = parse_counters(counters)
    if names:
        counts = dataclasses.replace(counts, peers=run_peers(model, counts.input_shape, names))
    return counts


def profile(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    *,
    counters: str | Iterable[str] = (),
    run: Any = None,
    name: str | None = None,
    info: ModelInfo | None = None,
    backend: str = "auto",
    predict: bool | str | GpuSpec = False,
    challenge: str | None = None,
) -> Result:
    """Counts, and with ``run=RunConfig(...)`` latency, memory and quality, as one Result.

    ``challenge``: the NTIRE year whose rules the figures follow (``"ntire2022"`` ...
    ``"ntire2026"``; default the latest, :data:`esrprof.challenges.LATEST`); recorded in the
    result. ``predict``: also predict that year's GPU figures from the shape trace — ``True``
    for its GPU, or a GPU name / ``custom:...`` spec / ``GpuSpec``.
    """
    rules = rules_for(challenge)
    counts = count(model, input_shape, counters=counters, backend=backend)
    prediction = None
    if predict is not False:
        from esrprof.prediction.api import predict_challenge

        prediction = predict_challenge(model, rules.preset,
                                       gpu=None if predict is True else predict)
    info = info or ModelInfo(name=name or type(model).__name__, class_name=type(model).__name__)
    if name and info.name != name:
        info = dataclasses.replace(info, name=name)
    run_result = None
    if run is not None:
        from esrprof.run import measure

        run_result = measure(model, with_model_defaults(run, model))
        environment = dict(getattr(run_result, "environment", {}) or {})
    else:
        from esrprof.environment import collect

        environment = collect(device="cpu", dtype=dtype_label(device_dtype(model)[1]))
    return Result(
        model=info,
        input_shape=counts.input_shape,
        counts=counts,
        run=run_result,
        environment=environment,
        prediction=prediction,
        challenge=rules.name,
    )


def rules_for(challenge: str | None) -> Challenge:
    """A challenge year's rules by name; None: the latest."""
    from esrprof.challenges import challenge as lookup

    return lookup(challenge)


def try_predict(model: nn.Module, gpu: str | GpuSpec | None = None,
                challenge: str = "ntire2022") -> tuple[Prediction | None, str | None]:
    """A challenge year's prediction, or why there is none: a model the prediction cannot
    trace (it needs other input sizes, say) keeps its counts, with a note in place of the
    figures."""
    from esrprof.prediction.api import predict_challenge

    try:
        return predict_challenge(model, challenge, gpu=gpu), None
    except ModelError as exc:
        return None, str(exc)


def with_model_defaults(config: Any, model: nn.Module) -> Any:
    """A run config whose unset pixel range and scale come from the reference-model registry
    when the model is one of the challenge's (the CLI and the API read the same defaults)."""
    from esrprof.zoo.registry import entry_for

    entry = entry_for(model)
    if entry is None:
        return config
    fill = {k: getattr(entry, k) for k in ("pixel_range", "scale")
            if getattr(config, k, None) is None}
    return dataclasses.replace(config, **fill) if fill else config
