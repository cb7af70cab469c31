"""The ntire2024 convention equals fvcore's ``FlopCountAnalysis(model, x).total()`` to the
integer, on small patterns of every kind fvcore has a rule (or a quirk) for and on the reference
models, from the meta trace, leaving the model untouched.

fvcore is the oracle: each pattern runs through it on a deep copy with a real input.
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import esrprof
from esrprof.results import Counts
from reference_models import bsrn, efdn, efdn_plain, fmen, imdn, imdn_plus, mobilesr, rfdn, rlfn
from tests.patterns import stateful
from tests.patterns.swin_style import SwinStyleSR
from tests.test_untouched import _assert_untouched, _identity, _values

SHAPE = (1, 3, 16, 16)


def fvcore_total(model: nn.Module, shape: tuple[int, ...]) -> int:
    from fvcore.nn import FlopCountAnalysis

    twin = copy.deepcopy(model).eval()  # as the challenge's test_demo.py prepares it
    for p in twin.parameters():
        p.requires_grad = False
    analysis = FlopCountAnalysis(twin, torch.rand(shape))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    total = analysis.total()
    assert total == int(total)
    return int(total)


# ------------------------------------------------------------------------------ patterns


class Tokens(nn.Module):
    """Conv features as (B, N, C) tokens, a block on them, and back."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def block(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        b, c, h, w = f.shape
        t = self.block(f.flatten(2).transpose(1, 2), h, w)
        return self.tail(t.transpose(1, 2).reshape(b, c, h, w))


class AttentionMatmul(Tokens):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.proj = nn.Linear(8, 8)

    def block(self, t, h, w):
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)
        out = attn.matmul(v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out) + torch.bmm(t.transpose(1, 2), t).mean() * 0


class AttentionSDPA(Tokens):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24, bias=False)

    def block(self, t, h, w):
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, n, c)


class MultiHead(Tokens):
    """nn.MultiheadAttention four ways: the fused fast path (batch-first self-attention in
    eval), sequence-first with the weights returned (two bmm), without them (SDPA), and
    cross-attention (separate in-projections)."""

    def __init__(self) -> None:
        super().__init__()
        self.fast = nn.MultiheadAttention(8, 2, batch_first=True)
        self.seq_first = nn.MultiheadAttention(8, 2)
        self.odd_heads = nn.MultiheadAttention(8, 1, batch_first=True)
        self.cross = nn.MultiheadAttention(8, 2, batch_first=True)

    def block(self, t, h, w):
        s = t.transpose(0, 1)
        out = self.fast(t, t, t)[0] + self.seq_first(s, s, s)[0].transpose(0, 1)
        out = out + self.odd_heads(t, t, t, need_weights=False)[0]
        return out + self.cross(t, t[:, :8], t[:, :8])[0]


class Einsums(Tokens):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.rand(8, 8))

    def block(self, t, h, w):
        a = torch.einsum("bnc,bmc->bnm", t, t)  # numpy's path
        b = torch.einsum("bnm,bmc->bnc", a, t)  # numpy's path
        c = torch.einsum("abc,abd->acd", t, t)  # fvcore's first special case
        d = torch.einsum("xyz,xwz->xwy", t, t)  # the second, after renaming letters
        e = torch.einsum("bnc,cd->bnd", [t, self.w])  # operands as a list
        f = torch.einsum("bnc,cd,de->bne", t, self.w, self.w)  # three operands
        g = torch.einsum("...c,cd->...d", t, self.w)  # ellipsis
        i = torch.einsum(t, [0, 1, 2], self.w, [2, 3], [0, 1, 3])  # sublists
        heads = t.reshape(1, -1, 2, 4).transpose(1, 2)
        j = torch.einsum("bhnd,bhmd->bhnm", heads, heads).sum(-1, keepdim=True)
        return b + e + f + g + i + c.sum() * 0 + d.sum() * 0 + j.mean()


class Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.bn_plain = nn.BatchNorm2d(8, affine=False)
        self.bn_batch_stats = nn.BatchNorm2d(8, track_running_stats=False)
        self.ln = nn.LayerNorm(8)
        self.ln_plain = nn.LayerNorm(8, elementwise_affine=False)
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8)
        self.inorm_affine = nn.InstanceNorm2d(8, affine=True)

    def forward(self, x):
        f = self.bn_batch_stats(self.bn_plain(self.bn(self.conv(x))))
        f = self.inorm_affine(self.inorm(self.gn(f)))
        cl = f.permute(0, 2, 3, 1)  # channels-last, as ConvNeXt-style blocks normalize
        cl = self.ln_plain(self.ln(cl)) + F.layer_norm(cl, (8,))
        return cl.permute(0, 3, 1, 2)


class Resampling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        f = self.conv(x)
        out = F.interpolate(f, scale_factor=2, mode="nearest") + self.up(f)
        out = out + F.interpolate(f, size=out.shape[-2:], mode="bicubic", align_corners=False)
        out = out + F.interpolate(f, scale_factor=2, mode="nearest-exact")
        out = out + F.interpolate(f, scale_factor=2, mode="bilinear", antialias=True)
        down = F.interpolate(out, scale_factor=0.5, mode="area")
        grid = torch.zeros(1, 8, 8, 2) + 0.1
        return down + F.grid_sample(f, grid, align_corners=False).mean()


class Pooling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.ca = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        f = self.conv(x)
        f = f * torch.sigmoid(self.ca(self.gap(f)))
        f = f + F.adaptive_avg_pool2d(f, (4, 4)).mean() + F.adaptive_max_pool2d(f, 2).mean()
        p = F.max_pool2d(f, 3, stride=2, padding=1) + F.avg_pool2d(f, 3, stride=2, padding=1)
        return F.interpolate(p, scale_factor=2)


class Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(8, 8, 5, padding=2, groups=8)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.same = nn.Conv2d(8, 8, 3, padding="same")
        self.reflect = nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect")
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1)
        self.up_odd = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.line = nn.Conv1d(8, 8, 3, padding=1)
        self.w = nn.Parameter(torch.rand(4, 8, 1, 1))

    def forward(self, x):
        f = self.depthwise(self.grouped(self.head(x)))
        f = self.reflect(self.same(self.dilated(f)))
        f = self.up(self.down(f))
        b, c, h, w = f.shape
        f = f + self.line(f.flatten(2)).reshape(b, c, h, w)
        f = F.conv2d(f, self.w) + F.conv2d(f, self.w, padding="valid")
        return self.up_odd(torch.cat([f, f], 1)) + F.conv_transpose2d(
            F.pad(f, (0, 0, 0, 0)), self.w, stride=2, output_padding=1)[:, :4]


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)
        self.unshuffle = nn.PixelUnshuffle(2)

    def forward(self, x):
        return self.unshuffle(self.shuffle(self.conv(x)))


class LinearTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc_nc = nn.Linear(8, 16)
        self.fc_hwc = nn.Linear(8, 8)  # a 1x1 conv as BSRN writes it
        self.fc_vec = nn.Linear(8, 4)
        self.w = nn.Parameter(torch.rand(8, 8))

    def forward(self, x):
        f = self.conv(x)
        tokens = self.fc_nc(f.flatten(2).transpose(1, 2))
        cl = self.fc_hwc(f.permute(0, 2, 3, 1)) + F.linear(f.permute(0, 2, 3, 1), self.w)
        vec = self.fc_vec(f.mean((2, 3)))
        mats = torch.mm(vec.t(), vec) + torch.addmm(self.w[:4, :4], vec.t(), vec)
        broad = torch.matmul(self.w, f.flatten(2))  # a batch only the right operand has
        return (cl.permute(0, 3, 1, 2) + tokens.mean() + mats.mean() + broad.mean()
                + torch.baddbmm(f.flatten(2), self.w.expand(1, 8, 8), f.flatten(2)).mean())


class _Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        return F.conv2d(x, w, padding=1) * 2 + F.linear(x.permute(0, 2, 3, 1), w[:, :, 1, 1]
                                                        ).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class CustomFunction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.w = nn.Parameter(torch.rand(8, 8, 3, 3))

    def forward(self, x):
        return _Scale.apply(self.conv(x), self.w)


class ItemRouting(nn.Module):
    """Picks a branch with ``.item()`` (needs a real forward); any torch.rand input takes the
    first branch, so fvcore's trace and ours follow the same path."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 5, padding=2)

    def forward(self, x):
        return self.a(x) if x.mean().item() >= 0 else self.b(x)


class SmallSwin(SwinStyleSR):
    """Shifted-window attention with masks built from the input size, two blocks deep."""

    def __init__(self) -> None:
        super().__init__(dim=16, stages=1, depth=2, ws=4, heads=2)


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.LayerNorm(3)

    def forward(self, x):
        y = self.conv(self.conv(x))
        return self.norm(self.norm(y.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)


PATTERNS = [AttentionMatmul, AttentionSDPA, MultiHead, Einsums, Norms, Resampling, Pooling,
            Convs, Shuffle, LinearTokens, CustomFunction, ItemRouting, Shared,
            stateful.MaskFromSize, stateful.RebindsMean, SmallSwin]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.__name__)
def test_equals_fvcore_on_each_pattern_and_leaves_the_model_untouched(pattern):
    torch.manual_seed(0)
    model = pattern().eval()
    twin = copy.deepcopy(model)
    ids, values = _identity(model), _values(model)
    expected = fvcore_total(model, SHAPE)
    counts = esrprof.count(model, SHAPE)
    assert counts.ntire2024.macs == expected
    _assert_untouched(model, twin, ids, values)


def test_patterns_exercise_what_they_claim():
    """The patterns reach the rules and the quirks: each count below is non-zero, or zero,
    as fvcore's rule says; a rule that silently counted nothing would pass equality tests on
    models that use it only by accident."""
    by_op = {}
    for pattern in PATTERNS[:13]:
        for r in esrprof.count(pattern().eval(), SHAPE).ntire2024_layers:
            by_op[r.op] = by_op.get(r.op, 0) + r.macs
    for op in ("_convolution", "linear", "matmul", "mm", "bmm", "addmm", "einsum", "batch_norm",
               "group_norm", "layer_norm", "instance_norm", "upsample_nearest2d",
               "upsample_bilinear2d", "adaptive_avg_pool2d", "grid_sampler"):
        assert by_op.get(op, 0) > 0, op
    assert by_op["_convolution_mode"] == 0 and by_op["PythonOp"] == 0


def test_item_routing_counts_on_the_real_backend():
    counts = esrprof.count(ItemRouting(), SHAPE)
    assert counts.backend == "real"
    assert counts.ntire2024.macs == 27 * 3 * 16 * 16


def test_activations_and_convs_are_the_2022_hooks():
    counts = esrprof.count(Convs(), SHAPE)
    assert counts.ntire2024.activations == counts.ntire2022.activations > 0
    assert counts.ntire2024.convs == counts.ntire2022.convs == 9  # Conv1d is not hooked


def test_divergences_name_what_fvcore_adds_and_skips():
    counts = esrprof.count(Norms(), SHAPE)
    reasons = {d.module: d.reason for d in counts.ntire2024_divergences}
    assert "normalization" in reasons["bn"] and "normalization" in reasons["ln"]
    assert all(d.complete_macs == 0 for d in counts.ntire2024_divergences if d.module != "")
    sdpa = esrprof.count(AttentionSDPA(), SHAPE)
    (div,) = [d for d in sdpa.ntire2024_divergences if d.module == ""]
    assert "scaled_dot_product" in div.reason and div.ntire2024_macs == 0
    fn = esrprof.count(CustomFunction(), SHAPE)
    assert any("autograd.Function" in d.reason for d in fn.ntire2024_divergences)
    # the module totals add up to the difference of the two conventions
    for c in (counts, sdpa, fn):
        assert sum(d.difference for d in c.ntire2024_divergences) == (
            c.ntire2024.macs - c.complete.macs)


def test_to_dict_carries_the_convention_and_reads_back():
    counts = esrprof.count(Resampling(), SHAPE)
    data = counts.to_dict()
    assert data["ntire2024"] == {"macs": counts.ntire2024.macs,
                                 "activations": counts.ntire2022.activations,
                                 "convs": counts.ntire2022.convs}
    back = Counts.from_dict(data, SHAPE)
    assert back.ntire2024 == counts.ntire2024
    assert back.ntire2024_divergences == counts.ntire2024_divergences
    del data["ntire2024_layers"]  # a record written before the convention existed
    assert Counts.from_dict(data, SHAPE).ntire2024 is None


REFERENCE = [imdn.IMDN, rfdn.RFDN, rlfn.RLFN, fmen.FMEN, efdn.EFDN, bsrn.BSRN,
             imdn_plus.IMDNPlus, efdn_plain.PlainEFDN, mobilesr.MobileSR]


@pytest.mark.parametrize("cls", REFERENCE, ids=lambda c: c.__name__)
def test_reference_models_equal_fvcore(cls):
    shape = (1, 3, 32, 32)
    model = cls().eval()
    assert esrprof.count(model, shape).ntire2024.macs == fvcore_total(model, shape)
