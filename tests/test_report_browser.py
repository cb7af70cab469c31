"""The report page in a real browser: headless Chromium loads it, and a probe script checks that
every image decoded and every leaderboard table is there. Skipped where Chromium is absent
(Debian: `apt-get install chromium`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from esrprof.report import ReportOptions, build_report, write_report

TABLE = Path(__file__).resolve().parents[1] / "reference_models" / "data" / "ntire2022_table1.csv"
CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium"),
]

# Runs after every image has loaded or failed; writes its verdict into the DOM for --dump-dom.
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var sections = Array.from(document.querySelectorAll('section.leaderboard'));
  var out = document.createElement('pre');
  out.id = 'esrprof-probe';
  out.textContent = JSON.stringify({
    images: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    boards: sections.map(function (s) {
      var t = s.querySelector('table');
      return {id: s.id, rows: t ? t.tBodies[0].rows.length : 0};
    })
  });
  document.body.appendChild(out);
});
</script>"""


def render_in_chromium(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name("_probe.html")  # beside the page, so relative links resolve alike
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                     encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
        "--dump-dom", probe.as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
        shutil.rmtree(profile, ignore_errors=True)
    found = re.search(r'<pre id="esrprof-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"probe did not run (rc {proc.returncode}): {proc.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "ntire2022"
    report = build_report([TABLE], ReportOptions(title="NTIRE 2022", scores=("ntire2024",)))
    write_report(report, out)
    return out, report


def test_every_image_loads_and_every_table_is_present(report_dir, tmp_path):
    out, report = report_dir
    seen = render_in_chromium(out / "index.html", tmp_path)
    charts = json.loads((out / "report.json").read_text())["charts"]
    assert seen["images"] == len(charts) == 6  # four of the table, two of its predictions
    assert seen["loaded"] == seen["images"]
    assert [b["id"] for b in seen["boards"]] == [b.key for b in report.leaderboards]
    for board, got in zip(report.leaderboards, seen["boards"]):
        assert got["rows"] == len(board.frame) == 45, board.key


def test_probe_catches_a_broken_image(report_dir, tmp_path):
    """The check can fail: a page whose image data is corrupt is reported as not loaded."""
    out, _ = report_dir
    broken = out / "broken.html"
    text = (out / "index.html").read_text(encoding="utf-8")
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/=]{100}", "base64,AAAA", text, count=1),
                      encoding="utf-8")
    try:
        seen = render_in_chromium(broken, tmp_path)
    finally:
        broken.unlink()
    assert seen["loaded"] == seen["images"] - 1


def test_committed_example_renders(tmp_path):
    example = Path(__file__).resolve().parents[1] / "reports" / "ntire2022"
    if not (example / "index.html").is_file():
        pytest.skip("no committed example report")
    copy = tmp_path / "example"
    shutil.copytree(example, copy)  # the probe is written beside the page: never in the repo
    seen = render_in_chromium(copy / "index.html", tmp_path)
    charts = json.loads((copy / "report.json").read_text())["charts"]
    assert seen["images"] == len(charts) and seen["loaded"] == seen["images"]
    boards = json.loads((copy / "report.json").read_text())["leaderboards"]
    assert [b["id"] for b in seen["boards"]] == [b["key"] for b in boards]
