"""The NTIRE 2022 convention: forward hooks on module instances, counted exactly as the
challenge's script did (see docs/protocol.md), the Linear quirk included.

Only these module classes count. Anything functional (F.*, matmul, attention, +, cat,
PixelShuffle, GELU, LayerNorm, ...) is invisible to this convention by definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from esrprof.counting.formulas import Shape, conv_macs, ntire2022_linear_macs, prod

_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)


@dataclass(frozen=True)
class Call:
    """What one hooked call contributes."""

    macs: int
    activations: int = 0
    convs: int = 0


@dataclass(frozen=True)
class Rule:
    name: str
    count: Callable[[nn.Module, Shape, Shape], Call]


def _conv(module: nn.Module, in_shape: Shape, out_shape: Shape) -> Call:
    # The script used the *output* size for ConvTranspose2d too (stride² too many for it).
    macs = conv_macs(tuple(module.weight.shape), out_shape[0], out_shape[2:])
    return Call(macs=macs, activations=prod(out_shape), convs=1)


def _activation(module: nn.Module, in_shape: Shape, out_shape: Shape) -> Call:
    return Call(macs=prod(out_shape))


def _batchnorm(module: nn.Module, in_shape: Shape, out_shape: Shape) -> Call:
    return Call(macs=prod(in_shape) * (2 if module.affine else 1))


def _linear(module: nn.Module, in_shape: Shape, out_shape: Shape) -> Call:
    if len(in_shape) < 2:  # an unbatched vector: the script would have crashed; count it as 1×C
        in_shape, out_shape = (1, *in_shape), (1, *out_shape)
    return Call(macs=ntire2022_linear_macs(in_shape, out_shape))


CONV = Rule("conv", _conv)
ACTIVATION = Rule("activation", _activation)
BATCHNORM = Rule("batchnorm2d", _batchnorm)
LINEAR = Rule("linear", _linear)


def rule_for(module: nn.Module) -> Rule | None:
    """The rule the challenge's script applied to this module (isinstance, as it did)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return CONV
    if isinstance(module, _ACTIVATIONS):
        return ACTIVATION
    if isinstance(module, nn.BatchNorm2d):
        return BATCHNORM
    if isinstance(module, nn.Linear):
        return LINEAR
    return None
