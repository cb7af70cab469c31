"""State outside the model: a count on the meta device leaves every container the forward can
reach as it was -- one a dict subclass whose ``__getitem__`` builds a new object (as
``transformers.activations.ACT2FN``), a cache in a helper module, a list a hook appends to."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import esrprof
from esrprof.loading import build

ACTS = """
from collections import OrderedDict

from torch import nn


class ClassInstantier(OrderedDict):
    # transformers.activations: every lookup builds a fresh module from the stored class
    def __getitem__(self, key):
        content = super().__getitem__(key)
        cls, kwargs = content if isinstance(content, tuple) else (content, {})
        return cls(**kwargs)


ACT2FN = ClassInstantier({"relu": nn.ReLU, "gelu_tanh": (nn.GELU, {"approximate": "tanh"})})
"""

HELPERS = """
import torch

_MASKS = {}


def mask(h, w, device):
    key = (h, w, str(device))
    if key not in _MASKS:
        _MASKS[key] = torch.ones(h, w, device=device)
    return _MASKS[key]
"""

NET = """
import esrprof_test_helpers as helpers
from esrprof_test_acts import ACT2FN
from esrprof_test_helpers import mask
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = ACT2FN["gelu_tanh"]

    def forward(self, x):
        y = self.act(self.conv(x))
        y = y * helpers.mask(y.shape[-2], y.shape[-1], y.device)
        return y + mask(y.shape[-2] , y.shape[-1], y.device)
"""


@pytest.fixture
def net(tmp_path, monkeypatch):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "esrprof_test_acts.py").write_text(ACTS)
    (folder / "esrprof_test_helpers.py").write_text(HELPERS)
    (folder / "outside_net.py").write_text(NET)
    monkeypatch.syspath_prepend(str(folder))
    yield build(f"{folder / 'outside_net.py'}:Net")
    for name in ("esrprof_test_acts", "esrprof_test_helpers"):
        sys.modules.pop(name, None)


def test_a_dict_subclass_that_builds_on_lookup_keeps_its_classes(net):
    acts = sys.modules["esrprof_test_acts"]
    raw = dict(dict.items(acts.ACT2FN))
    esrprof.count(net, (1, 3, 16, 16))
    # classes, not the instances lookups build
    assert list(dict.items(acts.ACT2FN)) == list(raw.items())
    assert type(acts.ACT2FN["relu"]) is nn.ReLU and acts.ACT2FN["relu"] is not \
        acts.ACT2FN["relu"]
    assert isinstance(acts.ACT2FN["gelu_tanh"], nn.GELU)
    assert list(acts.ACT2FN) == ["relu", "gelu_tanh"]  # the OrderedDict's own order intact


def test_a_helper_modules_cache_gets_no_meta_tensor(net):
    helpers = sys.modules["esrprof_test_helpers"]
    esrprof.count(net, (1, 3, 16, 16))
    assert helpers._MASKS == {}
    out = net(torch.rand(1, 3, 8, 8))  # a meta mask in the cache would fail here
    assert out.device.type == "cpu" and list(helpers._MASKS) == [(8, 8, "cpu")]
    esrprof.count(net, (1, 3, 8, 8))
    assert [t.device.type for t in helpers._MASKS.values()] == ["cpu"]


def test_a_hook_appending_to_an_outside_list_gets_no_meta_tensor(net):
    seen = []
    handle = net.register_forward_hook(lambda module, args, output: seen.append(output))

    class Recorder:
        def __init__(self):
            self.outputs = []

        def __call__(self, module, args, output):
            self.outputs.append(output)

    recorder = Recorder()
    other = net.conv.register_forward_hook(recorder)
    try:
        esrprof.count(net, (1, 3, 16, 16))
        assert seen == [] and recorder.outputs == []
        net(torch.rand(1, 3, 8, 8))
        assert len(seen) == 1 and seen[0].device.type == "cpu"
        assert len(recorder.outputs) == 1
    finally:
        handle.remove()
        other.remove()
