"""The formula registry: registrations apply at once, duplicates need ``override``, per-call
formulas, and "uncounted" lists only ops whose cost is really missing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import esrprof
from esrprof.counting import formulas
from esrprof.counting.formulas import MAC_KINDS, classify, register_formula, register_kind
from esrprof.errors import UsageError

aten = torch.ops.aten


class Cumulative(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=-1) + torch.logsumexp(x, dim=1, keepdim=True)


class NoMacOps(nn.Module):
    """PReLU, an embedding lookup and in-place masked fills: none is a multiply-accumulate."""

    def __init__(self):
        super().__init__()
        self.act = nn.PReLU(3)
        self.embed = nn.Embedding(10, 4)

    def forward(self, x):
        y = self.act(x)
        y.masked_fill_(y > 0.9, 0.0)
        idx = torch.zeros(x.shape[-1], dtype=torch.long, device=x.device)
        return y + self.embed(idx).sum() + F.relu_(y.clone())


def test_ops_without_macs_are_not_uncounted():
    counts = esrprof.count(NoMacOps(), (1, 3, 8, 8))
    assert counts.complete.uncounted_ops == {}
    kinds = {r.op: r.kind for r in counts.ops}
    assert kinds["aten._prelu_kernel"] == "elementwise"
    assert kinds["aten.embedding"] == "data_movement"
    assert kinds["aten.masked_fill_"] == kinds["aten.masked_fill"] if "aten.masked_fill" in kinds \
        else kinds["aten.masked_fill_"] == "data_movement"


@pytest.mark.parametrize("inplace,functional", [
    (aten.add_.Tensor, aten.add.Tensor),
    (aten.masked_fill_.Scalar, aten.masked_fill.Scalar),
    (aten.addmm_.default, aten.addmm.default),
    (aten.leaky_relu_.default, aten.leaky_relu.default),
])
def test_in_place_variants_classify_like_their_functional_op(inplace, functional):
    assert classify(inplace).kind == classify(functional).kind != "other"


@pytest.fixture()
def clean_registry():
    saved_f, saved_k = dict(formulas._FORMULAS), dict(formulas._KINDS)
    yield
    formulas._FORMULAS.clear()
    formulas._FORMULAS.update(saved_f)
    formulas._KINDS.clear()
    formulas._KINDS.update(saved_k)
    formulas._classify.cache_clear()


def test_a_formula_registered_after_a_count_applies_to_the_next(clean_registry):
    model = Cumulative()
    before = esrprof.count(model, (1, 3, 4, 4))
    assert before.complete.macs == 0

    @register_formula(aten.cumsum, kind="custom")
    def _cumsum(x, dim, *_, out, **__):
        return out.numel()

    after = esrprof.count(model, (1, 3, 4, 4))
    assert after.complete.macs == 3 * 4 * 4
    assert after.complete.macs_by_kind == {"custom": 48}


def test_duplicates_are_refused_unless_overridden(clean_registry):
    with pytest.raises(UsageError, match="already has a MAC formula"):
        register_formula(aten.convolution, kind="conv")(lambda *a, **k: 0)
    with pytest.raises(UsageError, match="already tallied"):
        register_kind("pooling", aten.cat)
    register_formula(aten.convolution, kind="conv", override=True)(lambda *a, out, **k: 1)
    assert esrprof.count(nn.Conv2d(3, 3, 3), (1, 3, 8, 8)).complete.macs == 1


def test_unknown_kinds_are_refused():
    with pytest.raises(UsageError):
        register_formula(aten.cumsum, kind="flops")
    with pytest.raises(UsageError):
        register_kind("conv", aten.cumsum)
    assert "custom" in MAC_KINDS


def test_per_call_formulas_override_for_one_count_only():
    conv = nn.Conv2d(3, 3, 3)
    plain = esrprof.count(conv, (1, 3, 8, 8)).complete.macs
    doubled = esrprof.count(conv, (1, 3, 8, 8), formulas={
        aten.convolution: lambda *a, out, **k: 2 * plain})
    assert doubled.complete.macs == 2 * plain
    assert doubled.complete.macs_by_kind == {"conv": 2 * plain}
    assert esrprof.count(conv, (1, 3, 8, 8)).complete.macs == plain
    extra = esrprof.count(Cumulative(), (1, 3, 4, 4),
                          formulas={aten.cumsum.default: ("matmul", lambda *a, out, **k: 5)})
    assert extra.complete.macs_by_kind == {"matmul": 5}
