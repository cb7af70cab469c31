"""The meta fast path (``esrprof.counting.shapes``) gives what the ops themselves give.

Each case runs the op for real on small CPU tensors and through ``meta_call`` on meta tensors
of the same shapes: outputs must agree in shape and dtype (and storage sharing, for views)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._pytree import tree_flatten, tree_map

from esrprof.counting.shapes import meta_call

aten = torch.ops.aten


def _to_meta(value):
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    return value


def r(*shape, dtype=torch.float32):
    return torch.rand(shape).to(dtype)


CASES = [
    (aten.convolution.default, (r(1, 4, 9, 7), r(6, 2, 3, 3), None, [2, 1], [1, 0], [1, 2],
                                False, [0, 0], 2)),
    (aten.convolution.default, (r(1, 4, 5, 6), r(4, 3, 3, 3), None, [2, 2], [1, 1], [1, 1],
                                True, [1, 0], 1)),
    (aten.convolution.default, (r(2, 3, 8, 8).contiguous(memory_format=torch.channels_last),
                                r(5, 3, 1, 1), r(5), [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.cat.default, ([r(1, 2, 4, 4), r(1, 3, 4, 4), torch.empty(0)], 1)),
    (aten.cat.default, ([r(2, 3), r(2, 3, dtype=torch.float64)], -2)),
    (aten.addmm.default, (r(5), r(3, 4), r(4, 5))),
    (aten.mm.default, (r(3, 4), r(4, 2))),
    (aten.bmm.default, (r(2, 3, 4), r(2, 4, 5))),
    (aten.native_layer_norm.default, (r(2, 5, 8), [8], r(8), r(8), 1e-5)),
    (aten.roll.default, (r(1, 4, 5, 5), [1, -2], [2, 3])),
    (aten._prelu_kernel.default, (r(1, 3, 4, 4), r(3, 1, 1))),
    (aten.upsample_bilinear2d.default, (r(1, 2, 5, 7), [10, 14], False)),
    (aten.upsample_nearest2d.default, (r(1, 2, 5, 7), [9, 3])),
    (aten._softmax.default, (r(2, 3, 4), -1, False)),
    (aten.pixel_shuffle.default, (r(1, 12, 3, 5), 2)),
    (aten.reflection_pad2d.default, (r(1, 2, 5, 5), [1, 2, 3, 0])),
    (aten.replication_pad2d.default, (r(2, 5, 5), [2, 2, 1, 1])),
    (aten.max_pool2d_with_indices.default, (r(1, 2, 7, 9), [3, 3], [2, 2], [1, 1], [1, 1], True)),
    (aten.max_pool2d_with_indices.default, (r(1, 2, 8, 8), [2, 2], [], [0, 0], [1, 1], False)),
    (aten.index.Tensor, (r(5, 4, 3), [torch.tensor([0, 2, 4])])),
    (aten.index.Tensor, (r(5, 4, 3), [None, torch.tensor([[0, 1], [2, 3]])])),
    (aten.index.Tensor, (r(5, 4, 3), [torch.tensor([0, 1]), None, torch.tensor([1, 2])])),
    (aten.leaky_relu.default, (r(1, 3, 4, 4), 0.2)),
    (aten.add.Tensor, (r(1, 3, 1, 4), r(2, 1, 5, 4, dtype=torch.float64))),
    (aten.eq.Scalar, (r(2, 3), 0.5)),
    (aten.where.self, (r(2, 3) > 0.5, r(1, 3), r(2, 1))),
    (aten.gelu.default, (r(2, 3).to(torch.bfloat16),)),
    (aten.masked_fill.Scalar, (r(1, 4, 4), r(1, 4, 4) > 0.5, -100.0)),
]


@pytest.mark.parametrize("func,args", CASES, ids=lambda c: str(c)[:40])
def test_meta_call_agrees_with_the_op(func, args):
    real = func(*args)
    meta = meta_call(func, tree_map(_to_meta, args), {})
    real_flat, meta_flat = tree_flatten(real)[0], tree_flatten(meta)[0]
    assert len(real_flat) == len(meta_flat)
    for a, b in zip(real_flat, meta_flat):
        assert b.device.type == "meta"
        assert (tuple(a.shape), a.dtype) == (tuple(b.shape), b.dtype)


def test_in_place_element_wise_ops_return_their_target():
    x = torch.empty(2, 3, device="meta")
    out = meta_call(aten.add_.Tensor, (x, torch.empty(3, device="meta")), {})
    assert out is x
    with pytest.raises(RuntimeError):  # a broadcast that cannot write in place still fails
        meta_call(aten.add_.Tensor, (torch.empty(3, device="meta"), x), {})


def test_unsafe_view_shares_storage_like_the_real_op():
    x = torch.empty(4, 6, device="meta")
    out = meta_call(aten._unsafe_view.default, (x, [2, 12]), {})
    assert out.shape == (2, 12)
    assert out.untyped_storage()._cdata == x.untyped_storage()._cdata


def test_bad_calls_still_raise_the_kernels_error():
    with pytest.raises(RuntimeError):
        meta_call(aten.mm.default, (torch.empty(2, 3, device="meta"),
                                    torch.empty(4, 5, device="meta")), {})
    with pytest.raises(RuntimeError):
        meta_call(aten.convolution.default, (
            torch.empty(1, 3, 8, 8, device="meta"), torch.empty(4, 5, 3, 3, device="meta"),
            None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {})
