"""The ``--run`` options of ``esrprof profile``: parse them into a RunConfig, render the blocks.

No measuring here: the options become a :class:`esrprof.run.RunConfig`, the library runs it, and
:func:`render_run` turns the result's ``runtime`` / ``memory`` / ``quality`` / ``data`` blocks
into a short table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from esrprof.environment import threads_text
from esrprof.errors import UsageError
from esrprof.extras import check

# Fewer samples than this and an IQR or a spread between trials says more about chance than about
# the model (two samples make an "IQR" of half their difference): they are not printed.
MIN_SAMPLES_FOR_SPREAD = 5

# option dest -> RunConfig field, for the options whose value is passed through as given
_FIELDS = {
    "run_device": "device",
    "run_dtype": "dtype",
    "run_tile": "tile",
    "run_tile_overlap": "tile_overlap",
    "run_trials": "trials",
    "run_warmup": "warmup",
    "run_max_images": "max_images",
    "run_data": "data",
    "run_lr_dir": "lr_dir",
    "run_hr_dir": "hr_dir",
    "run_synthetic": "synthetic",
    "run_threads": "threads",
    "run_pixel_range": "pixel_range",
    "run_scale": "scale",
    "run_on_oom": "on_oom",
    "run_seed": "seed",
}
_FLAGS = {
    "run_channels_last": "channels_last",
    "run_cudnn_benchmark": "cudnn_benchmark",
    "run_compile": "compile",
    "run_psnr_y": "psnr_y",
}


def _int_at_least(low: int):
    """An argparse ``type``: an integer no smaller than ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return value

    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run`` and its options (all default to None, so a run option given without ``--run``
    is caught, and the library's defaults stay the only defaults)."""
    g = parser.add_argument_group(
        "run (runtime, memory, PSNR)",
        "measure latency and memory over image sets as the NTIRE ESR challenge did; without data "
        "options a synthetic set is used (quick on a CPU, the full 100+100 DIV2K-like shapes on "
        "a GPU)",
    )
    g.add_argument("--run", action="store_true", help="time the model over image sets")
    g.add_argument("--device", dest="run_device", metavar="DEV",
                   help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    g.add_argument("--dtype", dest="run_dtype", choices=("fp32", "fp16", "bf16"),
                   help="precision of model and input (default fp32, the challenge's)")
    g.add_argument("--channels-last", dest="run_channels_last", action="store_true",
                   default=None, help="run in channels-last memory format")
    g.add_argument("--tile", dest="run_tile", type=_positive, metavar="PX",
                   help="run on LR tiles of PX x PX (default: the whole image, as the challenge)")
    g.add_argument("--tile-overlap", dest="run_tile_overlap", type=_non_negative, metavar="PX",
                   help="overlap between tiles in LR pixels (default 32)")
    g.add_argument("--trials", dest="run_trials", type=_positive, metavar="N",
                   help="passes over each split (default: the --challenge year's: 5 averaged "
                   "for 2024-2026, the best of 3 for 2022)")
    g.add_argument("--warmup", dest="run_warmup", type=_non_negative, metavar="N",
                   help="untimed forwards before each split (default 1; 0 = the challenge's cold "
                   "start)")
    g.add_argument("--splits", dest="run_splits", metavar="NAMES",
                   help="comma-separated splits (default valid,test)")
    g.add_argument("--max-images", dest="run_max_images", type=_positive, metavar="N",
                   help="at most N images per split")
    g.add_argument("--cudnn-benchmark", dest="run_cudnn_benchmark", action="store_true",
                   default=None, help="let cuDNN tune per shape (every shape is warmed up)")
    g.add_argument("--compile", dest="run_compile", action="store_true", default=None,
                   help="torch.compile the model first (every shape is warmed up)")
    g.add_argument("--data", dest="run_data", metavar="DIR",
                   help="DIV2K-layout root (DIV2K_valid_LR/0801x4.png, DIV2K_valid_HR/0801.png)")
    g.add_argument("--lr-dir", dest="run_lr_dir", metavar="DIR", help="a folder of LR images")
    g.add_argument("--hr-dir", dest="run_hr_dir", metavar="DIR",
                   help="HR references paired by name (alone: LR made by bicubic downscaling)")
    g.add_argument("--synthetic", dest="run_synthetic", choices=("auto", "quick", "full"),
                   help="synthetic set when no data is given (default auto: quick on CPU)")
    g.add_argument("--pixel-range", dest="run_pixel_range", type=int, choices=(1, 255),
                   help="the model's pixel range (default: from the reference registry, else 1)")
    g.add_argument("--scale", dest="run_scale", type=_positive, metavar="N",
                   help="upscaling factor (default: registry, else found by a probe forward)")
    g.add_argument("--psnr-y", dest="run_psnr_y", action="store_true", default=None,
                   help="PSNR/SSIM on the Y channel instead of RGB (the challenge used RGB)")
    g.add_argument("--on-oom", dest="run_on_oom", choices=("skip", "stop"),
                   help="when an image runs out of memory (GPU, or the CPU allocator): skip "
                   "it (default) or stop the run, keeping what was measured")
    g.add_argument("--threads", dest="run_threads", type=_positive, metavar="N",
                   help="CPU threads for torch (default: torch's setting; recorded either way)")
    g.add_argument("--seed", dest="run_seed", type=_non_negative, metavar="N",
                   help="seed of the synthetic images (default 0)")
    g.add_argument("--no-nvml", dest="run_no_nvml", action="store_true", default=None,
                   help="do not sample GPU memory and clocks with NVML")
    g.add_argument("--no-progress", dest="run_no_progress", action="store_true", default=None,
                   help="no progress bar (it is off anyway when stderr is not a terminal)")


def _option_name(dest: str) -> str:
    return "--" + dest.removeprefix("run_").replace("_", "-")


def run_config_from_args(args: argparse.Namespace) -> Any:
    """The RunConfig the options ask for, or None without ``--run``. A run option given without
    ``--run`` and any inconsistent value are UsageErrors (one line)."""
    dests = [*_FIELDS, *_FLAGS, "run_splits", "run_no_nvml", "run_no_progress"]
    given = [d for d in dests if getattr(args, d, None) is not None]
    if not getattr(args, "run", False):
        if given:
            names = ", ".join(_option_name(d) for d in given)
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{names} only {verb} with --run")
        return None
    if args.run_data or args.run_lr_dir or args.run_hr_dir:
        check("PIL", "reading images (--data, --lr-dir, --hr-dir)")
    from esrprof.run import RunConfig

    kwargs: dict[str, Any] = {}
    for dest, name in {**_FIELDS, **_FLAGS}.items():
        value = getattr(args, dest, None)
        if value is not None:
            kwargs[name] = value
    if args.run_splits is not None:
        splits = tuple(s.strip() for s in args.run_splits.split(",") if s.strip())
        if not splits:
            raise UsageError(f"--splits {args.run_splits!r}: give names like valid,test")
        kwargs["splits"] = splits
    if args.run_no_nvml:
        kwargs["nvml"] = False
    kwargs["progress"] = not args.run_no_progress and sys.stderr.isatty()
    if args.run_tile_overlap is not None and args.run_tile is None:
        raise UsageError("--tile-overlap needs --tile")
    from esrprof.challenges import challenge

    rules = challenge(getattr(args, "challenge", None))  # the year's protocol (default latest)
    kwargs["challenge"] = rules.name
    kwargs.setdefault("trials", rules.protocol.trials)
    config = RunConfig(**kwargs)
    config.resolved_device()  # an unusable device is a usage error now, before loading anything
    return config


# --------------------------------------------------------------------------------- render


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_run(blocks: dict[str, Any]) -> str:
    """A human table of the run blocks (works on a result read back from JSON too)."""
    from esrprof.probe import shape_text  # here: `esrprof --help` does not pay for torch

    runtime = blocks.get("runtime") or {}
    memory = blocks.get("memory") or {}
    quality = blocks.get("quality") or {}
    data = blocks.get("data") or {}
    cfg = blocks.get("run_config") or {}
    splits = runtime.get("splits") or {}

    head = (f"Run on {cfg.get('device_resolved', runtime.get('device', '?'))}, "
            f"{runtime.get('dtype', cfg.get('dtype', '?'))}, {runtime.get('clock', '?')} clock")
    if cfg.get("threads_used"):
        head += f", {threads_text(cfg['threads_used'])}"
    choice = next((s.get("trial_choice") for s in splits.values()), "best")
    how = "average of" if choice == "mean" else "best of"
    protocol = runtime.get("protocol")
    head += (f"; {how} {runtime.get('trials', '?')} trial(s), {cfg.get('warmup', '?')} warm-up"
             + (f"; the {protocol} protocol ({runtime.get('challenge')})" if protocol else ""))
    if cfg.get("tile"):
        head += f"; tiles {cfg['tile']} (+{cfg.get('tile_overlap')})"
    lines = [head, f"  data: {data.get('description', '?')}"]
    if data.get("unreadable"):
        lines.append(f"  unreadable images skipped: {data['unreadable']}")

    rows = [("split", "images", "runtime [ms]", "median", "min", "IQR", "trial spread")]
    for name, s in splits.items():
        n = s.get("n_images", len(s.get("images", [])))
        spread = s.get("trial_spread_pct")
        iqr, spread_text = _fmt(s.get("iqr_ms")), "-" if spread is None else f"{spread:.1f}%"
        if isinstance(n, int) and n < MIN_SAMPLES_FOR_SPREAD:
            iqr = f"n/a ({n} samples)"
            spread_text = "-" if spread is None else f"n/a ({n} samples)"
        rows.append((name, str(n), _fmt(s.get("runtime_ms")), _fmt(s.get("median_ms")),
                     _fmt(s.get("min_ms")), iqr, spread_text))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))))

    each = ("the trials' per-image means averaged" if choice == "mean"
            else "the best trial's per-image mean")
    lines.append(f"  Runtime [ms]: {_fmt(runtime.get('runtime_ms'))}  (mean of the split "
                 f"figures; each {each})")
    mem = f"  Memory [MiB]: {_fmt(memory.get('memory_mib'), 1)}"
    if memory.get("activation_peak_mib") is not None:
        mem += f"  (activations {_fmt(memory['activation_peak_mib'], 1)})"
    lines.append(mem + (f"  -- {memory['note']}" if memory.get("note") else ""))
    psnr = quality.get("psnr_db") or {}
    channel = (quality.get("channel") or "rgb").upper()
    lines.append("  PSNR [dB, " + channel + "]: "
                 + ", ".join(f"{k} {_fmt(v)}" for k, v in psnr.items()))
    if quality.get("note"):
        lines.append(f"    {quality['note']}")
    for name, s in splits.items():
        for o in s.get("oom") or []:
            lines.append(f"  out of memory: {name}/{o.get('image')} "
                         f"(LR {shape_text(o.get('lr_shape', []))})")
        if s.get("throttled_trials"):
            lines.append(f"  {name}: GPU throttled during trial(s) {s['throttled_trials']}")
    for note in cfg.get("notes") or []:
        lines.append(f"  note: {note}")
    if cfg.get("stopped"):
        lines.append(f"  stopped early: {cfg['stopped']}")
    return "\n".join(lines)
