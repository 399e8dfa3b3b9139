"""The storage port: list the files under a source path and open them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file seen by a listing. `path` is the full location the ledger keys on."""

    path: str
    size: int
    modified: datetime
    etag: str | None = None


class Storage(Protocol):
    """A source of files. Implementations raise `core.errors` types, never SDK exceptions."""

    root: str
    skipped: dict[str, str]
    """Files the last listing left out on purpose (path → reason), e.g. a link leading outside the allowed folders."""

    def list_files(self, pattern: str | None = None) -> Iterator[FileInfo]:
        """Yield every file under the root matching the glob `pattern` (relative to the root)."""
        ...

    def open(self, path: str) -> BinaryIO:
        """Open a file for sequential reading (a stream that supports `read(n)`)."""
        ...

    def open_seekable(self, path: str) -> BinaryIO:
        """Open a file for random access (needed by Parquet footers)."""
        ...


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob relative to the source root into a regex.

    `*` and `?` stay inside one directory level, `**/` spans any number of levels,
    `[abc]` is a character class. A pattern without a `/` matches at the top level only,
    as in `ls`; use `**/*.json` to search sub-folders.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def literal_prefix(pattern: str | None) -> str:
    """The directory part of a pattern before its first wildcard (narrows a bucket listing)."""
    if not pattern:
        return ""
    cut = len(pattern)
    for ch in "*?[":
        pos = pattern.find(ch)
        if pos != -1:
            cut = min(cut, pos)
    head = pattern[:cut]
    return head[: head.rfind("/") + 1] if "/" in head else ""


def is_hidden(relative_path: str) -> bool:
    """Files and folders starting with `.` or `_` (e.g. `_SUCCESS`, `.tmp`) are skipped, as Spark does."""
    return any(part.startswith((".", "_")) for part in relative_path.split("/") if part)


def matches(relative_path: str, pattern: str | None) -> bool:
    if is_hidden(relative_path):
        return False
    if not pattern:
        return True
    return glob_to_regex(pattern).match(relative_path) is not None
