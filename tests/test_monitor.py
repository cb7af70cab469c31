"""The training-loop monitor: it measures, logs, and leaves training bit-identical."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

from esrprof.errors import InputShapeError, UsageError
from esrprof.monitor import Monitor


class TinySR(nn.Module):
    """Dropout (RNG), BatchNorm (running stats) and a frozen submodule: everything a careless
    probe forward could disturb."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.2)
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.tail = nn.Conv2d(8, 12, 3, padding=1)
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        y = self.drop(torch.relu(self.norm(self.head(x))))
        return self.up(self.tail(self.body(y) + y))


class FixedClock:
    name = "fixed"

    def __init__(self):
        self.calls = 0

    def time_ms(self, fn):
        fn()
        self.calls += 1
        return 1.0 + 0.1 * (self.calls % 3)


def _train(steps: int, monitor_kwargs: dict | None, tmp_path):
    torch.manual_seed(0)
    model = TinySR()
    model.body.eval()  # a submodule the user put in eval must stay there
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = Monitor(model, **monitor_kwargs) if monitor_kwargs is not None else None
    for _ in range(steps):
        lr = torch.rand(2, 3, 8, 8)
        hr = torch.rand(2, 3, 16, 16)
        loss = nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step()
            assert model.training and not model.body.training
            assert torch.is_grad_enabled()
    return model, monitor, torch.get_rng_state()


def test_training_is_bit_identical_with_the_monitor(tmp_path):
    plain, _, rng_plain = _train(12, None, tmp_path)
    log = tmp_path / "m.jsonl"
    watched, monitor, rng_watched = _train(
        12, {"probe_shape": (1, 3, 8, 8), "every": 3, "log": log, "repeats": 2}, tmp_path
    )
    assert len(monitor.records) == 4
    a, b = plain.state_dict(), watched.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(rng_plain, rng_watched)  # the RNG stream goes on as it would have
    assert len(log.read_text().splitlines()) == 4


def test_rng_grad_mode_and_cudnn_flags_restored():
    model = TinySR().train()
    monitor = Monitor(model, (1, 3, 8, 8), every=1, repeats=1, warmup=0, clock=FixedClock())
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    cudnn = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = not cudnn
    try:
        with torch.no_grad():
            monitor.step()
            assert not torch.is_grad_enabled()
        assert torch.equal(torch.rand(4), expected)
        assert torch.backends.cudnn.benchmark is (not cudnn)
    finally:
        torch.backends.cudnn.benchmark = cudnn
    assert all(m.training for m in model.modules())


def test_jsonl_log_counts_once_and_records_every_n(tmp_path):
    log = tmp_path / "logs" / "eff.jsonl"
    model = TinySR()
    clock = FixedClock()
    monitor = Monitor(model, (1, 3, 8, 8), every=5, log=log, repeats=3, warmup=1, clock=clock)
    assert monitor.counts is not None and monitor.counts.params == sum(
        p.numel() for p in model.parameters()
    )
    results = [monitor.step() for _ in range(11)]
    assert [r.step for r in results if r is not None] == [5, 10]
    assert clock.calls == 2 * (3 + 1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in lines] == [5, 10]
    first = lines[0]
    assert first["latency_ms"] == pytest.approx(1.1)  # median of 1.2, 1.0, 1.1
    assert first["latency_min_ms"] == pytest.approx(1.0)
    assert first["params"] == monitor.counts.params
    assert first["macs"] == monitor.counts.ntire2022.macs > 0
    assert first["memory_mib"] is None or first["memory_mib"] > 0


def test_csv_log_appends_under_one_header(tmp_path):
    log = tmp_path / "eff.csv"
    for _ in range(2):  # a resumed run appends to the same file
        monitor = Monitor(TinySR(), (1, 3, 8, 8), every=2, log=log, repeats=1,
                          clock=FixedClock())
        for _ in range(4):
            monitor.step()
    rows = list(csv.DictReader(log.open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 2, 4]
    assert float(rows[0]["latency_ms"]) > 0


def test_explicit_step_numbers():
    monitor = Monitor(TinySR(), (1, 3, 8, 8), every=100, repeats=1, clock=FixedClock())
    assert monitor.step(99) is None
    assert monitor.step(200).step == 200
    assert monitor.steps == 200


def test_real_clock_measures_positive_latency():
    monitor = Monitor(TinySR(), (1, 3, 8, 8), every=1, repeats=2, count=False)
    record = monitor.step()
    assert record.latency_ms > 0 and record.params is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"every": 0}, UsageError),
        ({"every": 1.5}, UsageError),
        ({"probe_shape": (1, 3, 0, 8)}, InputShapeError),
        ({"log": "eff.txt"}, UsageError),
        ({"repeats": 0}, UsageError),
    ],
)
def test_bad_arguments(kwargs, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error):
        Monitor(TinySR(), **{"probe_shape": (1, 3, 8, 8), **kwargs})


def test_not_a_module():
    with pytest.raises(UsageError):
        Monitor(object())


def test_tensorboard_writer_object_receives_scalars():
    seen = []

    class Writer:
        def add_scalar(self, tag, value, step):
            seen.append((tag, step))

    monitor = Monitor(TinySR(), (1, 3, 8, 8), every=1, repeats=1, clock=FixedClock(),
                      tensorboard=Writer())
    monitor.step()
    assert ("esrprof/latency_ms", 1) in seen


def test_lightning_callback():
    pytest.importorskip("lightning")
    from esrprof.integrations.lightning import EsrprofCallback

    callback = EsrprofCallback(probe_shape=(1, 3, 8, 8), every=1)
    assert callback.every == 1


@pytest.mark.gpu
def test_cuda_training_bit_identical_and_cuda_rng_restored(tmp_path):
    torch.backends.cudnn.deterministic = True
    try:
        runs = []
        for monitored in (False, True):
            torch.manual_seed(0)
            model = TinySR().cuda()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            monitor = Monitor(model, (1, 3, 8, 8), every=2, repeats=2) if monitored else None
            for _ in range(6):
                lr = torch.rand(2, 3, 8, 8, device="cuda")
                loss = model(lr).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if monitor is not None:
                    record = monitor.step()
                    assert record is None or record.memory_mib > 0
            runs.append((model.state_dict(), torch.cuda.get_rng_state()))
        (a, rng_a), (b, rng_b) = runs
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(rng_a, rng_b)
    finally:
        torch.backends.cudnn.deterministic = False


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"repeats": "5"}, "repeats='5'"),
        ({"repeats": 2.5}, "repeats=2.5"),
        ({"repeats": True}, "repeats=True"),
        ({"warmup": 1.0}, "warmup=1.0"),
        ({"threads": "2"}, "threads='2'"),
        ({"threads": 0}, "threads=0"),
        ({"every": 10.0}, "every=10.0"),
        ({"log": 5}, "log=5"),
        ({"count": "yes"}, "count='yes'"),
        ({"on_record": "print"}, "on_record='print'"),
        ({"clock": object()}, "clock="),
    ],
)
def test_argument_types_are_checked_at_construction(kwargs, words):
    with pytest.raises(UsageError) as info:
        Monitor(TinySR(), probe_shape=(1, 3, 8, 8), count=kwargs.pop("count", False), **kwargs)
    assert words in str(info.value)


def test_a_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        model = TinySR()
    with pytest.raises(UsageError, match="meta device"):
        Monitor(model, probe_shape=(1, 3, 8, 8), count=False)
    live = Monitor(TinySR(), probe_shape=(1, 3, 8, 8), count=False, clock=FixedClock())
    live.model.to("meta")  # moved there later: refused when it is due, not timed
    with pytest.raises(UsageError, match="meta device"):
        live.measure()


def test_two_monitors_of_one_model_in_two_threads_leave_its_flags(tmp_path):
    import threading

    model = TinySR().train()
    model.body.eval()  # a frozen submodule must come back frozen, the rest in train

    class SlowClock(FixedClock):
        def time_ms(self, fn):
            import time

            time.sleep(0.002)  # long enough for the other thread to start measuring
            return super().time_ms(fn)

    monitors = [Monitor(model, probe_shape=(1, 3, 8, 8), every=1, repeats=3, count=False,
                        clock=SlowClock()) for _ in range(2)]
    errors = []

    def train(monitor):
        try:
            for _ in range(20):
                monitor.step()
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(m,)) for m in monitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert model.training and model.head.training and not model.body.training
