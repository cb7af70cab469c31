"""``esrprof report``: leaderboards, challenge scores, charts and a summary from results/tables."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from esrprof.challenges import CHALLENGES
from esrprof.cli._common import add_challenge_argument, add_command
from esrprof.errors import ResultFileError, UsageError
from esrprof.extras import check

TRACK_CHOICES = ("main", "st1", "st2")
# the years with a score (esrprof/challenges/: plain data, light to import)
SCORE_CHOICES = tuple(name for name, rules in CHALLENGES.items() if rules.score is not None)
METRIC_CHOICES = (
    "runtime_ms", "params_m", "flops_g", "acts_m", "memory_mib", "convs", "complete_macs_g",
    "psnr_val", "psnr_test",
)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = add_command(
        sub,
        "report",
        help="leaderboards, challenge scores and charts from result JSONs and CSV tables",
        description=(
            "Build a report folder (CSV and Markdown leaderboards, PNG/SVG charts, summary.md, "
            "one self-contained index.html) from `esrprof profile --json` results and/or CSV "
            "tables with the challenge's columns (team, runtime_ms, params_M, flops_G, acts_M, "
            "mem_M, psnr_val, psnr_test, ...)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="RESULT",
                        help="result .json, table .csv, or a folder of them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="report folder: new, empty, or an earlier esrprof report nobody "
                        "changed since (then replaced whole); any other folder is refused")
    parser.add_argument("--title", default=None,
                        help="page title (default: 'esrprof report: FOLDER NAME')")
    parser.add_argument(
        "--track", action="append", choices=TRACK_CHOICES, dest="tracks",
        help="2022 leaderboard to build: main (runtime), st1 (#Params+FLOPs ranks), st2 (five "
        "ranks); repeatable; default: every track the inputs' metrics allow",
    )
    add_challenge_argument(parser, default="the score year all the entries were profiled "
                           "under, if they agree on one; else the 2022 tracks")
    parser.add_argument("--score", action="append", choices=SCORE_CHOICES, dest="scores",
                        default=[], help="add a year's score leaderboard; repeatable")
    parser.add_argument(
        "--score-baseline", metavar="NAME",
        help="entry whose figures the --score is relative to (default: the year's published "
        "baseline model: RLFN for 2024, EFDN for 2025, SPAN for 2026, with the figures of "
        "docs/challenges.md); not a latency baseline file",
    )
    # The former name of --score-baseline, easy to mistake for `esrprof baseline` files.
    parser.add_argument("--baseline", dest="deprecated_baseline", metavar="NAME",
                        help=argparse.SUPPRESS)
    parser.add_argument("--rank-by", action="append", choices=METRIC_CHOICES, dest="rank_by",
                        default=[], metavar="METRIC",
                        help=f"add a plain ranking by one metric ({', '.join(METRIC_CHOICES)})")
    parser.add_argument(
        "--psnr-gate", metavar="DB[/DB]",
        help="rank only entries with PSNR val >= DB (and test >= the second DB), e.g. 28.95/28.65; "
        "a table's own 'ranked' column always applies",
    )
    parser.add_argument(
        "--ranks", choices=("auto", "printed", "computed"), default="auto",
        help="per-metric ranks of the rank sums: a published table's printed ranks when the "
        "ranked set is the table's (auto), always those (printed), or recomputed from values",
    )
    parser.add_argument("--top-layers", type=int, default=10, metavar="N",
                        help="layers per model in the per-layer charts (default 10)")
    parser.add_argument("--allow-mixed-hardware", action="store_true",
                        help="report runtime/memory measured on different machines together")
    parser.add_argument("--no-charts", action="store_true", help="tables and summary only")
    parser.add_argument("--charts", default="png,svg", metavar="FORMATS",
                        help="chart formats to write: png, svg or png,svg (default); the page "
                        "embeds the PNG, or links the SVG when only SVG is asked for")
    parser.add_argument(
        "--no-predict", action="store_true",
        help="do not predict the published NTIRE 2022 table's reference models (by default "
        "each row whose team is a model of `esrprof zoo` gets its runtime and memory predicted "
        "from the shape trace on the Titan Xp, for the section 'Why runtime diverges from "
        "FLOPs'); predictions carried by result JSONs are shown either way",
    )
    parser.set_defaults(func=run)
    return parser


def _challenge(args: argparse.Namespace) -> str:
    """The year named by --challenge (checked: one usage line for an unknown name); without
    it, the year the entries were profiled under when they all follow one score year."""
    if args.challenge is None:
        return "auto"  # the year the entries follow (esrprof.report.AUTO)
    from esrprof.challenges import challenge

    return challenge(args.challenge).name


def run(args: argparse.Namespace) -> int:
    # usage errors first, without torch or pandas
    for name in args.inputs:
        if not os.path.exists(name):
            raise ResultFileError(f"{name}: no such file")
    for module in ("pandas", *(() if args.no_charts else ("matplotlib", "adjustText"))):
        check(module, "esrprof report")  # before any work, without importing it
    if args.top_layers < 1:
        raise UsageError("--top-layers must be at least 1")
    from esrprof.report.charts import parse_formats  # numpy: after the checks that need none

    formats = parse_formats(args.charts)
    score_baseline = args.score_baseline
    if args.deprecated_baseline is not None:
        if score_baseline is not None and score_baseline != args.deprecated_baseline:
            raise UsageError("--baseline is the former name of --score-baseline; give one")
        score_baseline = args.deprecated_baseline
        print("esrprof: note: --baseline is now --score-baseline (the score's reference "
              "model, not a baseline file)", file=sys.stderr)
    title = args.title or f"esrprof report: {Path(args.output).name or 'report'}"
    from esrprof.report import PsnrGate, ReportOptions, build_report, write_report  # the work

    options = ReportOptions(
        title=title,
        psnr_gate=PsnrGate.parse(args.psnr_gate) if args.psnr_gate else None,
        tracks=tuple(dict.fromkeys(args.tracks)) if args.tracks else None,
        scores=tuple(dict.fromkeys(args.scores)),
        score_baseline=score_baseline,
        rank_by=tuple(dict.fromkeys(args.rank_by)),
        per_metric_ranks=args.ranks,
        top_layers=args.top_layers,
        allow_mixed_hardware=args.allow_mixed_hardware,
        predict_references=not args.no_predict,
        challenge=_challenge(args),
    )
    if options.challenge is not None:
        options = dataclasses.replace(
            options, scores=tuple(s for s in options.scores if s != options.challenge))
    report = build_report(args.inputs, options)
    out = write_report(report, args.output, charts=not args.no_charts, formats=formats)
    boards = ", ".join(b.key for b in report.leaderboards)
    print(f"{out}/index.html: {len(report.entries.table)} entries; leaderboards: {boards}")
    for line in report.skipped:
        print(f"  {line}", file=sys.stderr)
    for note in report.notes:
        print(f"  note: {note}", file=sys.stderr)
    c = report.findings.correlation("flops_g", "runtime_ms")
    if c is not None:
        print(f"  FLOPs vs runtime: Spearman {c.spearman:.3f}, Kendall {c.kendall:.3f} (n={c.n})")
    f = report.prediction
    if f is not None:
        line = f"  predicted (shape trace, not measured) for {f.n_entries} entries"
        p, fl = f.runtime_vs_predicted, f.runtime_vs_flops
        if p is not None:
            line += f": runtime vs predicted runtime Spearman {p.spearman:.3f} (n={p.n})"
            if fl is not None:
                line += f", FLOPs vs runtime over the same entries {fl.spearman:.3f}"
        print(line)
    return 0
