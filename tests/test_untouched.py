"""A count leaves the model exactly as it was, on every backend, whatever its forward does.

For each pattern in ``tests/patterns/stateful.py``: after ``count()`` the model's next real
forward equals an untouched deep copy's bit for bit, every attribute of every module is the same
object (or, for containers, holds the same objects), no meta or fake tensor is reachable, and the
counts equal a real forward's under torch's FlopCounterMode.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import esrprof
from esrprof.state import Snapshot
from tests.patterns import stateful
from tests.patterns.swin_style import SwinStyleSR

SHAPE = (1, 3, 16, 16)
BACKENDS = ("auto", "fake", "real")
PATTERNS = [
    stateful.RebindsMean,
    stateful.Counters,
    stateful.MaskFromSize,
    stateful.Reparam,
    stateful.ScalesInputInPlace,
    stateful.Caches,
]


def _identity(model: nn.Module) -> dict:
    """Every attribute of every module, by object identity (containers by their contents)."""
    out = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for key, value in vars(module).items():
            if isinstance(value, dict):
                value = (id(value), tuple((k, id(v)) for k, v in value.items()))
            elif isinstance(value, list):
                value = (id(value), tuple(id(v) for v in value))
            elif isinstance(value, (int, float, str, bool, type(None))):
                value = ("value", value)
            else:
                value = id(value)
            out[(path, key)] = value
    return out


def _values(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}


def _real_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    twin = copy.deepcopy(model).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        twin(torch.rand(shape))
    return counter.get_total_flops() // 2


def _fixed_input(shape=SHAPE) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(7))


def _assert_untouched(model: nn.Module, twin: nn.Module, ids: dict, values: dict) -> None:
    assert _identity(model) == ids
    for k, v in _values(model).items():
        assert v.device == values[k].device and torch.equal(v, values[k]), k
    leaked = [t for t in Snapshot.of_model(model).tensors
              if t.tensor.device.type == "meta" or type(t.tensor).__name__ == "FakeTensor"]
    assert not leaked
    for mode in ("train", "eval"):  # the next real forwards, in both modes, bit for bit
        model.train(mode == "train")
        twin.train(mode == "train")
        with torch.no_grad():
            assert torch.equal(model(_fixed_input()), twin(_fixed_input())), mode


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.__name__)
def test_count_leaves_the_model_as_it_was(pattern, backend):
    torch.manual_seed(0)
    model = pattern()
    twin = copy.deepcopy(model)
    ids, values = _identity(model), _values(model)
    expected = _real_macs(model, SHAPE)
    counts = esrprof.count(model, SHAPE, backend=backend)
    assert counts.complete.macs == expected
    if backend != "fake":  # the challenge's hooks see only modules that exist before the forward
        assert counts.ntire2022.convs == (0 if pattern is stateful.Reparam else 1 + (
            pattern is stateful.RebindsMean))
    _assert_untouched(model, twin, ids, values)


@pytest.mark.parametrize("backend", ("auto", "fake"))
def test_no_real_compute_and_no_real_tensors_on_the_shape_backends(backend):
    model = stateful.Counters()
    counts = esrprof.count(model, SHAPE, backend=backend)
    assert counts.backend in ("meta", "fake")
    assert model.calls == 0 and model.history == [] and model.cache == {}
    assert model.seen.item() == 0


def test_a_model_that_needs_values_falls_back_from_the_untouched_model():
    torch.manual_seed(0)
    model = stateful.Router()
    twin = copy.deepcopy(model)
    ids, values = _identity(model), _values(model)
    counts = esrprof.count(model, SHAPE)
    assert counts.backend == "real"
    assert "item" in (counts.fallback_reason or "")
    assert counts.complete.macs == _real_macs(model, SHAPE)
    _assert_untouched(model, twin, ids, values)
    assert esrprof.count(model, SHAPE, backend="real").complete.macs == counts.complete.macs


def test_shape_only_backend_names_the_real_cause():
    model = stateful.Router()
    with pytest.raises(esrprof.ModelError, match=r"item\(\)") as info:
        esrprof.count(model, SHAPE, backend="fake")
    assert "backend='real'" in str(info.value)
    assert model.mean.device.type == "cpu"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forward_that_raises_after_assigning_leaves_nothing_behind(backend):
    torch.manual_seed(0)
    model = stateful.RaisesAfterAssign()
    weight = model.conv.weight
    ids, values = _identity(model), _values(model)
    with pytest.raises(esrprof.ModelError, match="the model gave up"):
        esrprof.count(model, SHAPE, backend=backend)
    assert _identity(model) == ids
    assert model.conv.weight is weight and model.state is None
    for k, v in _values(model).items():
        assert torch.equal(v, values[k]), k


@pytest.mark.parametrize("backend", BACKENDS)
def test_sys_exit_in_a_forward_is_a_model_error(backend):
    with pytest.raises(esrprof.ModelError, match=r"sys\.exit\(0\)"):
        esrprof.count(stateful.SysExit(), SHAPE, backend=backend)


@pytest.mark.parametrize("size", [32, 48])
def test_swin_style_counts_equal_flop_counter_mode_and_leave_it_untouched(size):
    torch.manual_seed(0)
    model = SwinStyleSR(dim=16, stages=1, depth=2, ws=8, heads=2)
    twin = copy.deepcopy(model)
    ids, values = _identity(model), _values(model)
    shape = (1, 3, size, size)
    counts = esrprof.count(model, shape)
    assert counts.backend == "meta"
    assert counts.complete.macs == _real_macs(model, shape)
    assert not counts.complete.uncounted_ops
    _assert_untouched(model, twin, ids, values)


def test_tensors_created_in_the_forward_are_meta_so_cost_is_flat():
    """Masks built from the input size must not be built for real: count what runs on CPU."""
    from esrprof.counting.engine import Observer, trace

    class Devices(Observer):
        def __init__(self) -> None:
            self.devices: set[str] = set()

        def on_op(self, func, args, kwargs, out, module):
            if isinstance(out, torch.Tensor):
                self.devices.add(out.device.type)

    result = trace(SwinStyleSR(dim=16, stages=1, depth=2), (1, 3, 64, 64), lambda: [Devices()])
    assert result.backend == "meta"
    assert result.observers[0].devices == {"meta"}


def test_counts_are_identical_when_repeated():
    model = SwinStyleSR(dim=16, stages=1, depth=2)
    a = esrprof.count(model, (1, 3, 40, 40))
    b = esrprof.count(model, (1, 3, 40, 40))
    assert a.ops == b.ops and a.ntire2022_layers == b.ntire2022_layers
