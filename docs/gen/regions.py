"""Generated regions of a hand-written Markdown page, between two HTML comments the reader never sees."""

from __future__ import annotations

import re

REGENERATE = ".venv/bin/python -m docs.generate"
"""The command that rewrites every generated part of the docs (run from the checkout)."""


def begin_marker(name: str) -> str:
    return f"<!-- generated:{name} begin: `{REGENERATE}` rewrites this part from the code -->"


def end_marker(name: str) -> str:
    return f"<!-- generated:{name} end -->"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(begin_marker(name)) + r"\n(.*?)" + re.escape(end_marker(name)), re.DOTALL)


def read_region(text: str, name: str) -> str | None:
    """The body of region `name`, or None when the page has no such region."""
    found = _pattern(name).search(text)
    return found.group(1) if found else None


def replace_region(text: str, name: str, body: str) -> str:
    """`text` with region `name` holding `body` (which ends with a newline); the region must exist."""
    if read_region(text, name) is None:
        raise ValueError(f"no region '{name}': add the lines {begin_marker(name)!r} and {end_marker(name)!r}")
    replacement = f"{begin_marker(name)}\n{body}{end_marker(name)}"
    return _pattern(name).sub(lambda _: replacement, text, count=1)


def cell(text: str) -> str:
    """Text fit for one Markdown table cell: one line, pipes escaped, and `<` / `>` outside code spans written as
    entities (a renderer would take `<data_dir>` for an HTML tag and drop it)."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")
