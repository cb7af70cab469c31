"""Writing a report folder: leaderboards as CSV and Markdown, charts, one HTML page, report.json.

Every file goes through :func:`esrprof.files.write_text` into the folder being built (see
:func:`esrprof.report.write_report` for how it replaces an earlier one). Text that comes from the
inputs is escaped for the format it lands in (:mod:`esrprof.report.markup`).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from esrprof import files, jsonio
from esrprof.extras import require
from esrprof.report.markup import md_plain, md_text
from esrprof.report.ranking import METRICS, Leaderboard

REPORT_JSON = "report.json"

_FIXED_LABELS = {
    "rank": "Rank",
    "model": "Model",
    "score": "Score",
    "note": "Note",
    "printed_rank": "Printed rank",
    "printed_sum": "Printed sum",
    "st1_sum": "Sum",
    "st2_sum": "Sum",
}


def column_label(column: str) -> str:
    if column in _FIXED_LABELS:
        return _FIXED_LABELS[column]
    if column in METRICS:
        return METRICS[column].label
    if column.endswith("_rank") and column[: -len("_rank")] in METRICS:
        return f"rank {METRICS[column[: -len('_rank')]].label.split(' [')[0]}"
    return column


def _format(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    try:
        if require("pandas", "the report").isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if column in METRICS and isinstance(value, (int, float)):
        return f"{float(value):.{METRICS[column].decimals}f}"
    if column == "score":  # exp() grows fast: far from the baseline, scientific notation
        return f"{float(value):.3f}" if abs(float(value)) < 1e5 else f"{float(value):.3e}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def display_frame(frame: Any) -> Any:
    """The leaderboard as strings with the challenge's headers and decimals."""
    pd = require("pandas", "the report")
    out = pd.DataFrame(
        {column_label(c): [_format(c, v) for v in frame[c]] for c in frame.columns}
    )
    return out


def board_markdown(board: Leaderboard) -> str:
    align = ["left" if c in ("model", "note") else "right" for c in board.frame.columns]
    table = display_frame(board.frame).map(md_text).to_markdown(
        index=False, disable_numparse=True, colalign=align
    )
    parts = [f"## {md_text(board.title)}", "", md_text(board.description), "", table, ""]
    if board.rank_source == "printed":
        parts += ["Per-metric ranks as printed in the source table.", ""]
    parts += [f"- {md_text(n)}" for n in board.notes]
    return "\n".join(parts).rstrip() + "\n"


def board_html(board: Leaderboard) -> str:
    table = display_frame(board.frame).to_html(
        index=False, escape=True, border=0, classes="board", na_rep=""
    )
    parts = [
        f'<section class="leaderboard" id="{html.escape(board.key)}">',
        f"<h2>{html.escape(board.title)}</h2>",
        f"<p>{html.escape(board.description)}</p>",
        table,
    ]
    if board.rank_source == "printed":
        parts.append("<p class='small'>Per-metric ranks as printed in the source table.</p>")
    if board.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in board.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def markdown_to_html(text: str) -> str:
    """The small Markdown subset the summary uses: paragraphs, bullets, pipe tables, **bold**
    (escaped text, as :func:`md_text` writes it, shown literally)."""

    def inline(s: str) -> str:
        out, pos = [], 0
        for m in re.finditer(r"(?<!\\)\*\*(.+?)(?<!\\)\*\*", s):
            out += [html.escape(md_plain(s[pos:m.start()])),
                    f"<strong>{html.escape(md_plain(m.group(1)))}</strong>"]
            pos = m.end()
        return "".join([*out, html.escape(md_plain(s[pos:]))])

    def cells(line: str) -> list[str]:
        line = line.strip()
        line = line[1:] if line.startswith("|") else line
        line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
        return [c.strip() for c in re.split(r"(?<!\\)\|", line)]

    out: list[str] = []
    blocks = [b for b in text.strip().split("\n\n") if b.strip()]
    for block in blocks:
        lines = block.strip().splitlines()
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(x[2:])}</li>" for x in lines) + "</ul>")
        elif all(line.startswith("|") for line in lines):
            rows = [cells(line) for line in lines]
            head, body = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]
            out.append(
                "<table class='board corr'><thead><tr>"
                + "".join(f"<th>{inline(c)}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                          for r in body)
                + "</tbody></table>"
            )
        else:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222}
table.board{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}
table.board th,table.board td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
table.board th{background:#f3f3f3}
table.board td:nth-child(2),table.board th:nth-child(2){text-align:left}
section.leaderboard td:last-child{text-align:left;white-space:nowrap}
table.corr td:first-child,table.corr th:first-child{text-align:left}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.small{font-size:12px;color:#555}
nav a{margin-right:1em}
"""


def _section_markdown(report: Any) -> str:
    from esrprof.report.prediction import prediction_markdown

    return prediction_markdown(report.prediction, report.entries.table,
                               report.entries.predictions, report.entries.prediction_sources)


def figure_html(chart: Any, charts_dir: Path) -> str:
    """One chart: its PNG embedded as a data URI, its caption, a link to its SVG."""
    data = base64.b64encode((charts_dir / chart.png).read_bytes()).decode("ascii")
    return (
        f"<figure id='chart-{html.escape(chart.key)}'>"
        f"<img src='data:image/png;base64,{data}' alt='{html.escape(chart.title)}'>"
        f"<figcaption>{html.escape(chart.caption or chart.title)} · "
        f"<a href='charts/{html.escape(chart.svg)}'>SVG</a></figcaption></figure>"
    )


def figure_markdown(chart: Any) -> list[str]:
    return [f"![{md_text(chart.title)}](charts/{chart.png})", "",
            f"*{md_text(chart.caption or chart.title)}* ([SVG](charts/{chart.svg}))", ""]


def prediction_section_html(report: Any, charts: Iterable[Any], charts_dir: Path) -> str:
    """The section "Why runtime diverges from FLOPs" (empty without predictions)."""
    if report.prediction is None:
        return ""
    from esrprof.report.prediction import SECTION_TITLE

    parts = [f"<section id='prediction'><h2>{html.escape(SECTION_TITLE)}</h2>",
             markdown_to_html(_section_markdown(report))]
    parts += [figure_html(c, charts_dir) for c in charts]
    parts.append("</section>")
    return "\n".join(parts)


def prediction_section_markdown(report: Any, charts: Iterable[Any]) -> str:
    """The section "Why runtime diverges from FLOPs" (empty without predictions)."""
    if report.prediction is None:
        return ""
    from esrprof.report.prediction import SECTION_TITLE

    parts = [f"## {SECTION_TITLE}", "", _section_markdown(report).rstrip(), ""]
    for c in charts:
        parts += figure_markdown(c)
    return "\n".join(parts).rstrip() + "\n"


def page_html(report: Any, charts: Iterable[Any], charts_dir: Path,
              prediction_charts: Iterable[Any] = ()) -> str:
    """One self-contained page: tables inline, charts embedded as PNG data URIs (each links to
    its SVG beside the page)."""
    from esrprof._version import __version__

    title = html.escape(report.title)
    boards = list(report.leaderboards)
    charts = list(charts)
    nav = "".join(f'<a href="#{html.escape(b.key)}">{html.escape(b.title)}</a>' for b in boards)
    if report.prediction is not None:
        from esrprof.report.prediction import SECTION_TITLE

        nav = f"<a href='#prediction'>{html.escape(SECTION_TITLE)}</a>" + nav
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p class='small'>esrprof {html.escape(__version__)} · inputs: "
        + html.escape(", ".join(Path(s).name for s in report.entries.sources))
        + f" · {len(report.entries.table)} entries"
        + (f" · PSNR gate {html.escape(str(report.options.psnr_gate))}"
           if report.options.psnr_gate else "")
        + "</p>",
        f"<nav>{nav}<a href='#charts'>Charts</a></nav>",
        "<section id='summary'><h2>Summary</h2>",
        markdown_to_html(report.summary_markdown),
        "</section>",
    ]
    if report.skipped or report.notes:
        parts.append("<ul class='small'>" + "".join(
            f"<li>{html.escape(s)}</li>" for s in (*report.notes, *report.skipped)) + "</ul>")
    section = prediction_section_html(report, prediction_charts, charts_dir)
    if section:
        parts.append(section)
    parts += [board_html(b) for b in boards]
    parts.append("<section id='charts'><h2>Charts</h2>")
    parts += [figure_html(c, charts_dir) for c in charts]
    parts += ["</section>", "</body></html>", ""]
    return "\n".join(parts)


def report_markdown(report: Any, charts: Iterable[Any],
                    prediction_charts: Iterable[Any] = ()) -> str:
    """The whole report as one Markdown file (renders on a code host, charts linked)."""
    parts = [f"# {md_text(report.title)}", "", "## Summary", "",
             report.summary_markdown.rstrip(), ""]
    if report.skipped or report.notes:
        parts += [f"- {md_text(s)}" for s in (*report.notes, *report.skipped)] + [""]
    section = prediction_section_markdown(report, prediction_charts)
    if section:
        parts += [section]
    parts += [board_markdown(b) for b in report.leaderboards]
    parts += ["## Charts", ""]
    for c in charts:
        parts += figure_markdown(c)
    return "\n".join(parts).rstrip() + "\n"


def write_report_files(report: Any, folder: Path, *, charts: bool = True) -> list[str]:
    """Every file of the report into ``folder`` (which should be empty); returns their names."""
    from esrprof.report.charts import write_charts

    boards_dir = files.make_folder(folder / "leaderboards")
    for board in report.leaderboards:
        files.write_text(boards_dir / f"{board.key}.csv", board.frame.to_csv(index=False))
        files.write_text(boards_dir / f"{board.key}.md", board_markdown(board))
    files.write_text(folder / "entries.csv",
                     report.entries.table_with_predictions().to_csv(index=False))
    charts_dir = folder / "charts"
    drawn = (
        write_charts(report.entries, report.findings, charts_dir, report.options.top_layers)
        if charts
        else ()
    )
    predicted: tuple[Any, ...] = ()
    if charts and report.prediction is not None:
        from esrprof.report.prediction import write_prediction_charts

        _, predicted = write_prediction_charts(report.entries.table, report.entries.predictions,
                                               charts_dir, report.prediction)
    files.write_text(folder / "summary.md", report.summary_markdown)
    files.write_text(folder / "report.md", report_markdown(report, drawn, predicted))
    files.write_text(folder / "index.html", page_html(report, drawn, charts_dir, predicted))
    written = sorted(str(p.relative_to(folder).as_posix()) for p in folder.rglob("*")
                     if p.is_file() and p.name != files.BUILDING)
    document = {**report.to_dict(), "charts": [c.to_dict() for c in (*drawn, *predicted)],
                "files": sorted([*written, REPORT_JSON, files.MANIFEST])}
    files.write_text(folder / REPORT_JSON, jsonio.dumps(document) + "\n")
    return document["files"]
