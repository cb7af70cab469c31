"""The run protocol end to end on the CPU with tiny models, synthetic or tiny on-disk images and
a scripted clock: best-trial rule, valid/test averaging, warm-up, memory fallback, PSNR, OOM,
unreadable files, tiling, and that the user's model comes back untouched."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from esrprof.errors import ModelError, UsageError
from esrprof.forward import tiled_forward
from esrprof.run import RunConfig, RunResult, measure


class ScriptedClock:
    """A Clock whose every completed call lasts the next scripted duration (ms); a call that
    raises consumes nothing."""

    name = "scripted"

    def __init__(self, durations_ms):
        self.durations = list(durations_ms)

    def time_ms(self, fn):
        fn()
        return float(self.durations.pop(0))


def scripted(durations):
    return ScriptedClock(durations)


class Nearest(nn.Module):
    """x2 nearest upsampling behind a 1x1 identity conv: a per-pixel 'trained' SR model."""

    def __init__(self, scale: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")
        # recorded by a hook, outside the model: esrprof restores the model's own attributes
        # and the containers its code and hooks reach (a list a hook appends to), not an
        # object without a __dict__ (the test's probe)
        seen = _Outside([])
        self.register_forward_pre_hook(lambda _m, args: seen.items.append(tuple(args[0].shape)))
        self.seen = seen

    def forward(self, x):
        return self.up(self.conv(x))


class _Outside:
    """A view of a list that esrprof's attribute guard does not walk (it is a test probe)."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def tiny(**kw) -> RunConfig:
    base = dict(synthetic="quick", max_images=2, scale=2, pixel_range=1, warmup=1, nvml=False,
                threads=1)
    base.update(kw)
    return RunConfig(**base)


def write(path, h, w, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path)


def test_best_trial_and_valid_test_averaging_with_a_scripted_clock():
    # valid: trials (10, 20) (4, 6) (5, 5)  -> best is trial 1, mean 5
    # test:  trials (8, 8) (9, 9) (7, 11)   -> trials 0 and 2 tie at 8; the first wins
    durations = [10, 20, 4, 6, 5, 5, 8, 8, 9, 9, 7, 11]
    r = measure(Nearest(), tiny(trials=3), clock=scripted(durations))
    valid, test = r.split("valid"), r.split("test")
    assert valid.trials.samples_ms == ((10, 20), (4, 6), (5, 5))
    assert valid.trials.best_index == 1 and valid.trials.runtime_ms == 5
    assert test.trials.best_index == 0 and test.trials.runtime_ms == 8
    assert r.runtime_ms == pytest.approx((5 + 8) / 2)
    d = r.to_dict()
    assert d["runtime"]["runtime_ms"] == pytest.approx(6.5)
    v = d["runtime"]["splits"]["valid"]
    assert v["runtime_ms"] == 5 and v["median_ms"] == 5 and v["min_ms"] == 4
    assert v["iqr_ms"] == pytest.approx(1.0)
    assert v["trial_means_ms"] == [15, 5, 5]
    assert v["samples_ms"] == [[10, 20], [4, 6], [5, 5]]
    assert v["images"] == ["0801", "0802"] and len(v["shapes"]) == 2


def test_warmup_is_untimed_and_runs_before_the_first_timed_image():
    model = Nearest()
    r = measure(model, tiny(trials=1, warmup=3), clock=scripted([1, 1, 1, 1]))
    assert r.split("valid").warmup_forwards == 3
    # probe forwards (scale given: none), then per split 3 warm-ups + 2 timed
    assert len(model.seen) == 2 * (3 + 2)
    r0 = measure(Nearest(), tiny(trials=1, warmup=0), clock=scripted([1, 1, 1, 1]))
    assert r0.split("valid").warmup_forwards == 0


def test_cudnn_benchmark_warms_up_every_distinct_shape():
    r = measure(Nearest(), tiny(trials=1, max_images=4, cudnn_benchmark=True),
                clock=scripted([1] * 8))
    valid = r.split("valid")
    assert valid.warmup_forwards == len(set(valid.shapes)) > 1
    assert not torch.backends.cudnn.benchmark  # restored


def test_real_clock_cpu_run_records_memory_fallback_and_environment():
    r = measure(Nearest(), tiny(trials=2, threads=1))
    d = r.to_dict()
    assert d["memory"]["kind"] == "cpu_peak_rss_growth"
    assert "not comparable" in d["memory"]["note"]
    assert d["memory"]["memory_mib"] is None or d["memory"]["memory_mib"] >= 0
    assert d["runtime"]["clock"] == "perf_counter" and d["runtime"]["runtime_ms"] > 0
    assert "environment" not in d
    assert r.environment["hardware"].endswith("(1 thread)")
    assert r.environment["threads"] == 1 and r.threads == 1
    assert "quick" in d["data"]["description"]
    json.dumps(d, allow_nan=False)


def test_model_and_global_state_come_back_untouched():
    model = Nearest()
    model.train()
    model.up.eval()  # a submodule the user had put in eval must stay in eval
    model.conv.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    with torch.enable_grad():
        measure(model, tiny(trials=1, dtype="bf16", channels_last=True, threads=1),
                clock=scripted([1] * 4))
        assert torch.is_grad_enabled()
    assert model.training and model.conv.training and not model.up.training
    assert not model.conv.weight.requires_grad
    for k, v in model.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k])
        assert v.is_contiguous()
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads


def test_model_state_restored_when_the_forward_fails():
    class Boom(Nearest):
        def forward(self, x):
            if x.shape[-1] > 20:
                raise RuntimeError("shape mismatch in block 3")
            return super().forward(x)

    model = Boom()
    model.train()
    with pytest.raises(ModelError, match="shape mismatch"):
        measure(model, tiny(trials=1))
    assert model.training and model.conv.training


def test_psnr_against_known_values_and_identical_images(tmp_path):
    # LR flat 100 -> nearest x2 -> flat 100; HR flat 101 -> one grey level: 48.13 dB.
    write(tmp_path / "lr" / "a.png", 16, 20, 100)
    write(tmp_path / "hr" / "a.png", 32, 40, 101)
    write(tmp_path / "lr" / "b.png", 16, 16, 50)
    write(tmp_path / "hr" / "b.png", 32, 32, 50)  # identical: infinite, capped
    cfg = tiny(lr_dir=str(tmp_path / "lr"), hr_dir=str(tmp_path / "hr"), trained=True,
               trials=1, max_images=None)
    r = measure(Nearest(), cfg, clock=scripted([1, 1]))
    q = r.to_dict()["quality"]
    per = {p["image"]: p["psnr_db"] for p in q["per_image"]["valid"]}
    assert round(per["a"], 2) == 48.13
    assert per["b"] == 100.0
    assert q["psnr_db"]["valid"] == pytest.approx((per["a"] + 100.0) / 2)
    assert q["psnr_db"]["test"] is None
    assert "capped" in q["note"]
    assert q["ssim"]["valid"] is not None
    json.dumps(r.to_dict(), allow_nan=False)


def test_psnr_y_channel_option(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 16, 100)
    write(tmp_path / "hr" / "a.png", 32, 32, 101)
    cfg = tiny(lr_dir=str(tmp_path / "lr"), hr_dir=str(tmp_path / "hr"), trained=True,
               trials=1, psnr_y=True)
    q = measure(Nearest(), cfg, clock=scripted([1])).to_dict()["quality"]
    y_step = (65.481 + 128.553 + 24.966) / 255
    assert q["channel"] == "y"
    assert q["psnr_db"]["valid"] == pytest.approx(20 * np.log10(255 / y_step))


def test_random_weights_say_psnr_is_meaningless(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 16, 100)
    write(tmp_path / "hr" / "a.png", 32, 32, 101)
    cfg = tiny(lr_dir=str(tmp_path / "lr"), hr_dir=str(tmp_path / "hr"), trained=False, trials=1)
    q = measure(Nearest(), cfg, clock=scripted([1])).to_dict()["quality"]
    assert q["psnr_db"] == {"valid": None, "test": None}
    assert "meaningless" in q["note"]


def test_hr_only_folder_makes_lr_and_measures_psnr(tmp_path):
    write(tmp_path / "hr" / "a.png", 34, 30, 120)  # mod-cropped to 34x30 for x2
    cfg = RunConfig(hr_dir=str(tmp_path / "hr"), trained=True, trials=1, nvml=False)
    r = measure(Nearest(), cfg, clock=scripted([1]))
    assert r.scale == 2  # found by the probe
    assert r.split("valid").shapes == ((17, 15),)
    assert r.to_dict()["quality"]["psnr_db"]["valid"] == 100.0  # flat image, exact
    assert any("probe" in n for n in r.notes)


def test_pixel_range_255_scales_the_input(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 16, 200)
    probe = _Outside([])  # a plain list the forward reaches would be restored after the run
    seen = probe.items

    class Spy(Nearest):
        def forward(self, x):
            probe.items.append(float(x.max()))
            return super().forward(x)

    measure(Spy(), tiny(lr_dir=str(tmp_path / "lr"), pixel_range=255, trials=1),
            clock=scripted([1]))
    assert max(seen) == 200.0
    seen.clear()
    measure(Spy(), tiny(lr_dir=str(tmp_path / "lr"), pixel_range=1, trials=1),
            clock=scripted([1]))
    assert max(seen) == pytest.approx(200 / 255)


def test_unreadable_images_are_skipped_named_and_counted(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 16, 10)
    (tmp_path / "lr" / "bad.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"bad\.png"):
        r = measure(Nearest(), tiny(lr_dir=str(tmp_path / "lr"), trials=1), clock=scripted([1]))
    d = r.to_dict()
    assert d["data"]["unreadable"] == 1
    assert d["data"]["unreadable_files"]["valid"][0].endswith("bad.png")
    assert d["runtime"]["splits"]["valid"]["images"] == ["a"]


class OomOnWide(Nearest):
    def forward(self, x):
        if x.shape[-1] >= 30:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x)


def _oom_folder(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 16, 10)
    write(tmp_path / "lr" / "b.png", 16, 40, 10)  # too big
    write(tmp_path / "lr" / "c.png", 16, 20, 10)
    return str(tmp_path / "lr")


def test_oom_skip_names_the_image_and_continues(tmp_path):
    cfg = tiny(lr_dir=_oom_folder(tmp_path), trials=2, warmup=0, max_images=None)
    r = measure(OomOnWide(), cfg, clock=scripted([3, 4, 1, 2]))
    v = r.split("valid")
    assert v.images == ("a", "c")
    assert v.trials.samples_ms == ((3, 4), (1, 2))
    assert len(v.oom) == 1 and v.oom[0]["image"] == "b" and v.oom[0]["lr_shape"] == [16, 40]
    assert r.stopped is None


def test_oom_stop_ends_the_run_cleanly(tmp_path):
    cfg = tiny(lr_dir=_oom_folder(tmp_path), trials=3, on_oom="stop", warmup=0,
               max_images=None)
    r = measure(OomOnWide(), cfg, clock=scripted([3]))
    assert r.stopped and "b" in r.stopped and "16x40" in r.stopped
    v = r.split("valid")
    assert v.images == ("a",) and v.trials.samples_ms == ((3,),)
    assert r.to_dict()["run_config"]["stopped"] == r.stopped


def test_tiled_forward_matches_the_whole_image():
    model = Nearest(scale=2)
    x = torch.rand(1, 3, 37, 29)
    whole = model(x)
    for tile, overlap in ((16, 4), (10, 0), (64, 8)):
        assert torch.allclose(tiled_forward(model, x, tile, overlap, 2), whole)


def test_tiled_run_uses_tiles(tmp_path):
    model = Nearest()
    write(tmp_path / "lr" / "a.png", 40, 40, 10)
    measure(model, tiny(lr_dir=str(tmp_path / "lr"), tile=16, tile_overlap=4, trials=1,
                        warmup=0), clock=scripted([1]))
    assert all(s[-1] <= 16 and s[-2] <= 16 for s in model.seen)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dtype": "fp64"}, "dtype"),
        ({"trials": 0}, "trials"),
        ({"tile": 16, "tile_overlap": 16}, "overlap"),
        ({"on_oom": "retry"}, "on_oom"),
        ({"pixel_range": 2}, "pixel range"),
        ({"data": "x", "lr_dir": "y"}, "not both"),
        ({"splits": ()}, "splits"),
    ],
)
def test_bad_configs_are_usage_errors(kwargs, match):
    with pytest.raises(UsageError, match=match):
        RunConfig(**kwargs)


def test_unknown_or_missing_devices_are_usage_errors():
    with pytest.raises(UsageError):
        RunConfig(device="tpu").resolved_device()
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            RunConfig(device="cuda:1").resolved_device()
    assert RunConfig(device="cpu").resolved_device().type == "cpu"


def test_result_is_json_safe_even_with_odd_figures():
    r = measure(Nearest(), tiny(trials=1), clock=scripted([1, 1, 1, 1]))
    assert isinstance(r, RunResult)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = json.dumps(r.to_dict(), allow_nan=False)
    assert '"runtime_ms"' in text


# ------------------------------------------------------------------------ CLI run options


def _parse(*argv):
    import argparse

    from esrprof.cli.run_options import add_run_arguments

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_run_gives_no_config_and_stray_options_are_refused():
    from esrprof.cli.run_options import run_config_from_args

    assert run_config_from_args(_parse()) is None
    with pytest.raises(UsageError, match="--trials only applies with --run"):
        run_config_from_args(_parse("--trials", "2"))
    with pytest.raises(UsageError, match="--tile, --compile only apply"):
        run_config_from_args(_parse("--tile", "64", "--compile"))


def test_options_become_a_run_config():
    from esrprof.cli.run_options import run_config_from_args

    cfg = run_config_from_args(_parse(
        "--run", "--device", "cpu", "--dtype", "bf16", "--channels-last", "--tile", "64",
        "--tile-overlap", "8", "--trials", "5", "--warmup", "0", "--splits", "valid",
        "--max-images", "7", "--cudnn-benchmark", "--pixel-range", "255", "--psnr-y",
        "--on-oom", "stop", "--threads", "1", "--no-progress", "--no-nvml", "--scale", "2",
        "--synthetic", "full",
    ))
    assert cfg == RunConfig(
        device="cpu", dtype="bf16", channels_last=True, tile=64, tile_overlap=8, trials=5,
        warmup=0, splits=("valid",), max_images=7, cudnn_benchmark=True, pixel_range=255,
        psnr_y=True, on_oom="stop", threads=1, progress=False, nvml=False, scale=2,
        synthetic="full", challenge="ntire2026",  # the latest year's protocol by default
    )
    # Unset options leave the library's defaults (and None for registry-filled fields).
    plain = run_config_from_args(_parse("--run"))
    assert plain.trials == 5 and plain.pixel_range is None and plain.scale is None  # 2026: 5 runs
    assert plain.splits == ("valid", "test")


@pytest.mark.parametrize(
    "argv, match",
    [
        (("--run", "--tile-overlap", "8"), "needs --tile"),
        (("--run", "--tile", "8", "--tile-overlap", "8"), "overlap"),
        (("--run", "--splits", ","), "splits"),
        (("--run", "--device", "tpu"), "device"),
        (("--run", "--data", "a", "--lr-dir", "b"), "not both"),
    ],
)
def test_bad_option_values_are_one_line_usage_errors(argv, match):
    from esrprof.cli.run_options import run_config_from_args

    with pytest.raises(UsageError, match=match) as info:
        run_config_from_args(_parse(*argv))
    assert "\n" not in str(info.value)


def test_argparse_rejects_malformed_numbers():
    with pytest.raises(SystemExit):
        _parse("--run", "--trials", "0")
    with pytest.raises(SystemExit):
        _parse("--run", "--pixel-range", "2")


def test_render_run_shows_runtime_memory_quality_and_data(tmp_path):
    from esrprof.cli.run_options import render_run

    write(tmp_path / "lr" / "a.png", 16, 16, 100)
    write(tmp_path / "hr" / "a.png", 32, 32, 101)
    cfg = tiny(lr_dir=str(tmp_path / "lr"), hr_dir=str(tmp_path / "hr"), trained=True, trials=2)
    blocks = measure(Nearest(), cfg, clock=scripted([4, 2])).to_dict()
    text = render_run(blocks)
    assert "Runtime [ms]: 2.00" in text
    assert "Memory [MiB]" in text and "CPU run" in text
    assert "PSNR [dB, RGB]: valid 48.13, test -" in text
    assert "folder" in text and "1 images" in text
    assert "valid" in text and "best of 2" in text
    # A record read back from JSON renders the same.
    assert render_run(json.loads(json.dumps(blocks))) == text
    assert render_run({})  # nothing measured: still a table, no crash


def test_cli_profile_run_prints_runtime_memory_and_data(root, monkeypatch, capsys, tmp_path):
    from esrprof.cli import main

    monkeypatch.chdir(root)
    out_json = tmp_path / "r.json"
    code = main(["profile", "reference_models/imdn.py:IMDN", "--input-shape", "16x16", "--run",
                 "--max-images", "1", "--trials", "1", "--threads", "1", "--synthetic", "quick",
                 "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Runtime [ms]" in out and "Memory [MiB]" in out and "synthetic (quick)" in out
    saved = json.loads(out_json.read_text())
    assert saved["runtime"]["runtime_ms"] > 0
    assert saved["environment"]["hardware"].endswith("(1 thread)")
    assert saved["run_config"]["scale_used"] == 4  # from the reference registry
    assert saved["quality"]["psnr_db"] == {"valid": None, "test": None}


# ------------------------------------------------------------------- CPU allocator failures

CPU_ALLOC_ERROR = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"
)


class CpuAllocFailsOnWide(Nearest):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def forward(self, x):
        if x.shape[-1] >= 30:
            raise self.error
        return super().forward(x)


@pytest.mark.parametrize("error", [RuntimeError(CPU_ALLOC_ERROR), MemoryError()])
def test_cpu_allocation_failure_is_skipped_like_an_oom(tmp_path, error):
    cfg = tiny(lr_dir=_oom_folder(tmp_path), trials=2, warmup=1, max_images=None)
    r = measure(CpuAllocFailsOnWide(error), cfg, clock=scripted([3, 4, 1, 2]))
    v = r.split("valid")
    assert v.images == ("a", "c") and v.trials.samples_ms == ((3, 4), (1, 2))
    assert len(v.oom) == 1 and v.oom[0]["image"] == "b"
    assert r.stopped is None


def test_cpu_allocation_failure_stops_with_partial_results_kept(tmp_path):
    cfg = tiny(lr_dir=_oom_folder(tmp_path), trials=3, on_oom="stop", warmup=0,
               max_images=None)
    r = measure(CpuAllocFailsOnWide(RuntimeError(CPU_ALLOC_ERROR)), cfg, clock=scripted([3]))
    assert r.stopped and "16x40" in r.stopped
    assert r.split("valid").trials.samples_ms == ((3,),)


def test_other_runtime_errors_are_still_model_errors(tmp_path):
    cfg = tiny(lr_dir=_oom_folder(tmp_path), trials=1, warmup=0, max_images=None)
    with pytest.raises(ModelError, match="size mismatch"):
        measure(CpuAllocFailsOnWide(RuntimeError("size mismatch, m1: [1 x 3]")), cfg,
                clock=scripted([1, 1, 1]))


def test_cli_run_with_cpu_allocation_failure_keeps_partial_results(tmp_path, capsys):
    from esrprof.cli import main

    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch\n"
        "from torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 12, 1)\n"
        "        self.up = nn.PixelShuffle(2)\n\n"
        "    def forward(self, x):\n"
        "        if x.shape[-1] >= 30:\n"
        f"            raise RuntimeError({CPU_ALLOC_ERROR!r})\n"
        "        return self.up(self.conv(x))\n"
    )
    out_json = tmp_path / "r.json"
    code = main(["profile", f"{model_file}:Net", "--input-shape", "16x16", "--run",
                 "--lr-dir", _oom_folder(tmp_path), "--trials", "1", "--threads", "1",
                 "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "out of memory: valid/b" in out
    saved = json.loads(out_json.read_text())
    assert saved["runtime"]["splits"]["valid"]["images"] == ["a", "c"]


# ---------------------------------------------------------------------- records round trip


def test_run_result_round_trips_through_its_dict(tmp_path):
    write(tmp_path / "lr" / "a.png", 16, 20, 100)
    write(tmp_path / "hr" / "a.png", 32, 40, 101)
    write(tmp_path / "lr" / "b.png", 16, 16, 50)
    write(tmp_path / "hr" / "b.png", 32, 32, 50)
    cfg = tiny(lr_dir=str(tmp_path / "lr"), hr_dir=str(tmp_path / "hr"), trained=True,
               trials=2, max_images=None)
    r = measure(Nearest(), cfg, clock=scripted([1, 2, 3, 4]))
    d = r.to_dict()
    back = RunResult.from_dict(json.loads(json.dumps(d)), environment=r.environment)
    assert isinstance(back, RunResult) and back.config == r.config
    assert back.to_dict() == d
    assert back.split("valid").trials == r.split("valid").trials
    assert back.runtime_ms == r.runtime_ms and back.environment == r.environment


def test_loaded_result_has_the_same_run_type_as_in_memory(tmp_path):
    from esrprof.results import ModelInfo, Result, load_result

    r = measure(Nearest(), tiny(trials=1), clock=scripted([1, 2, 3, 4]))
    saved = Result(ModelInfo("n"), (1, 3, 8, 8), None, r, r.environment).save(tmp_path / "r.json")
    loaded = load_result(saved)
    assert isinstance(loaded.run, RunResult)
    assert loaded.run.split("test").trials.samples_ms == ((3, 4),)
    from esrprof.jsonio import read_json  # the file as readers see it: without its mark

    assert loaded.to_dict() == read_json(saved)


# -------------------------------------------------------------------- statistics printed


def test_render_prints_no_iqr_or_spread_from_a_handful_of_samples():
    from esrprof.cli.run_options import render_run

    few = measure(Nearest(), tiny(trials=3), clock=scripted([1, 9, 2, 2, 3, 3] * 2)).to_dict()
    text = render_run(few)
    assert "n/a (2 samples)" in text and "%" not in text.split("Runtime [ms]")[0]
    many = measure(Nearest(), tiny(trials=2, max_images=5, splits=("valid",)),
                   clock=scripted([1, 2, 3, 4, 5] * 2)).to_dict()
    text = render_run(many)
    assert "n/a" not in text and "2.00" in text  # IQR of 1..5 is 2


def test_cuda_device_that_cannot_be_used_is_one_line_exit_2(root, monkeypatch, capsys):
    from esrprof.cli import main

    monkeypatch.chdir(root)
    for device in ("cuda:7", "nonsense", "cuda:x", "meta"):
        code = main(["profile", "reference_models/imdn.py:IMDN", "--input-shape", "16x16",
                     "--run", "--device", device])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("esrprof: error: ") and "\n" not in err, (device,
                                                                                      err)
