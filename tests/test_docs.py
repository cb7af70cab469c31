"""Every fenced command and snippet in README.md and docs/ runs as written (issue 18, item 1).

Each document's blocks run in order, in one fresh folder per document that holds what a clone
brings, as a reader would paste them: ``bash`` blocks (and the ``$ `` lines of ``console``
blocks) through bash with this environment's ``esrprof`` on PATH, ``python`` blocks in a fresh
interpreter (under pytest when they define ``test_`` functions). A block is left out only when
its info string says why, after the language:

- ``synopsis``: the shape of a command (``esrprof zoo [NAME ...]``), not a command to paste;
- ``skip=gpu``, ``skip=network``, ``skip=data``: needs a CUDA GPU, the internet, or a data set
  this machine does not have;
- ``skip=long``: runs for minutes (the benchmarks), measured apart from the suite;
- ``exit=0,1``: the exit codes that mean the command worked (a gate may call a regression).

Blocks in other languages (``text``, ``yaml``, output examples) are shown, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"bash", "sh", "console", "python"}
SKIP_REASONS = {
    "gpu": "needs a CUDA GPU",
    "network": "needs the internet (package installs, downloads)",
    "data": "needs a data set this machine does not have",
    "long": "runs for minutes: measured apart from the suite",
}
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", flags=re.S | re.M)
BLOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    options: tuple[str, ...]
    body: str

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    def skip_reason(self) -> str | None:
        for option in self.options:
            if option == "synopsis":
                return "a synopsis, not a command"
            if option.startswith("skip="):
                kind = option.split("=", 1)[1]
                return SKIP_REASONS.get(kind, f"marked skip={kind}")
        return None

    def exit_codes(self) -> set[int]:
        for option in self.options:
            if option.startswith("exit="):
                return {int(c) for c in option.split("=", 1)[1].split(",")}
        return {0}


def blocks_of(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        words = match.group(1).split()
        language = words[0] if words else ""
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(document, line, language, tuple(words[1:]), match.group(2)))
    return found


def runnable(document: Path) -> list[Block]:
    return [b for b in blocks_of(document) if b.language in RUN_LANGUAGES]


def console_commands(body: str) -> str:
    """The ``$ `` lines of a transcript, continuation lines kept."""
    lines, keep = [], False
    for line in body.splitlines():
        if line.startswith("$ "):
            lines.append(line[2:])
            keep = line.endswith("\\")
        elif keep:
            lines.append(line)
            keep = line.endswith("\\")
    return "\n".join(lines) + "\n"


def fresh_folder(tmp_path: Path) -> Path:
    """What a clone brings beside the docs: the reference models and the benchmarks.

    Linked, not copied: the installed ``esrprof.reference_models`` is this checkout's folder, and
    the loader refuses a second copy of a package it has imported.
    """
    work = tmp_path / "work"
    work.mkdir()
    for name in ("reference_models", "benchmarks"):
        (work / name).symlink_to(ROOT / name)
    return work


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)
    env["COLUMNS"] = "80"
    env["PYTHONHASHSEED"] = "0"
    return env


def run_block(block: Block, work: Path) -> subprocess.CompletedProcess[str]:
    if block.language == "python":
        script = work / f"snippet_{block.line}.py"
        script.write_text(block.body, encoding="utf-8")
        if re.search(r"^def test_", block.body, flags=re.M):
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       script.name]
        else:
            command = [sys.executable, script.name]
    else:
        body = console_commands(block.body) if block.language == "console" else block.body
        command = ["bash", "-e", "-o", "pipefail", "-c", body]
    return subprocess.run(command, cwd=work, env=environment(), capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_every_document_has_blocks_the_harness_sees():
    languages = {b.language for d in DOCUMENTS for b in blocks_of(d)}
    assert {"bash", "python"} <= languages
    unclosed = [d.name for d in DOCUMENTS
                if d.read_text(encoding="utf-8").count("\n```") % 2]
    assert not unclosed, f"a fence is not closed in {unclosed}"


def test_every_skip_option_is_known():
    bad = [(b.where, o) for d in DOCUMENTS for b in blocks_of(d) for o in b.options
           if not (o == "synopsis" or o.startswith("exit=")
                   or (o.startswith("skip=") and o[5:] in SKIP_REASONS))]
    assert not bad, f"unknown block options: {bad}"


def test_synopsis_lines_are_marked():
    """A line with ``[OPTIONAL]`` or ``NAME ...`` placeholders fails when pasted: it must sit
    in a block marked ``synopsis``."""
    placeholder = re.compile(r"\[[A-Z-]+|\b[A-Z]{3,}\s\.\.\.|\s\.\.\.\]")
    bad = [b.where for d in DOCUMENTS for b in runnable(d)
           if b.language != "python" and "synopsis" not in b.options
           and placeholder.search(console_commands(b.body) if b.language == "console"
                                  else b.body)]
    assert not bad, f"synopsis lines in runnable blocks: {bad}"


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_document_runs_as_written(document: Path, tmp_path: Path):
    blocks = runnable(document)
    if not blocks:
        pytest.skip("no runnable block")
    work = fresh_folder(tmp_path)
    ran = 0
    for block in blocks:
        if block.skip_reason():
            continue
        done = run_block(block, work)
        if done.returncode not in block.exit_codes():
            tail = (done.stdout[-1500:] + "\n" + done.stderr[-2500:]).strip()
            pytest.fail(f"{block.where} exited {done.returncode}:\n{tail}", pytrace=False)
        ran += 1
    if not ran:
        pytest.skip("every block is marked")
    shutil.rmtree(work, ignore_errors=True)
