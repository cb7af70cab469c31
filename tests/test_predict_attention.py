"""Attention as GPUs run it, memory under autograd, torch's globals after a prediction, and the
one vocabulary of op kinds (Linear labelled once, subclasses included)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrprof import kinds
from esrprof.counting import formulas
from esrprof.counting.engine import count
from esrprof.prediction import kinds as prediction_kinds
from esrprof.prediction import predict, predict_challenge
from esrprof.prediction.attention import sdpa_backend

MIB = 1024**2


class Sdpa(nn.Module):
    """2 heads of 16 over every pixel: L = H*W tokens."""

    def __init__(self, mask: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(32, 96, 1)
        self.mask = mask

    def forward(self, x):
        b, _, h, w = x.shape
        t = self.qkv(x).flatten(2).transpose(1, 2).reshape(b, h * w, 3, 2, 16)
        q, k, v = t.permute(2, 0, 3, 1, 4)
        mask = torch.ones(h * w, h * w, dtype=torch.bool, device=x.device) if self.mask else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Manual(Sdpa):
    def forward(self, x):
        b, _, h, w = x.shape
        t = self.qkv(x).flatten(2).transpose(1, 2).reshape(b, h * w, 3, 2, 16)
        q, k, v = t.permute(2, 0, 3, 1, 4)
        return ((q @ k.transpose(-2, -1)) * 0.25).softmax(-1) @ v


@pytest.mark.parametrize("generation, dtype, head, mask, want", [
    ("ampere", torch.float16, 64, False, "flash"),
    ("ampere", torch.bfloat16, 128, False, "flash"),
    ("ampere", torch.float16, 64, True, "efficient"),  # flash takes no explicit mask
    ("ampere", torch.float32, 64, False, "efficient"),  # flash is 16-bit only
    ("ampere", torch.float16, 320, False, "efficient"),  # flash: head size <= 256
    ("turing", torch.float16, 64, False, "efficient"),  # flash needs sm80+
    ("pascal", torch.float32, 32, False, "efficient"),
    ("pascal", torch.bfloat16, 32, False, "math"),  # bf16 fused kernels need sm80+
    ("ampere", torch.float32, 30, False, "math"),  # fp32 head size not a multiple of 4
    ("", torch.float16, 64, False, "math"),  # a GPU of unknown generation
])
def test_sdpa_backend_follows_pytorchs_rules(generation, dtype, head, mask, want):
    assert sdpa_backend(generation, dtype, head, has_mask=mask) == want


def test_fused_sdpa_stores_no_score_matrix():
    shape = (1, 32, 64, 64)  # L = 4096: one fp32 L x L score matrix per head is 64 MiB
    fused = predict(Sdpa(), shape, "rtx-a6000")
    assert fused.attention == ("efficient",)
    math_path = predict(Sdpa(), shape, "custom:fp32_tflops=10,bandwidth_gbs=500")
    assert math_path.attention == ("math",)
    assert math_path.memory.peak_allocated_mib > 2 * 64
    assert fused.memory.peak_allocated_mib < 8
    half = predict(Sdpa(), shape, "rtx-a6000", torch.float16)
    assert half.attention == ("flash",) and half.memory.peak_allocated_mib < 4
    masked = predict(Sdpa(mask=True), shape, "rtx-a6000", torch.float16)
    assert masked.attention == ("efficient",)
    # one fused kernel costed by its arithmetic and its q, k, v and output traffic
    assert fused.runtime.kernels < math_path.runtime.kernels


def test_manual_attention_keeps_its_score_matrix():
    p = predict(Manual(), (1, 32, 64, 64), "rtx-a6000")
    assert p.attention == () and p.memory.peak_allocated_mib > 2 * 64


def test_autograd_keeps_saved_tensors_alive_and_is_flagged():
    from esrprof.zoo.registry import REGISTRY

    model = REGISTRY["IMDN"].build()
    shape = (1, 3, 64, 64)
    inference = predict(model, shape)
    recording = predict(model, shape, autograd=True)
    assert not inference.autograd and recording.autograd
    assert recording.memory.peak_allocated_mib > 3 * inference.memory.peak_allocated_mib
    # None: the caller's context decides
    assert predict(model, shape, autograd=None).autograd
    with torch.no_grad():
        assert not predict(model, shape, autograd=None).autograd
    frozen = REGISTRY["IMDN"].build().requires_grad_(False)
    assert not predict(frozen, shape, autograd=None).autograd
    # the challenge presets measure without autograd
    assert not predict_challenge(model).autograd
    assert predict_challenge(model, autograd=True).to_dict()["autograd"] is True


class Meddler(nn.Module):
    """A forward that changes torch's globals."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(1)
        torch.manual_seed(1234)
        torch.set_grad_enabled(True)
        return self.conv(x)


def test_predict_restores_torchs_globals():
    model = Meddler()  # built first: its initialisation draws from the RNG
    before = (torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled())
    rng = torch.get_rng_state()
    try:
        with torch.no_grad():
            predict(model, (1, 3, 8, 8))
            assert not torch.is_grad_enabled()
        predict_challenge(model, "ntire2025")
        assert (torch.get_default_dtype(), torch.get_num_threads(),
                torch.is_grad_enabled()) == before
        assert torch.equal(torch.get_rng_state(), rng)
    finally:
        torch.set_default_dtype(before[0])
        torch.set_num_threads(before[1])


class MyLinear(nn.Linear):
    pass


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = MyLinear(8, 8)
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)
        return self.fc(t) @ self.w


def test_linear_subclasses_are_labelled_linear_once_for_every_observer():
    counts = count(Tokens(), (1, 8, 4, 4))
    by_module = {(r.module, r.kind) for r in counts.ops if r.kind in ("linear", "matmul")}
    assert ("fc", "linear") in by_module and ("", "matmul") in by_module
    from esrprof.prediction.api import _run_trace

    rows = _run_trace(Tokens(), (1, 8, 4, 4), "meta", None, cost=True)[0].observers[1].rows
    assert {r.kind for r in rows if r.module == "fc" and r.flops} == {"linear"}


def test_one_vocabulary_of_op_kinds():
    assert formulas.KINDS is kinds.OP_KINDS
    assert prediction_kinds.KINDS == kinds.TIME_KINDS
    for k in kinds.OP_KINDS:
        assert kinds.group_of(k) in kinds.TIME_GROUPS
    assert set(kinds.TIME_WORDS) == set(kinds.TIME_KINDS) == set(kinds.TIME_LABELS)
    assert set(kinds.ARITHMETIC_PEAK) == set(kinds.MAC_KINDS)
