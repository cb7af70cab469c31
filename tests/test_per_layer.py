"""The per-layer table: every module nested by depth, output shapes from the trace, and the
subtree sums agreeing with the totals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import esrprof
from esrprof.card import layer_tree
from esrprof.cli import main
from esrprof.counting.layers import layer_rows


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(Block(8), Block(8))
        self.tail = nn.Conv2d(8, 12, 3, padding=1)
        self.up = nn.PixelShuffle(2)
        self.unused = nn.Conv2d(8, 8, 1)  # holds parameters, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.tail(self.body(self.head(x))))


def test_rows_nest_by_depth_with_shapes_params_and_subtree_sums():
    model = Net()
    counts = esrprof.count(model, (1, 3, 16, 16))
    rows = {r.module: r for r in layer_rows(model, counts)}
    root = rows[""]
    assert root.depth == 0 and root.module_type == "Net"
    assert root.output_shape == (1, 3, 32, 32)
    assert root.params == counts.params
    assert root.macs == counts.complete.macs + sum(
        r.macs for r in counts.ops if r.kind not in ("conv", "linear", "matmul"))
    assert root.activations == counts.ntire2022.activations
    assert rows["body.0.conv"].depth == 3 and rows["body.0.conv"].output_shape == (1, 8, 16, 16)
    assert rows["body.0.conv"].macs == 3 * 3 * 8 * 8 * 16 * 16
    body = rows["body"]
    assert body.params == sum(p.numel() for p in model.body.parameters())
    assert body.activations == 2 * 8 * 16 * 16
    assert rows["unused"].output_shape is None and rows["unused"].calls == 0
    assert rows["up"].output_shape == (1, 3, 32, 32) and rows["up"].params == 0


def test_depth_limits_the_rows():
    model = Net()
    counts = esrprof.count(model, (1, 3, 16, 16))
    shallow = layer_rows(model, counts, depth=1)
    assert {r.module for r in shallow} == {"", "head", "body", "tail", "up", "unused"}
    assert max(r.depth for r in layer_rows(model, counts, depth=2)) == 2


def test_tree_text_is_indented_and_fits():
    model = Net()
    counts = esrprof.count(model, (1, 3, 16, 16))
    rows = layer_rows(model, counts)
    narrow = layer_tree(rows, cols=64)
    assert all(len(line.encode()) <= 64 for line in narrow.splitlines())
    lines = layer_tree(rows, cols=80).splitlines()
    conv = next(line for line in lines if "(conv)" in line)
    assert conv.startswith("| | +-Conv2d (conv)")
    assert "1x8x16x16" in conv and "584" in conv  # output shape and 8*8*9 + 8 params


def test_model_left_untouched():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_rows(model, esrprof.count(model, (1, 3, 16, 16)))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


def test_cli_per_layer_with_depth(capsys, root, monkeypatch):
    monkeypatch.chdir(root)
    code = main(["profile", "reference_models/imdn.py:IMDN", "--input-shape", "16x16",
                 "--per-layer", "--depth", "1", "--no-predict"])
    out, err = capsys.readouterr()
    assert code == 0, err
    tree = out.split("Per layer")[1].split("Top 15 layers")[0]
    assert "+-Sequential" in tree and "| +-" not in tree  # depth 1 only
    assert "1x3x64x64" in tree  # the root's output: x4 upscaled


@pytest.mark.parametrize("bad", ["-1", "x"])
def test_bad_depth_is_a_usage_error(capsys, root, monkeypatch, bad):
    monkeypatch.chdir(root)
    try:
        code = main(["profile", "reference_models/imdn.py:IMDN", "--per-layer", "--depth", bad])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "--depth" in capsys.readouterr().err
