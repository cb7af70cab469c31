"""The documented constants are what the fit script produces, and the fit is judged out of
sample: leave-one-out refits on every published figure."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from esrprof.prediction.calibration import (
    AMPERE,
    CALIBRATIONS,
    GENERATIONS,
    PASCAL,
    calibration_for,
)
from esrprof.prediction.fit import (
    Point,
    fit_constants,
    fit_joint,
    leave_one_out,
    leave_one_out_joint,
    rms_log,
)
from esrprof.prediction.gpus import GPUS, gpu_spec
from esrprof.prediction.runtime import OpRow

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("fit_prediction",
                                                  ROOT / "benchmarks" / "fit_prediction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def groups():
    return _script().points_by_generation()


def test_every_gpu_names_a_generation_with_constants():
    for spec in GPUS.values():
        assert spec.generation in GENERATIONS, spec.name
        assert calibration_for(spec.generation).generation == spec.generation
    assert set(CALIBRATIONS) == set(GENERATIONS)
    for gen in ("turing", "ada", "hopper"):  # no published figure: borrowed, and said so
        assert CALIBRATIONS[gen].assumption and not CALIBRATIONS[gen].loo_rms_log_error


def test_the_joint_refit_reproduces_the_documented_constants(groups):
    assert {p.key for p in groups["pascal"]} == set(PASCAL.fitted_on)
    assert {p.key for p in groups["ampere"]} >= set(AMPERE.fitted_on)
    script = _script()
    fitted = fit_joint(groups, script.PER_GENERATION, script.HELD, script.CLASS_FACTORS)
    for gen, documented in (("pascal", PASCAL), ("ampere", AMPERE)):
        for got, want in zip(fitted.constants[gen], documented.constants):
            assert got == pytest.approx(want, rel=0.01, abs=0.002), gen
        assert set(fitted.class_factors) == {k for k, _ in documented.class_factors}
        for k, want in documented.class_factors:
            assert fitted.class_factors[k] == pytest.approx(want, rel=0.01), (gen, k)
    loo = leave_one_out_joint(groups, script.PER_GENERATION, script.HELD, script.CLASS_FACTORS)
    assert rms_log(loo["pascal"]) == pytest.approx(PASCAL.loo_rms_log_error, abs=0.005)
    assert rms_log(loo["ampere"]) == pytest.approx(AMPERE.loo_rms_log_error, abs=0.005)
    # out of sample is worse than in sample: the figure docs quote is the honest one
    assert PASCAL.loo_rms_log_error > PASCAL.rms_log_error


def test_ampere_constants_fix_the_titan_xp_bias_on_an_a6000(groups):
    # the Titan Xp constants put EFDN on an A6000 at ~1.9x its published 16.69 ms
    efdn = next(p for p in groups["ampere"] if p.key == "EFDN@rtx-a6000")
    assert efdn.predicted_ms(PASCAL.constants) / efdn.runtime_ms > 1.6
    assert 0.8 < efdn.predicted_ms(AMPERE.constants) / efdn.runtime_ms < 1.25


def _row(flops: int, nbytes: int) -> OpRow:
    import torch

    return OpRow("m", "aten.convolution", "conv", flops, nbytes, 0, torch.float32)


def test_leave_one_out_predicts_each_figure_without_it():
    spec = gpu_spec("custom:fp32_tflops=1,bandwidth_gbs=1")
    truth = (1.0, 0.5, 20.0)
    points = []
    for i in range(1, 6):
        rows = [_row(0, 10**6 * i)] * (3 * i)
        points.append(Point(f"m{i}", rows, spec, 1.0))
    points = [Point(p.key, p.rows, spec, p.predicted_ms(truth)) for p in points]
    free = ("bandwidth_efficiency", "kernel_floor_us")
    constants, rms = fit_constants(points, free, {"compute_efficiency": 1.0})
    assert constants[1] == pytest.approx(0.5, rel=1e-3) and rms < 1e-6
    held = leave_one_out(points, free, {"compute_efficiency": 1.0})
    assert [h.key for h in held] == [p.key for p in points]
    assert all(math.isclose(h.ratio, 1.0, rel_tol=1e-3) for h in held)
    # a figure off the model shows in its own leave-one-out ratio
    bad = [*points[:-1], Point("m5", points[-1].rows, spec, points[-1].runtime_ms * 2)]
    assert leave_one_out(bad, free, {"compute_efficiency": 1.0})[-1].ratio < 0.6


def test_a_shared_class_factor_is_recovered_by_the_joint_fit():
    import torch

    spec = gpu_spec("custom:fp32_tflops=1,bandwidth_gbs=1")
    truth, factor = (1.0, 0.5, 20.0), 4.0
    groups = {"pascal": [], "ampere": []}
    for gen in groups:
        for i in range(1, 6):
            linear = OpRow("m.fc", "aten.addmm", "linear", 0, 10**6 * (6 - i), 0,
                           torch.float32, "linear")
            rows = [_row(0, 10**6 * i)] * (2 * i) + [linear] * i
            ms = Point("", rows, spec, 1.0).predicted_ms(truth, {"linear": factor})
            groups[gen].append(Point(f"{gen}{i}", rows, spec, ms))
    fitted = fit_joint(groups, ("bandwidth_efficiency",), {"compute_efficiency": 1.0},
                       ("linear",))
    assert fitted.class_factors["linear"] == pytest.approx(factor, rel=1e-2)
    assert fitted.constants["ampere"][1] == pytest.approx(0.5, rel=1e-2)
    assert fitted.rms_log_error < 1e-3
    # without the factor the same figures cannot be fitted
    assert fit_joint(groups, ("bandwidth_efficiency",),
                     {"compute_efficiency": 1.0}).rms_log_error > 0.01


def test_linear_kernels_are_their_own_cost_class():
    from torch import nn

    from esrprof.prediction.api import _run_trace

    class ChannelsLast1x1(nn.Module):  # BSRN's 1x1 convolution, written as a Linear
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x):
            return self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) @ x.transpose(-2, -1)

    trace, _ = _run_trace(ChannelsLast1x1(), (1, 16, 8, 8), "meta", None, cost=True)
    classes = {(r.kind, r.cost_class) for r in trace.observers[1].rows if r.flops}
    # the Linear's GEMM is "linear"; a matmul outside any nn.Linear has no class
    assert classes == {("linear", "linear"), ("matmul", "")}


def test_the_card_says_when_a_generation_borrows_its_constants():
    from torch import nn

    from esrprof.card import prediction_block
    from esrprof.prediction import predict

    model = nn.Conv2d(3, 8, 3)
    hopper = prediction_block(predict(model, (1, 3, 16, 16), "h100"))
    assert "constants       hopper: none published, Ampere's used" in hopper
    assert "constants" not in prediction_block(predict(model, (1, 3, 16, 16), "rtx-a6000"))
