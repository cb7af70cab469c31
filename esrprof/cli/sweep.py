"""``esrprof sweep ENTRIES -o DIR``: every entry measured in its own fresh process, resumable."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from esrprof.cli._common import add_challenge_argument, add_command, positive_int


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "sweep",
        help="measure many submissions, each in its own fresh process (resumable; local or Ray)",
        description="Count, predict (and with --run, time) every entry of ENTRIES — a TOML file "
        "of [[entry]] tables (name, model, weights, kwargs, data_range, tile, team) or a folder "
        "of *.py model files — each in a fresh process with a timeout and a memory cap. "
        "DIR/<name>.json are result records (`esrprof report DIR` ranks them), DIR/sweep.json "
        "the state, DIR/logs/<name>.log each entry's output. A rerun skips what is done.",
    )
    p.add_argument("entries", metavar="ENTRIES", help="TOML file or folder of *.py model files")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="sweep folder: new, empty, or an earlier sweep's (resumed)")
    p.add_argument("--workers", type=positive_int("--workers"), default=None, metavar="N",
                   help="entries at a time (default: one per local GPU, else 1)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds one entry may take, process start included (default 600; "
                   "0: none)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                   help="address-space cap of each entry's process (default: none on a GPU, "
                   "80%% of RAM shared by the CPU workers; 0: none)")
    p.add_argument("--repeat", type=positive_int("--repeat"), default=1, metavar="K",
                   help="run each entry K times in fresh processes, interleaved across entries")
    p.add_argument("--redo", action="append", default=[], metavar="NAME",
                   help="run this entry again even if done (repeatable)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run failed and timed-out entries again (a rerun keeps them otherwise)")
    p.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                   help="run the entries as Ray tasks (one GPU each where the cluster has GPUs) "
                   "on the cluster at ADDRESS (default: RAY_ADDRESS, or a local Ray)")
    add_challenge_argument(p)
    p.add_argument("--run", action="store_true",
                   help="also time each entry (runtime, memory; PSNR with weights and data)")
    p.add_argument("--device", default=None, metavar="DEV",
                   help="device of --run (default: the worker's GPU, else cpu)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="DIV2K-layout root for --run (default: the synthetic set)")
    p.add_argument("--max-images", type=positive_int("--max-images"), default=None,
                   metavar="N", help="images per split of --run")
    p.add_argument("--gpu", default=None, metavar="NAME",
                   help="GPU of the predicted figures (default: the challenge year's GPU)")
    p.add_argument("--no-predict", action="store_true", help="skip the predicted GPU figures")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow checkpoints that need pickle (only for files you trust)")
    p.add_argument("--no-progress", action="store_true",
                   help="one line per finished entry instead of the live bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from esrprof.errors import UsageError
    from esrprof.sweep import SweepOptions, read_entries, run_sweep
    from esrprof.sweep.progress import Bar, failure_table, repeat_table

    if args.timeout < 0:
        raise UsageError("--timeout must be 0 (none) or more seconds")
    if args.gpu and not args.no_predict:
        from esrprof.prediction.gpus import gpu_spec

        gpu_spec(args.gpu)  # a bad name is a usage error before any work
    challenge = _challenge(args.challenge)
    data = None
    if args.data is not None:
        if not Path(args.data).is_dir():
            raise UsageError(f"--data {args.data}: no such folder")
        data = str(Path(args.data).resolve())
    entries = read_entries(args.entries)
    rules = {"challenge": challenge, "run": bool(args.run), "device": args.device,
             "max_images": args.max_images, "data": data, "predict": not args.no_predict,
             "gpu": args.gpu, "allow_pickle": bool(args.allow_pickle), "repeat": args.repeat}
    options = SweepOptions(
        folder=Path(args.output), workers=args.workers, timeout_s=args.timeout or None,
        memory_gib=args.memory_limit, repeat=args.repeat, redo=tuple(args.redo),
        retry_failed=args.retry_failed, ray=args.ray, rules=rules,
    )
    bar = Bar(enabled=False if args.no_progress else None)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the sweep as SIGINT does
    try:
        summary = run_sweep(entries, options, progress=bar.update)
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    failed = len(summary.failures)
    done = len(entries) - failed
    print(f"{args.output}: {len(entries)} entries, {done} done, {failed} failed "
          f"({summary.ran} run now, {summary.kept} kept from an earlier sweep) "
          f"in {summary.seconds:.1f} s")
    if summary.failures:
        print("\n" + failure_table(summary.failures))
    if summary.repeats:
        print("\n" + repeat_table(summary.repeats))
    print(f"\nleaderboards: esrprof report {args.output} -o REPORT_DIR")
    return 0


def _challenge(name: str | None) -> str:
    """The year whose rules the sweep follows, by its canonical name (default the latest), so
    that ``--challenge 2026`` and ``--challenge ntire2026`` share one resume key."""
    from esrprof.challenges import challenge

    return challenge(name).name


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt

