"""Team model files written for the organisers' GPU (``self.cuda()`` and a warm-up forward in
``__init__``, ``.cuda()`` / ``.to("cuda")`` / ``device="cuda"`` in ``forward``) are counted and
predicted where there is no CUDA: the moves leave tensors where they are, and the command line
says so once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import esrprof
from esrprof.errors import ModelError
from esrprof.loading import load_model
from esrprof.stay import stay_on_device

ROOT = Path(__file__).resolve().parents[1]
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only case")

MODEL_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class WarmsUpOnTheGpu(nn.Module):
        """Builds, moves itself to CUDA and runs a warm-up forward, as some entries do."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.tail = nn.Conv2d(8, 3, 3, padding=1)
            self.cuda()(torch.randn(1, 3, 16, 16).cuda())

        def forward(self, x):
            return self.tail(torch.relu(self.conv(x)))
''')


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.tail = nn.Conv2d(8, 3, 3, padding=1)
        self.mean = torch.tensor([0.4, 0.4, 0.4]).view(1, 3, 1, 1)

    def forward(self, x):
        y = F.relu(self.conv(x - self.mean))
        return self.tail(y) + torch.zeros(1, 3, 1, 1)


class MovesInForward(Plain):
    """The same arithmetic, with every spelling of a move to CUDA."""

    def forward(self, x):
        x = x.cuda()
        mean = self.mean.to("cuda")
        y = F.relu(self.conv(x - mean.to(device="cuda:0", non_blocking=True)))
        y = y.to(torch.device("cuda"), torch.float32)
        return self.tail(y) + torch.zeros(1, 3, 1, 1, device="cuda")


class Synchronises(Plain):
    def forward(self, x):
        torch.cuda.synchronize()
        return super().forward(x)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "entry.py"
    path.write_text(MODEL_FILE)
    return path


@no_cuda
def test_a_model_that_moves_itself_to_cuda_builds_here(model_file):
    loaded = load_model(f"{model_file}:WarmsUpOnTheGpu")
    assert all(p.device.type == "cpu" for p in loaded.model.parameters())
    # four parameters and the warm-up input
    assert len(loaded.notes) == 1
    assert "asked for CUDA 5 times while it was built" in loaded.notes[0]
    # the mode is gone afterwards: asking for CUDA fails again, as it should here
    with pytest.raises((AssertionError, RuntimeError)):
        torch.zeros(1, device="cuda")


@no_cuda
def test_the_command_line_prints_the_note_once_and_profiles(model_file):
    proc = subprocess.run([sys.executable, "-m", "esrprof", "profile",
                           f"{model_file}:WarmsUpOnTheGpu", "--input-shape", "16x16"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "asked for CUDA" in line]
    assert len(notes) == 1 and notes[0].startswith("esrprof: note: ")
    assert "#Params [M]" in proc.stdout and "Predicted" in proc.stdout


@pytest.mark.parametrize("backend", ["auto", "meta", "real"])
def test_moves_in_forward_are_counted_as_if_absent(backend):
    plain, moving = Plain(), MovesInForward()
    moving.load_state_dict(plain.state_dict())
    a = esrprof.count(plain, (1, 3, 16, 16), backend=backend)
    b = esrprof.count(moving, (1, 3, 16, 16), backend=backend)
    assert (a.params, a.ntire2022.macs, a.ntire2024.macs, a.complete.macs) == \
        (b.params, b.ntire2022.macs, b.ntire2024.macs, b.complete.macs)


def test_moves_in_forward_are_predicted_as_if_absent():
    plain, moving = Plain(), MovesInForward()
    p, q = (esrprof.predict_challenge(m, "ntire2026") for m in (plain, moving))
    assert p.memory.peak_allocated_mib == q.memory.peak_allocated_mib
    # the moves that asked for a copy cost one kernel each at most; nothing else changes
    assert q.runtime.kernels - p.runtime.kernels <= 2


@no_cuda
def test_what_still_needs_a_gpu_still_fails_with_its_own_message():
    with pytest.raises(ModelError, match="CUDA"):
        esrprof.count(Synchronises(), (1, 3, 16, 16))


def test_the_mode_leaves_every_other_call_alone():
    x = torch.rand(2, 3)
    with stay_on_device() as stay:
        assert x.to(torch.float64).dtype == torch.float64
        assert x.to("cpu") is x
        y = torch.zeros(2, device="cpu")
    assert stay.moves == 0 and y.device.type == "cpu"
    with stay_on_device(False) as none:
        assert none is None
