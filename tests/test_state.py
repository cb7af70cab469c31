"""``preserved()``: whatever a real forward does to the model inside it comes undone."""

from __future__ import annotations

import copy

import torch
from torch import nn

from esrprof.state import Snapshot, preserved
from tests.patterns import stateful


def test_a_real_forward_inside_preserved_leaves_no_trace():
    model = stateful.Counters()
    twin = copy.deepcopy(model)
    buffer, cache, history = model.seen, model.cache, model.history
    with preserved(model, eval_mode=True), torch.no_grad():
        model(torch.rand(1, 3, 8, 8))
        assert model.calls == 1 and model.seen.item() == 1 and not model.training
    assert model.calls == 0 and model.seen is buffer and model.seen.item() == 0
    assert model.cache is cache and cache == {} and model.history is history and history == []
    assert model.training
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(model(x), twin(x))


def test_weights_written_in_place_come_back():
    conv = nn.Conv2d(3, 3, 1)
    before = conv.weight.detach().clone()
    with preserved(conv), torch.no_grad():
        conv.weight.mul_(0)
        conv.bias.data = torch.zeros(5)
    assert torch.equal(conv.weight, before) and conv.bias.shape == (3,)


def test_a_failure_inside_is_restored_too():
    model = stateful.Counters()
    try:
        with preserved(model), torch.no_grad():
            model(torch.rand(1, 3, 4, 4))
            model.extra = nn.ReLU()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert model.calls == 0 and "extra" not in model._modules


class _Dataset:
    def __init__(self) -> None:
        self.images = [torch.rand(3, 4, 4) for _ in range(3)]


def test_only_the_models_own_tensors_are_copied():
    model = nn.Conv2d(3, 3, 1)
    model.data_source = _Dataset()  # a user object the model happens to hold
    snap = Snapshot.of_model(model, values=True)
    copied = {id(s.tensor) for s in snap.tensors if s.saved is not None}
    assert {id(model.weight), id(model.bias)} <= copied
    assert not copied & {id(t) for t in model.data_source.images}
    assert {id(t) for t in model.data_source.images} <= {id(s.tensor) for s in snap.tensors}
