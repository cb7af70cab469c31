"""Each formula against shapes worked out by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import esrprof


def _one(model: nn.Module, shape) -> esrprof.Counts:
    return esrprof.count(model, shape)


def test_plain_conv_hand_count():
    c = _one(nn.Conv2d(3, 8, 3, padding=1), (2, 3, 10, 12))
    expected = 2 * 10 * 12 * 8 * 3 * 3 * 3  # batch·H·W·Cout·Cin·kh·kw
    assert c.ntire2022.macs == expected
    assert c.complete.macs == expected
    assert c.ntire2022.activations == 2 * 8 * 10 * 12
    assert c.ntire2022.convs == 1
    assert c.divergences == ()


def test_grouped_conv():
    c = _one(nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), (1, 8, 6, 6))
    assert c.complete.macs == 6 * 6 * 16 * (8 // 4) * 9
    assert c.ntire2022.macs == c.complete.macs


def test_depthwise_conv_with_stride():
    c = _one(nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16), (1, 16, 9, 9))
    assert c.complete.macs == 5 * 5 * 16 * 1 * 9
    assert c.ntire2022.activations == 16 * 5 * 5


def test_conv_transpose_quirk():
    # ntire2022 counts on the output size, the complete count on the input positions
    c = _one(nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1), (1, 4, 5, 7))
    assert c.ntire2022.macs == 4 * 4 * 4 * 6 * 10 * 14
    assert c.complete.macs == 4 * 4 * 4 * 6 * 5 * 7
    assert c.ntire2022.activations == 6 * 10 * 14
    assert c.ntire2022.convs == 1
    (div,) = c.divergences
    assert "ConvTranspose2d" in div.reason


def test_linear_2d_agrees():
    c = _one(nn.Linear(32, 10), (4, 32))
    assert c.complete.macs == 4 * 32 * 10
    assert c.ntire2022.macs == 4 * 32 * 10
    assert c.complete.macs_by_kind == {"linear": 4 * 32 * 10}
    assert c.ntire2022.convs == 0  # a Linear is not a conv for the challenge


def test_linear_3d_tokens_quirk():
    c = _one(nn.Linear(32, 48), (2, 100, 32))
    assert c.complete.macs == 2 * 100 * 32 * 48
    assert c.ntire2022.macs == 2 * 100 * 100  # batch · in.shape[1] · out.shape[1] = B·N·N
    (div,) = c.divergences
    assert "Linear on a >2-D input" in div.reason


def test_linear_4d_channels_last_quirk():
    # BSRN style: a 1x1 conv as Linear on (B, H, W, C)
    c = _one(nn.Linear(16, 24), (1, 8, 8, 16))
    assert c.complete.macs == 8 * 8 * 16 * 24
    assert c.ntire2022.macs == 1 * 8 * 8  # in.shape[1] = H, out.shape[1] = H


class MatmulAttention(nn.Module):
    def forward(self, x):  # x: (B, N, C)
        attn = torch.softmax(x @ x.transpose(-1, -2), dim=-1)
        return attn @ x


class EinsumAttention(nn.Module):
    def forward(self, x):
        attn = torch.einsum("bnc,bmc->bnm", x, x).softmax(-1)
        return torch.einsum("bnm,bmc->bnc", attn, x)


@pytest.mark.parametrize("cls", [MatmulAttention, EinsumAttention])
def test_attention_matmuls(cls):
    b, n, ch = 2, 50, 16
    c = _one(cls(), (b, n, ch))
    assert c.complete.macs == 2 * b * n * n * ch  # q·kᵀ and attn·v
    assert c.complete.macs_by_kind == {"matmul": 2 * b * n * n * ch}
    assert c.complete.elements_by_kind["softmax"] == b * n * n
    assert c.ntire2022.macs == 0
    (div,) = c.divergences
    assert div.reason.startswith("functional ops not hooked")


def test_scaled_dot_product_attention():
    class SDPA(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    b, h, n, e = 1, 2, 64, 8
    c = _one(SDPA(), (b, h, n, e))
    assert c.complete.macs == 2 * b * h * n * n * e


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(self.act(self.conv(x))))


def test_module_called_twice_counts_twice():
    c = _one(Twice(), (1, 4, 8, 8))
    one = 8 * 8 * 4 * 4 * 9
    assert c.ntire2022.macs == 2 * one + 2 * 4 * 8 * 8  # two convs, two ReLU outputs
    assert c.ntire2022.convs == 2
    assert c.complete.macs == 2 * one
    (conv,) = [r for r in c.ntire2022_layers if r.module == "conv"]
    assert conv.calls == 2


def test_shared_module_counts_once_per_call_and_params_once():
    shared = nn.Conv2d(4, 4, 3, padding=1)

    class Parent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = shared

        def forward(self, x):
            return self.conv(x)

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Parent(), Parent()

        def forward(self, x):
            return self.b(self.a(x))

    c = _one(Both(), (1, 4, 8, 8))
    assert c.params == 4 * 4 * 9 + 4
    assert c.ntire2022.convs == 2
    assert c.complete.macs == 2 * 8 * 8 * 4 * 4 * 9


def test_pixel_shuffle_is_not_a_mac():
    c = _one(nn.Sequential(nn.Conv2d(3, 48, 1), nn.PixelShuffle(4)), (1, 3, 4, 4))
    assert c.complete.macs == 4 * 4 * 48 * 3
    assert c.ntire2022.macs == c.complete.macs
    assert c.complete.elements_by_kind["data_movement"] == 3 * 16 * 16
    assert any(r.op == "aten.pixel_shuffle" for r in c.ops)


def test_interpolate_is_resampling():
    class Up(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    c = _one(Up(), (1, 3, 5, 7))
    assert c.complete.macs == 0
    assert c.complete.elements_by_kind == {"resampling": 3 * 10 * 14}


def test_batchnorm_and_activations_rules():
    model = nn.Sequential(nn.BatchNorm2d(4), nn.BatchNorm2d(4, affine=False), nn.PReLU(),
                          nn.GELU())
    c = _one(model, (1, 4, 3, 3))
    n = 4 * 3 * 3
    assert c.ntire2022.macs == 2 * n + n + n  # BN affine 2x, BN 1x, PReLU, GELU not counted
    assert c.complete.macs == 0
    assert c.complete.elements_by_kind["normalization"] == 2 * n
