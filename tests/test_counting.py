"""Counting leaves the model alone, reproduces IMDN, and falls back when shapes are not enough."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import esrprof
from reference_models.imdn import IMDN


@pytest.fixture(scope="module")
def imdn_counts():
    return esrprof.count(IMDN(), (1, 3, 256, 256))


def test_imdn_matches_the_challenge_table(imdn_counts):
    c = imdn_counts
    assert f"{c.params / 1e6:.3f}" == "0.894"
    assert f"{c.ntire2022.macs / 1e9:.2f}" == "58.53"
    assert f"{c.ntire2022.activations / 1e6:.2f}" == "154.14"
    assert c.ntire2022.convs == 43
    assert c.backend == "meta"
    assert c.buffers == 0


def test_imdn_complete_within_half_percent_of_fvcore():
    c = esrprof.count(IMDN(), (1, 3, 64, 64), counters=["fvcore"])
    rel = c.peer_rel_diff("fvcore")
    assert rel is not None and abs(rel) < 0.005


def test_count_cost_does_not_depend_on_input_size():
    # 4096x4096 would need ~17 GB of activations for real; meta tensors need none
    c = esrprof.count(IMDN(), (1, 3, 4096, 4096))
    assert c.backend == "meta"
    assert c.ntire2022.convs == 43
    assert c.seconds < 30


def _snapshot(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
        [p.device for p in model.parameters()],
        [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    )


def test_model_left_exactly_as_it_was():
    model = IMDN()
    model.train()
    model.model[1].eval()  # a submodule in eval must stay in eval
    model.model[0].weight.requires_grad_(False)
    before = _snapshot(model)
    rng = torch.get_rng_state()
    with torch.enable_grad():
        esrprof.count(model, (1, 3, 32, 32), counters="all")
        assert torch.is_grad_enabled()
    after = _snapshot(model)
    assert before[0] == after[0] and before[1] == after[1] and before[3] == after[3]
    assert before[4] == after[4]
    assert before[2].keys() == after[2].keys()
    assert all(torch.equal(before[2][k], after[2][k]) for k in before[2])
    assert torch.equal(rng, torch.get_rng_state())


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        if x.mean() > 0.0:  # needs a real value
            return self.conv(self.conv(x))
        return self.conv(x)


def test_data_dependent_branch_falls_back_to_one_real_forward():
    c = esrprof.count(DataDependent(), (1, 3, 16, 16))
    assert c.backend == "real"
    assert c.fallback_reason and "meta" in c.fallback_reason
    assert c.ntire2022.convs == 2  # the seeded input is in [0, 1): mean > 0


def test_fake_only_backend_refuses_instead_of_computing():
    with pytest.raises(esrprof.ModelError, match="forward failed"):
        esrprof.count(DataDependent(), (1, 3, 16, 16), backend="fake")


class KeepsCpuConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.mean = torch.full((1, 3, 1, 1), 0.5)  # a plain attribute, not a buffer
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x - self.mean)


def test_plain_tensor_attributes_still_count_on_meta():
    c = esrprof.count(KeepsCpuConstant(), (1, 3, 16, 16))
    assert c.backend == "meta"
    assert c.complete.elements_by_kind["elementwise"] == 3 * 16 * 16


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)
        self.inner = nn.Sequential(nn.ReLU())

    def forward(self, x):
        self.inner(self.conv(x))
        raise ValueError("boom")


def test_forward_that_raises_leaves_no_hook_and_restores_state():
    model = Raises()
    model.train()
    model.inner.eval()
    before = _snapshot(model)
    with pytest.raises(esrprof.ModelError, match="ValueError: boom"):
        esrprof.count(model, (1, 3, 8, 8))
    after = _snapshot(model)
    assert before[0] == after[0]
    assert before[4] == after[4]
    assert not model._forward_hooks and not model.conv._forward_pre_hooks


def test_wrong_input_shape_is_a_model_error():
    with pytest.raises(esrprof.ModelError, match="expected input"):
        esrprof.count(IMDN(), (1, 4, 16, 16))


@pytest.mark.parametrize("shape", [(), (1, 0, 4), (1, -3), ("a",)])
def test_bad_shapes_are_rejected(shape):
    with pytest.raises(esrprof.InputShapeError):
        esrprof.count(IMDN(), shape)


def test_buffers_reported_apart_from_params():
    c = esrprof.count(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), (1, 3, 4, 4))
    assert c.params == 3 * 4 + 4 + 4 + 4
    assert c.buffers == 4 + 4 + 1  # running mean, var, num_batches_tracked


def test_meta_model_counts_without_real_weights():
    with torch.device("meta"):
        model = IMDN()
    c = esrprof.count(model, (1, 3, 64, 64))
    assert c.ntire2022.convs == 43
    assert c.params == 893936


def test_peer_failure_is_a_note_not_a_crash():
    c = esrprof.count(DataDependent(), (1, 3, 8, 8), counters=["fvcore", "thop"])
    assert set(c.peers) == {"fvcore", "thop"}
    for peer in c.peers.values():
        assert peer.macs is not None or peer.error


def test_unknown_counter_is_a_usage_error():
    with pytest.raises(esrprof.UsageError, match="unknown counter"):
        esrprof.count(IMDN(), (1, 3, 8, 8), counters="ptflops")


def test_result_round_trips_through_json(tmp_path):
    counts = esrprof.count(IMDN(), (1, 3, 32, 32))
    result = esrprof.Result(model=esrprof.results.ModelInfo("IMDN"), input_shape=(1, 3, 32, 32),
                            counts=counts)
    path = result.save(tmp_path / "r.json")
    back = esrprof.load_result(path)
    assert back.counts.ntire2022 == counts.ntire2022
    assert back.counts.complete == counts.complete
    assert back.counts.divergences == counts.divergences
    assert back.to_dict()["counts"] == result.to_dict()["counts"]
