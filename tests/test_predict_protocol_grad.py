"""The challenges' autograd state: their scripts set ``requires_grad = False`` on every
registered parameter and run the forward without ``no_grad``. Autograd then records only from
tensors the forward itself makes requiring grad; ``predict_challenge`` reproduces that."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrprof.counting.engine import trace
from esrprof.errors import UsageError
from esrprof.prediction import predict, predict_challenge
from esrprof.prediction.memory import LivenessObserver

SHAPE = (1, 3, 48, 48)


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1) for _ in range(4)])
        self.tail = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(F.relu(self.body(self.head(x))))


class RebuildsInEval(Plain):
    """An eval-time re-parameterisation that folds a 1x1 branch into the head's 3x3 and
    stores the result as a new Parameter on every forward: a fresh Parameter requires grad."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Conv2d(3, 16, 1)

    def forward(self, x):
        if not self.training:
            w = self.head.weight.detach() + F.pad(self.branch.weight.detach(), (1, 1, 1, 1))
            self.head.weight = nn.Parameter(w)
        return super().forward(x)


class UnregisteredWeight(Plain):
    """A weight kept as a plain tensor attribute: the scripts' loop never freezes it."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.ones(1, 16, 1, 1, requires_grad=True)

    def forward(self, x):
        return self.tail(F.relu(self.body(self.head(x) * self.gain)))


def _grad_flags(model: nn.Module) -> list[bool]:
    return [p.requires_grad for p in model.parameters()]


def test_a_plain_model_records_nothing_under_the_protocol():
    model = Plain()
    p = predict_challenge(model, "ntire2026")
    off = predict_challenge(model, "ntire2026", autograd=False)
    assert not p.autograd
    assert p.memory.peak_allocated_mib == off.memory.peak_allocated_mib
    assert all(_grad_flags(model))  # the parameters require grad again afterwards


@pytest.mark.parametrize("cls", [RebuildsInEval, UnregisteredWeight])
def test_what_the_forward_makes_requiring_grad_is_recorded(cls):
    model = cls().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = _grad_flags(model)
    p = predict_challenge(model, "ntire2026")
    off = predict_challenge(model, "ntire2026", autograd=False)
    assert p.autograd and not off.autograd
    # saved tensors live on: the recorded forward peaks higher
    assert p.memory.peak_allocated_mib > off.memory.peak_allocated_mib
    assert "autograd" in p.to_dict() and p.to_dict()["autograd"] is True
    # untouched: weights, the Parameter objects' flags, the module's own Parameter
    assert _grad_flags(model) == flags
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_frozen_model_still_records_its_rebuilt_parameter():
    """The scripts freeze before the first forward; a Parameter built later requires grad."""
    model = RebuildsInEval().eval().requires_grad_(False)
    assert predict_challenge(model, "ntire2026").autograd
    assert not any(_grad_flags(model))


def test_meta_liveness_equals_real_liveness_under_the_protocol():
    model = RebuildsInEval().eval()

    def events(backend):
        t = trace(model, SHAPE, lambda: [LivenessObserver()], backend=backend, grad="protocol")
        live = t.observers[0].result
        return [(e.step, e.sign, e.nbytes) for e in live.events], live.autograd_recorded

    assert events("meta") == events("real")
    assert events("meta")[1]


def test_the_card_says_why():
    from esrprof.card import prediction_block

    text = prediction_block(predict_challenge(RebuildsInEval().eval(), "ntire2026"))
    assert "autograd        ON" in text and "no no_grad" in text
    assert "autograd" not in prediction_block(predict_challenge(Plain(), "ntire2026"))


def test_bad_autograd_values_are_usage_errors():
    with pytest.raises(UsageError, match="autograd must be"):
        predict(Plain(), SHAPE, autograd="sometimes")
    with pytest.raises(UsageError, match="grad must be"):
        trace(Plain(), SHAPE, lambda: [LivenessObserver()], grad="sometimes")
