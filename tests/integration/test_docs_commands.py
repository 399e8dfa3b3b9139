"""Every shell command in README.md and docs/**/*.md runs as written (docs/README.md, "Commands").

The convention: a fenced block tagged `bash` is run; one that cannot run here (it installs packages, starts a
long-lived server, needs PostgreSQL, a cluster or a container engine) has `<!-- not-run: <reason> -->` on the line
right above its opening fence and is reported as a skipped case with that reason. The blocks of one page run in
order (a page is followed from the top, so a later block may use what an earlier one made), each with
`bash -euo pipefail`, in a scratch folder of the page's own: the working directory, with `AUTOLOADER_DATA_DIR` set
to its `data/` and no other `AUTOLOADER_*` variable (the documented defaults), and this virtualenv's `autoloader`
first on `PATH`. Each must exit 0. Pages run two at a time (the commands are mostly process start-up).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
SHELL = "bash"
OTHER_SHELL_TAGS = ("sh", "shell", "console", "zsh")
"""Fences that would hold commands under another name: refused, so that no command escapes the test."""
NOT_RUN = re.compile(r"^<!-- not-run: (?P<reason>.+?) -->$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<tag>[\w-]*)\s*$")
BLOCK_TIMEOUT = 120
COVERED = {
    "autoloader demo": r"^autoloader demo\b",
    "autoloader run": r"^autoloader run\b",
    "autoloader db backup": r"^autoloader db backup\b",
    "autoloader db restore --force": r"^autoloader db restore\b.*--force",
    "autoloader secrets rotate": r"^autoloader secrets rotate\b",
    "autoloader db upgrade": r"^autoloader db upgrade\b",
}
"""Commands the docs must show running (each in some block that the test runs)."""


@dataclass(frozen=True, slots=True)
class Block:
    page: Path
    line: int
    tag: str
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a page, with the not-run reason written right above each (if any)."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = opening.group("indent"), i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        body = [line.removeprefix(indent) for line in lines[start + 1 : i]]
        marker = NOT_RUN.match(lines[start - 1].strip()) if start else None
        found.append(
            Block(
                page,
                start + 1,
                opening.group("tag"),
                "\n".join(body) + "\n",
                marker.group("reason") if marker else None,
            )
        )
        i += 1
    return found


def shell_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks_of(page) if b.tag == SHELL]


def docs_env(scratch: Path) -> dict[str, str]:
    """The documented defaults: no AUTOLOADER_* of the test session's, the data dir in the scratch folder."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("AUTOLOADER_")}
    env["AUTOLOADER_DATA_DIR"] = str(scratch / "data")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_page(blocks: list[Block]) -> list[str]:
    """Run one page's runnable blocks in order in a scratch folder; the failures (the first one ends the page)."""
    with tempfile.TemporaryDirectory(prefix="docs-commands-") as tmp:
        scratch = Path(tmp)
        env = docs_env(scratch)
        for block in blocks:
            try:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block.code],
                    cwd=scratch,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=BLOCK_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                return [f"{block.where}: still running after {BLOCK_TIMEOUT} s:\n{block.code}"]
            if done.returncode != 0:
                return [
                    f"{block.where}: exit {done.returncode}\n{block.code}--- stdout\n{done.stdout[-1500:]}"
                    f"--- stderr\n{done.stderr[-1500:]}"
                ]
    return []


def test_commands_are_in_bash_blocks_and_every_marker_sits_on_one() -> None:
    problems = []
    for page in PAGES:
        blocks = blocks_of(page)
        problems += [f"{b.where}: tag the block `bash`" for b in blocks if b.tag in OTHER_SHELL_TAGS]
        problems += [
            f"{b.where}: a not-run marker above a `{b.tag}` block" for b in blocks if b.not_run and b.tag != SHELL
        ]
        marked = {b.line - 1 for b in blocks if b.not_run}
        lines = page.read_text().splitlines()
        problems += [
            f"{page.relative_to(ROOT)}:{n}: a not-run marker with no bash block right under it"
            for n, line in enumerate(lines, start=1)
            if NOT_RUN.match(line.strip()) and n not in marked
        ]
    assert not problems, "\n".join(problems)


def test_the_docs_run_the_cli_commands_an_operator_needs() -> None:
    commands = [line.strip() for b in shell_blocks() if b.not_run is None for line in b.code.splitlines()]
    missing = [name for name, pattern in COVERED.items() if not any(re.search(pattern, c) for c in commands)]
    assert not missing, f"no runnable block of the docs runs: {missing}"


@pytest.mark.slow
def test_every_runnable_command_exits_0() -> None:
    by_page: dict[Path, list[Block]] = {}
    for block in shell_blocks():
        if block.not_run is None:
            by_page.setdefault(block.page, []).append(block)
    assert by_page, "no runnable bash block in the docs"
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for result in pool.map(run_page, by_page.values()) for f in result]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("block", [b for b in shell_blocks() if b.not_run], ids=lambda b: b.where)
def test_not_run_block(block: Block) -> None:
    """Listed so that every command the test does not run shows up in the report, with the reason."""
    pytest.skip(f"not run ({block.where}): {block.not_run}")
