"""The NTIRE 2024 convention (the 2024, 2025 and 2026 challenges): FLOPs are
``fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total()``, fvcore's rules and
quirks included; #Acts and #Conv stay the 2022 hooks'.

fvcore traces the model with ``torch.jit`` and applies one handle per op *the JIT tracer
records*. The tracer records the outermost ATen call made from Python: a composite op
(``aten::linear``, ``aten::matmul``, ``aten::einsum``, ``aten::layer_norm``,
``aten::upsample_bilinear2d``, ``aten::scaled_dot_product_attention``, ...) is one node, the
ops it decomposes into are not recorded; the convolution entry points (``conv2d``,
``conv_transpose2d``, ``convolution``) are the exception and are recorded as
``aten::_convolution`` (or ``aten::_convolution_mode`` when ``padding`` is a string, which fvcore
has no handle for). A custom ``autograd.Function`` becomes one ``prim::PythonOp`` node whose
inner ops fvcore never sees. Python-level torch functions (``F.interpolate``, ``F.layer_norm``,
``torch.einsum``, ...) are not recorded themselves: the builtins they call are.

The engine sees the same forward through a TorchFunctionMode, which is shown exactly the
outermost torch-level call (the mode is off while a call runs, so nested calls are invisible,
as the tracer's are). :func:`fvcore_calls` turns one such call into the ops fvcore would have
seen and its count: builtins by name, the Python-level torch functions through
:data:`_WRAPPERS` (what each one calls, from its arguments). A Python-level function that is
not in that table is counted from the dispatch ops beneath it (:func:`dispatch_count`), the
best guess left; the reference models never need it.

The rules below follow fvcore 0.1.5's ``fvcore/nn/jit_handles.py`` and ``flop_count.py``
(``_DEFAULT_SUPPORTED_OPS``), quirks kept:

* ``aten::_convolution``: batch · prod(weight) · prod(spatial), spatial the *output* size, the
  *input* size for a transposed conv; bias not counted.
* ``aten::linear``: prod(input.shape) · out_features (right on tokens of any rank).
* ``aten::matmul`` / ``aten::mm``: prod(a.shape) · b.shape[-1] (a batch that only ``b`` carries
  is not counted); ``aten::bmm``: n·c·t·d; ``aten::addmm``: the two 2-D factors.
* ``aten::einsum``: ``abc,abd->acd`` and ``abc,adc->adb`` (letters renamed in order of first
  appearance) as bmm; any other equation: numpy's ``einsum_path(optimize="optimal")``
  "Optimized FLOP count" / 2, floored.
* ``aten::batch_norm``: eval 1 or 2 × input elements (affine); training (or no running stats)
  the norm rule. ``aten::group_norm``, ``aten::layer_norm``, ``aten::instance_norm``: 5 or 4 ×
  input elements (affine or not).
* ``aten::upsample_nearest2d``: 1 × output elements; ``aten::upsample_bilinear2d`` and
  ``aten::grid_sampler``: 4 × output elements; ``aten::adaptive_avg_pool2d``: 1 × input elements.
* Everything else counts 0: ``scaled_dot_product_attention``, ``baddbmm``, bicubic and
  nearest-exact upsampling, plain pooling, ``pixel_shuffle``, element-wise ops, softmax, ...
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from esrprof.counting.formulas import prod

Args = Sequence[Any]
Kwargs = Mapping[str, Any]
# (args, kwargs, out) of the recorded op -> fvcore's count
Handle = Callable[[Args, Kwargs, Any], int]


def _arg(args: Args, kwargs: Kwargs, index: int, name: str, default: Any = None) -> Any:
    if index < len(args):
        return args[index]
    return kwargs.get(name, default)


def _shape(t: Any) -> tuple[int, ...]:
    return t.shape  # a torch.Size: a tuple of ints


def _numel(t: Any) -> int:
    if isinstance(t, (tuple, list)):
        t = t[0]
    return int(t.numel())


# ------------------------------------------------------------------------- fvcore's handles


def _conv(x: Any, w: Any, out: Any, transposed: bool) -> int:
    xs, ws, os_ = _shape(x), _shape(w), _shape(out)
    if len(xs) == len(ws) - 1:  # unbatched input: the tracer sees it after the unsqueeze
        xs, os_ = (1, *xs), (1, *os_)
    return xs[0] * prod(ws) * prod((xs if transposed else os_)[2:])


def _norm(x: Any, affine: Any) -> int:
    return _numel(x) * (5 if affine is not None else 4)


def _einsum(equation: str, operands: Sequence[Any]) -> int:
    import numpy as np

    equation = equation.replace(" ", "")
    letters = OrderedDict((k, 0) for k in equation if k.isalpha()).keys()
    equation = equation.translate({ord(x): 97 + i for i, x in enumerate(letters)})
    shapes = [_shape(t) for t in operands]
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    # numpy reads only the shapes: zero-stride views cost no memory at any size
    arrays = [np.broadcast_to(np.zeros(()), s) for s in shapes]
    text = np.einsum_path(equation, *arrays, optimize="optimal")[1]
    for line in text.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    return 0


def _batch_norm(x: Any, weight: Any, training: Any) -> int:
    if training:
        return _norm(x, weight)
    return _numel(x) * (2 if weight is not None else 1)


HANDLES: dict[str, Handle] = {
    "_convolution": lambda a, k, out: _conv(a[0], a[1], out, bool(_arg(a, k, 6, "transposed"))),
    "linear": lambda a, k, out: _numel(a[0]) * _shape(_arg(a, k, 1, "weight"))[0],
    "matmul": lambda a, k, out: _numel(a[0]) * _shape(_arg(a, k, 1, "other"))[-1],
    "mm": lambda a, k, out: _numel(a[0]) * _shape(_arg(a, k, 1, "mat2"))[-1],
    "bmm": lambda a, k, out: _numel(a[0]) * _shape(_arg(a, k, 1, "mat2"))[-1],
    "addmm": lambda a, k, out: (_shape(_arg(a, k, 1, "mat1"))[0] * _shape(_arg(a, k, 1, "mat1"))[1]
                                * _shape(_arg(a, k, 2, "mat2"))[1]),
    "einsum": lambda a, k, out: _einsum(a[0], _arg(a, k, 1, "tensors")),
    "batch_norm": lambda a, k, out: _batch_norm(a[0], _arg(a, k, 1, "weight"),
                                                _arg(a, k, 5, "training")),
    "group_norm": lambda a, k, out: _norm(a[0], _arg(a, k, 2, "weight")),
    "layer_norm": lambda a, k, out: _norm(a[0], _arg(a, k, 2, "weight")),
    "instance_norm": lambda a, k, out: _norm(a[0], _arg(a, k, 1, "weight")),
    "upsample_nearest2d": lambda a, k, out: _numel(out),
    "upsample_bilinear2d": lambda a, k, out: 4 * _numel(out),
    "adaptive_avg_pool2d": lambda a, k, out: _numel(a[0]),
    "grid_sampler": lambda a, k, out: 4 * _numel(out),
}

# The convolution entry points the tracer records as aten::_convolution (transposed or not).
_CONVS = {"conv1d": False, "conv2d": False, "conv3d": False, "conv_transpose1d": True,
          "conv_transpose2d": True, "conv_transpose3d": True}


# ------------------------------------------------------------------ torch-level calls -> op

Recorded = tuple[str, int]  # the op as fvcore names it, its count


def _builtin(name: str, args: Args, kwargs: Kwargs, out: Any) -> Recorded | None:
    if name in _CONVS:
        if isinstance(_arg(args, kwargs, 4, "padding"), str):  # aten::_convolution_mode
            return "_convolution_mode", 0
        return "_convolution", _conv(args[0], _arg(args, kwargs, 1, "weight"), out,
                                     _CONVS[name])
    if name == "convolution":
        return "_convolution", _conv(args[0], _arg(args, kwargs, 1, "weight"), out,
                                     bool(_arg(args, kwargs, 6, "transposed")))
    handle = HANDLES.get(name)
    if handle is None:
        return None
    return name, int(handle(args, kwargs, out))


def _interpolate(args: Args, kwargs: Kwargs, out: Any, mode: str | None = None) -> Recorded:
    x = args[0]
    mode = mode or _arg(args, kwargs, 3, "mode", "nearest")
    antialias = _arg(args, kwargs, 6, "antialias", False)
    if x.dim() == 4 and mode == "nearest":
        return "upsample_nearest2d", _numel(out)
    if x.dim() == 4 and mode == "bilinear" and not antialias:
        return "upsample_bilinear2d", 4 * _numel(out)
    if x.dim() == 4 and mode == "area":  # F.interpolate calls adaptive_avg_pool2d for "area"
        return "adaptive_avg_pool2d", _numel(x)
    return f"interpolate:{mode}", 0


def _einsum_call(args: Args, kwargs: Kwargs, out: Any) -> Recorded:
    if not args or not isinstance(args[0], str):  # the sublist form (operand, [0, 1], ...)
        return "einsum", 0 if len(args) < 2 else _einsum(*_from_sublists(args))
    operands = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
    return "einsum", _einsum(args[0], operands)


def _from_sublists(args: Args) -> tuple[str, list[Any]]:
    """torch.einsum(a, [0, 1], b, [1, 2], [0, 2]) as an equation (what torch builds from it)."""
    def letters(sub: Sequence[Any]) -> str:
        return "".join("..." if s is Ellipsis else chr(ord("a") + int(s)) if int(s) < 26
                       else chr(ord("A") + int(s) - 26) for s in sub)

    operands, subs = list(args[0::2]), list(args[1::2])
    output = None
    if len(operands) > len(subs):  # the last item is the output sublist
        output = operands.pop()
    equation = ",".join(letters(s) for s in subs)
    if output is not None:
        equation += "->" + letters(output)
    return equation, operands


_WRAPPERS: dict[Any, Callable[[Args, Kwargs, Any], Recorded]] = {
    F.interpolate: _interpolate,
    F.upsample: _interpolate,
    F.upsample_nearest: lambda a, k, out: _interpolate(a, k, out, "nearest"),
    F.upsample_bilinear: lambda a, k, out: _interpolate(a, k, out, "bilinear"),
    F.layer_norm: lambda a, k, out: ("layer_norm", _norm(a[0], _arg(a, k, 2, "weight"))),
    F.group_norm: lambda a, k, out: ("group_norm", _norm(a[0], _arg(a, k, 2, "weight"))),
    F.instance_norm: lambda a, k, out: ("instance_norm", _norm(a[0], _arg(a, k, 3, "weight"))),
    F.batch_norm: lambda a, k, out: ("batch_norm", _batch_norm(
        a[0], _arg(a, k, 3, "weight"), _arg(a, k, 5, "training", False))),
    F.grid_sample: lambda a, k, out: ("grid_sampler", 4 * _numel(out)),
    F.adaptive_avg_pool2d: lambda a, k, out: ("adaptive_avg_pool2d", _numel(a[0])),
    torch.einsum: _einsum_call,
    torch.Tensor.__rmatmul__: lambda a, k, out: ("matmul", _numel(a[1]) * _shape(a[0])[-1]),
    # recorded as themselves (aten::tensordot, aten::cdist, aten::chain_matmul): no handle
    torch.tensordot: lambda a, k, out: ("tensordot", 0),
    torch.cdist: lambda a, k, out: ("cdist", 0),
    torch.chain_matmul: lambda a, k, out: ("chain_matmul", 0),
}


def _attention(args: Args, kwargs: Kwargs, module: Any) -> list[Recorded]:
    """``F.multi_head_attention_forward`` as the tracer records it under the challenge's
    script (eval, frozen weights, grad enabled): ``nn.MultiheadAttention`` takes torch's fused
    fast path when its conditions hold (one ``aten::_native_multi_head_attention``: counted 0);
    otherwise the Python path: the in-projection linears, two bmm when ``need_weights`` and no
    mask (``baddbmm`` and ``scaled_dot_product_attention`` otherwise: 0), the out-projection.
    Masks are taken as blocking the fast path (a boolean mask would not)."""
    q, k, v = args[0], args[1], args[2]
    heads = int(_arg(args, kwargs, 4, "num_heads"))
    in_w, in_b = _arg(args, kwargs, 5, "in_proj_weight"), _arg(args, kwargs, 6, "in_proj_bias")
    bias_k, zero_attn = _arg(args, kwargs, 7, "bias_k"), _arg(args, kwargs, 9, "add_zero_attn")
    out_w = _arg(args, kwargs, 11, "out_proj_weight")
    need_weights = _arg(args, kwargs, 15, "need_weights", True)
    masked = (_arg(args, kwargs, 14, "key_padding_mask") is not None
              or _arg(args, kwargs, 16, "attn_mask") is not None)
    separate = _arg(args, kwargs, 17, "use_separate_proj_weight", False)
    if (isinstance(module, torch.nn.MultiheadAttention) and q.dim() == 3 and q is k is v
            and torch.backends.mha.get_fastpath_enabled() and not module.training
            and heads % 2 == 0 and module.batch_first and bias_k is None and not zero_attn
            and module._qkv_same_embed_dim and in_w is not None and in_b is not None
            and not masked):
        return [("_native_multi_head_attention", 0)]
    embed = _shape(out_w)[0]
    if separate or k is not v:
        found = [("linear", _numel(t) * embed) for t in (q, k, v)]
    elif q is k:
        found = [("linear", _numel(q) * 3 * embed)]
    else:
        found = [("linear", _numel(q) * embed), ("linear", _numel(k) * 2 * embed)]
    if need_weights and not masked:
        batch = (_shape(q)[1] if q.dim() == 3 else 1) * heads
        src = _shape(k)[0] + (bias_k is not None) + bool(zero_attn)
        per = batch * _shape(q)[0] * (embed // heads) * src
        found += [("bmm", per), ("bmm", per)]
    found.append(("linear", (_numel(q) // _shape(q)[-1]) * embed * embed))
    return found


def is_python_function(func: Any) -> bool:
    """A torch function written in Python: the tracer records the builtins it calls."""
    return hasattr(func, "__code__")


_NOTHING: list[Recorded] = []
# func -> how to count it: a handler, or None (count from the dispatch ops beneath); a count
# calls a few hundred distinct functions thousands of times, so the decision is made once each
_PLANS: dict[Any, Callable[[Args, Kwargs, Any, Any], list[Recorded]] | None] = {}


def _plan(func: Any) -> Callable[[Args, Kwargs, Any, Any], list[Recorded]] | None:
    wrapper = _WRAPPERS.get(func)
    if wrapper is not None:
        return lambda a, k, out, module: [wrapper(a, k, out)]
    if func is F.multi_head_attention_forward:
        return lambda a, k, out, module: _attention(a, k, module)
    if is_python_function(func):
        return None
    name = getattr(func, "__name__", "")
    if name in _CONVS or name == "convolution" or name in HANDLES:
        return lambda a, k, out, module: [_builtin(name, a, k, out) or (name, 0)]
    if name in SKIPPED:
        return lambda a, k, out, module: [(name, 0)]
    return lambda a, k, out, module: _NOTHING  # recorded, but fvcore has no handle: 0


def fvcore_calls(func: Any, args: Args, kwargs: Kwargs, out: Any,
                 module: Any = None) -> list[Recorded] | None:
    """What fvcore counts for one outermost torch-level call, made inside ``module``: the ops
    worth a row, each with its count (an op fvcore has no handle for and that is not in
    :data:`SKIPPED` gives none); None when the call is a Python-level function this module
    does not know (count it from the dispatch ops beneath)."""
    try:
        plan = _PLANS[func]
    except KeyError:
        plan = _PLANS[func] = _plan(func)
    except TypeError:  # an unhashable callable: decide every time
        plan = _plan(func)
    return None if plan is None else plan(args, kwargs, out, module)


# ------------------------------------------------------- beneath an unknown Python function

_DISPATCH: dict[str, Handle] = {
    "convolution": lambda a, k, out: _conv(a[0], a[1], out, bool(a[6])),
    "mm": HANDLES["mm"],
    "bmm": HANDLES["bmm"],
    "addmm": HANDLES["addmm"],
    "upsample_nearest2d": HANDLES["upsample_nearest2d"],
    "upsample_bilinear2d": HANDLES["upsample_bilinear2d"],
    "grid_sampler_2d": HANDLES["grid_sampler"],
    "_adaptive_avg_pool2d": HANDLES["adaptive_avg_pool2d"],
}


_DISPATCH_NAMES: dict[Any, str] = {}


def dispatch_count(func: Any, args: Args, kwargs: Kwargs, out: Any) -> Recorded | None:
    """The fvcore op a dispatch op most likely was, when no torch-level call explains it."""
    name = _DISPATCH_NAMES.get(func)
    if name is None:
        packet = getattr(func, "overloadpacket", func)
        name = _DISPATCH_NAMES[func] = getattr(packet, "__name__", "")
    handle = _DISPATCH.get(name)
    if handle is None:
        return None
    return ("_convolution" if name == "convolution" else name), int(handle(args, kwargs, out))


# ----------------------------------------------------------------- custom autograd Functions

_APPLY = torch.autograd.Function.apply.__func__.__code__


def in_autograd_function() -> bool:
    """True inside a custom ``autograd.Function``'s forward: the tracer records the Function as
    one ``prim::PythonOp`` and fvcore counts nothing inside it."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _APPLY:
            return True
        frame = frame.f_back
    return False


# What fvcore counts that is not a multiply-accumulate, by op (for the divergence reasons).
NOT_MACS = {
    "batch_norm": "batch_norm: 1-2 per element in eval, 4-5 in training (normalization)",
    "group_norm": "group_norm: 4-5 per element (normalization)",
    "layer_norm": "layer_norm: 4-5 per element (normalization)",
    "instance_norm": "instance_norm: 4-5 per element (normalization)",
    "upsample_nearest2d": "upsample_nearest2d: 1 per output element (resampling)",
    "upsample_bilinear2d": "upsample_bilinear2d: 4 per output element (resampling)",
    "grid_sampler": "grid_sampler: 4 per output element (resampling)",
    "adaptive_avg_pool2d": "adaptive_avg_pool2d: 1 per input element (pooling)",
}

# Ops fvcore counts 0 that are still worth a row: their work is what ntire2024 misses.
SKIPPED = {
    "_convolution_mode": "a convolution with string padding (aten::_convolution_mode)",
    "PythonOp": "a custom autograd.Function (one prim::PythonOp; its inner ops are not seen)",
    "scaled_dot_product_attention": "scaled_dot_product_attention",
    "baddbmm": "baddbmm",
    "tensordot": "tensordot",
    "chain_matmul": "chain_matmul",
    "cdist": "cdist",
    "interpolate:bicubic": "bicubic upsampling (aten::upsample_bicubic2d)",
    "_native_multi_head_attention": "nn.MultiheadAttention's fused fast path "
    "(aten::_native_multi_head_attention)",
}
NOTED = frozenset(SKIPPED)
