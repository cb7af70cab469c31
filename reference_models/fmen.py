"""FMEN of NJU_Jet (Du et al., "Fast and Memory-Efficient Network Towards Efficient Image
Super-Resolution", CVPR Workshops 2022; 2nd in the NTIRE 2022 main track): 50 channels, a warm-up
convolution and high-frequency attention block (HFAB), four pairs of basic block + HFAB, a x4
pixel-shuffle tail. Input and output in 0-1.

Every 3x3 convolution inside the blocks is re-parameterisable: it trains as a residual-in-residual
block (RRRB: 1x1 expand, 3x3, 1x1 reduce, two skips) and deploys as one 3x3 convolution
(``rep_conv``). ``FMEN()`` is the deploy form the challenge measured and whose checkpoint was
released; ``FMEN(deploy=False)`` is the training form and ``.fuse()`` turns it into the deploy form.

The released code applied its LeakyReLU through a module-level instance that is not a submodule
of the network, so the challenge's hooks never saw it; ``F.leaky_relu`` keeps that count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import pixel_shuffle_upsampler

NEG_SLOPE = 0.1


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEG_SLOPE)


class RepConv(nn.Module):
    """A 3x3 convolution C->C; trains as an RRRB, deploys as ``rep_conv``."""

    def __init__(self, channels: int, deploy: bool = True, expand: int = 2):
        super().__init__()
        if deploy:
            self.rep_conv = nn.Conv2d(channels, channels, 3, padding=1)
        else:
            self.expand_conv = nn.Conv2d(channels, expand * channels, 1)
            self.fea_conv = nn.Conv2d(expand * channels, expand * channels, 3)
            self.reduce_conv = nn.Conv2d(expand * channels, channels, 1)

    @property
    def deploy(self) -> bool:
        return hasattr(self, "rep_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.rep_conv(x)
        identity = self.expand_conv(x)
        # Pad with the expand bias (what a 1x1 convolution gives on zero padding), so that the
        # block equals a single zero-padded 3x3 convolution.
        padded = F.pad(identity, (1, 1, 1, 1)) + _border(self.expand_conv.bias, identity)
        out = self.fea_conv(padded) + identity
        return self.reduce_conv(out) + x

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold expand -> 3x3 -> reduce and both skips into one 3x3 convolution, in place."""
        if self.deploy:
            return
        w1 = self.expand_conv.weight[:, :, 0, 0]  # (E, C)
        b1 = self.expand_conv.bias
        w2, b2 = self.fea_conv.weight, self.fea_conv.bias  # (E, E, 3, 3)
        w3 = self.reduce_conv.weight[:, :, 0, 0]  # (C, E)
        b3 = self.reduce_conv.bias
        k = torch.einsum("oekl,ec->ockl", w2, w1)  # 3x3 after 1x1 expand
        k[:, :, 1, 1] += w1  # + identity (the expanded input)
        b = b2 + torch.einsum("oekl,e->o", w2, b1) + b1
        k = torch.einsum("ce,eokl->cokl", w3, k)
        b = w3 @ b + b3
        k[:, :, 1, 1] += torch.eye(k.shape[0], dtype=k.dtype, device=k.device)  # + x
        conv = nn.Conv2d(k.shape[1], k.shape[0], 3, padding=1).to(k.device, k.dtype)
        conv.weight.copy_(k)
        conv.bias.copy_(b)
        del self.expand_conv, self.fea_conv, self.reduce_conv
        self.rep_conv = conv


def _border(bias: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A tensor of t's padded shape holding bias on the 1-pixel border and 0 inside."""
    border = torch.ones(1, 1, t.shape[2] + 2, t.shape[3] + 2, dtype=t.dtype, device=t.device)
    border[:, :, 1:-1, 1:-1] = 0
    return border * bias.view(1, -1, 1, 1)


class BasicBlock(nn.Module):
    """RepConv - LeakyReLU - RepConv."""

    def __init__(self, channels: int, deploy: bool = True):
        super().__init__()
        self.conv1 = RepConv(channels, deploy)
        self.conv2 = RepConv(channels, deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(_act(self.conv1(x)))


class HFAB(nn.Module):
    """High-frequency attention: squeeze, basic blocks, excite, sigmoid mask on the input."""

    def __init__(self, channels: int, blocks: int, mid_channels: int, deploy: bool = True):
        super().__init__()
        self.squeeze = nn.Conv2d(channels, mid_channels, 3, padding=1)
        self.convs = nn.Sequential(*[BasicBlock(mid_channels, deploy) for _ in range(blocks)])
        self.excitate = nn.Conv2d(mid_channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _act(self.convs(_act(self.squeeze(x))))
        out = self.excitate(out)  # the 16-channel features die here, before the sigmoid
        out = torch.sigmoid(out)
        out *= x  # gated in place, as released
        return out


class FMEN(nn.Module):
    """x4 FMEN; input and output in the 0-1 pixel range."""

    def __init__(
        self,
        n_colors: int = 3,
        n_feats: int = 50,
        mid_feats: int = 16,
        down_blocks: int = 4,
        up_blocks: tuple[int, ...] = (2, 1, 1, 1, 1),
        upscale: int = 4,
        deploy: bool = True,
    ):
        super().__init__()
        if len(up_blocks) != down_blocks + 1:
            raise ValueError("up_blocks needs one entry for the warm-up HFAB and one per block")
        self.head = nn.Conv2d(n_colors, n_feats, 3, padding=1)
        self.warmup = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
            HFAB(n_feats, up_blocks[0], mid_feats - 4, deploy),
        )
        self.basic_blocks = nn.ModuleList([BasicBlock(n_feats, deploy) for _ in range(down_blocks)])
        self.hfabs = nn.ModuleList(
            [HFAB(n_feats, up_blocks[i + 1], mid_feats, deploy) for i in range(down_blocks)]
        )
        self.lr_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.tail = pixel_shuffle_upsampler(n_feats, n_colors, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        h = self.warmup(x)
        for block, hfab in zip(self.basic_blocks, self.hfabs):
            h = block(h)  # the block's input dies here, before the attention runs, as released
            h = hfab(h)
        h = self.lr_conv(h)
        h += x  # in place, as released
        return self.tail(h)

    def fuse(self) -> FMEN:
        """Convert the training form to the deploy form in place; returns self."""
        for module in self.modules():
            if isinstance(module, RepConv):
                module.fuse()
        return self
