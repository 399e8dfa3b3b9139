"""The storage port: list the files under a source path and open them."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import BinaryIO, Generic, NoReturn, Protocol, TypeVar

from core.errors import AutoloaderError, ConfigError, SourceChanged

T = TypeVar("T")


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
    partition_columns: list[str] | None
    """The source's Hive-style folder columns (`year=2024/`): None reads every one, [] none, a list only those."""

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        """Yield every file under the root matching the glob `pattern` (relative to the root); with `start_after`
        (a full path) only those whose path sorts after it, skipping the rest as early as the backend can (S3's
        StartAfter, GCS's start offset, folders pruned on local and SFTP): incremental listing."""
        ...

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        """Open a file for sequential reading (a stream that supports `read(n)`). With `version` (the etag its
        listing gave) the stream is of that version or the open raises `SourceChanged`."""
        ...

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        """Open a file for random access (needed by Parquet footers); `version` as for `open`."""
        ...

    def cluster_options(self) -> dict[str, str]:
        """The Hadoop settings a Spark cluster needs to read this source's paths with the source's own endpoint and
        credentials (S3A per-bucket keys); empty where the cluster reads with its own configuration."""
        ...


class StorageWrapper:
    """A `Storage` around another one: the source's attributes are the inner storage's (read and set)."""

    def __init__(self, inner: Storage):
        self.inner = inner

    @property
    def root(self) -> str:
        return self.inner.root

    @root.setter
    def root(self, value: str) -> None:
        self.inner.root = value

    @property
    def skipped(self) -> dict[str, str]:
        return self.inner.skipped

    @skipped.setter
    def skipped(self, value: dict[str, str]) -> None:
        self.inner.skipped = value

    @property
    def partition_columns(self) -> list[str] | None:
        return self.inner.partition_columns

    @partition_columns.setter
    def partition_columns(self, value: list[str] | None) -> None:
        self.inner.partition_columns = value

    def cluster_options(self) -> dict[str, str]:
        return self.inner.cluster_options()


class LazyClient(Generic[T]):
    """A backend's SDK client, made on first use (once, thread-safe): building a storage imports no SDK."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
        return self._value


def changed_since_listing(path: str) -> SourceChanged:
    """The error for a file whose version is not the one its listing gave."""
    return SourceChanged(
        f"{path} changed after this run listed it (it was rewritten while the run was reading)",
        "Nothing to do: the file is read again by the next run, whole, as its new version. If files are rewritten "
        "in place while runs read them, set the source's min_file_age_seconds so a file is read once it has stopped "
        "changing, or write each version under a new name.",
        field=path,
    )


def missing_sdk(source: str, packages: str) -> ConfigError:
    """The error for a backend whose SDK is not installed, with the command that installs it."""
    return ConfigError(
        f"The {source} source needs the {packages.split()[0]} package, which is not installed.",
        f"Install it with `pip install {packages}` and restart Autoloader.",
    )


def reraise(exc: Exception, translated: AutoloaderError | None) -> NoReturn:
    """Raise an SDK exception as its `core.errors` type (`translated`), or unchanged when it has none."""
    if translated is None or translated is exc:
        raise exc
    raise translated from exc


class GlobError(ValueError):
    """A file pattern the product does not support; the message says what is wrong and how to fix it."""


_GLOB_HELP = (
    "Supported: ? * ** [abc] [a-z] [^a] {a,b} and \\ to escape a special character; "
    "the pattern is relative to the source path, e.g. *.json or year=*/month=*/*.json."
)


@dataclass(frozen=True, slots=True)
class _Compiled:
    regex: re.Pattern[str]
    depth: int | None
    """The most `/` a matching relative path can hold; None when `**` makes it unbounded."""


class _GlobParser:
    """Hadoop GlobPattern syntax over the path relative to the source root (one pass, no backtracking).

    `*` and `?` and classes never match `/` (Hadoop matches them one path component at a time); `{a,b}` may
    hold `/` and nest (Hadoop expands such groups first); `**/` spans any number of folders, `**` any text.
    """

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.i = 0
        self.groups = 0
        self.deep = False

    def fail(self, problem: str) -> GlobError:
        return GlobError(f"file pattern '{self.pattern}': {problem}. {_GLOB_HELP}")

    def parse(self) -> _Compiled:
        regex, depth = self._sequence()
        if self.i < len(self.pattern):  # a ',' or '}' the top level ended on
            char = self.pattern[self.i]
            raise self.fail(f"'{char}' at position {self.i + 1} closes no '{{' group; escape it as \\{char}")
        return _Compiled(re.compile(regex + r"\Z"), None if self.deep else depth)

    def _sequence(self) -> tuple[str, int]:
        p = self.pattern
        out: list[str] = []
        depth = 0
        while self.i < len(p):
            c = p[self.i]
            if c in ",}" and self.groups:
                break
            if c == "}":
                raise self.fail(f"'}}' at position {self.i + 1} closes no '{{' group; escape it as \\}}")
            if c == "*":
                if p.startswith("**/", self.i):
                    out.append("(?:.*/)?")
                    self.i += 3
                    self.deep = True
                elif p.startswith("**", self.i):
                    out.append(".*")
                    self.i += 2
                    self.deep = True
                else:
                    out.append("[^/]*")
                    self.i += 1
            elif c == "?":
                out.append("[^/]")
                self.i += 1
            elif c == "[":
                out.append(self._char_class())
            elif c == "]":
                raise self.fail(f"']' at position {self.i + 1} closes no '[' class; escape it as \\]")
            elif c == "{":
                regex, most = self._group()
                out.append(regex)
                depth += most
            elif c == "\\":
                if self.i + 1 >= len(p):
                    raise self.fail("it ends with '\\', which escapes nothing; remove it or write \\\\")
                escaped = p[self.i + 1]
                depth += escaped == "/"
                out.append(re.escape(escaped))
                self.i += 2
            else:
                depth += c == "/"
                out.append(re.escape(c))
                self.i += 1
        return "".join(out), depth

    def _group(self) -> tuple[str, int]:
        start = self.i
        self.i += 1
        self.groups += 1
        alternatives: list[str] = []
        most = 0
        while True:
            regex, depth = self._sequence()
            alternatives.append(regex)
            most = max(most, depth)
            if self.i >= len(self.pattern):
                raise self.fail(f"the '{{' at position {start + 1} is never closed; add '}}' or escape it as \\{{")
            closing = self.pattern[self.i]
            self.i += 1
            if closing == "}":
                break
        self.groups -= 1
        return "(?:" + "|".join(alternatives) + ")", most

    def _class_char(self) -> str:
        p = self.pattern
        if p[self.i] == "\\":
            if self.i + 1 >= len(p):
                raise self.fail("it ends with '\\', which escapes nothing; remove it or write \\\\")
            self.i += 2
            return p[self.i - 1]
        if p[self.i] == "[":
            raise self.fail(f"'[' at position {self.i + 1} is inside a [...] class; escape it as \\[")
        self.i += 1
        return p[self.i - 1]

    def _char_class(self) -> str:
        p = self.pattern
        start = self.i
        self.i += 1
        negate = self.i < len(p) and p[self.i] in "^!"
        self.i += negate
        items: list[str] = []
        first = True
        while True:
            if self.i >= len(p):
                raise self.fail(f"the '[' at position {start + 1} is never closed; add ']' or escape it as \\[")
            if p[self.i] == "]" and not first:
                self.i += 1
                break
            low = self._class_char()
            if low == "/":
                raise self.fail("a [...] class cannot match '/' (folders are matched one level at a time)")
            if self.i + 1 < len(p) and p[self.i] == "-" and p[self.i + 1] != "]":
                self.i += 1
                high = self._class_char()
                if high < low:
                    raise self.fail(f"the range '{low}-{high}' is backwards; write '{high}-{low}'")
                items.append(f"{re.escape(low)}-{re.escape(high)}")
            else:
                items.append(re.escape(low))
            first = False
        body = "".join(items)
        return f"[^{body}/]" if negate else f"(?:(?!/)[{body}])"


@lru_cache(maxsize=256)
def _compile(pattern: str) -> _Compiled:
    return _GlobParser(pattern).parse()


def check_glob(pattern: str) -> None:
    """Raise GlobError (a ValueError) for a pattern the product does not support, saying what to change.

    Beyond the syntax: the pattern must be non-empty and relative to the source path (no leading `/`,
    no `.` or `..` folder), since it only ever selects files under that path.
    """
    if not pattern.strip():
        raise GlobError(
            f"file pattern '{pattern}' is empty; leave the field empty (no pattern) to take every file, "
            "or give one such as *.json"
        )
    if pattern.startswith("/"):
        raise GlobError(
            f"file pattern '{pattern}' is an absolute path; the pattern is relative to the source path: "
            "put the folder in the source path and keep the file part here, e.g. *.json"
        )
    if any(part in (".", "..") for part in pattern.split("/")):
        raise GlobError(
            f"file pattern '{pattern}' has a '.' or '..' folder; the pattern only selects files under the "
            "source path: change the source path instead, and write the pattern from there"
        )
    _compile(pattern)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The regex a relative path must match in full (raises GlobError for an unsupported pattern).

    A pattern without a `/` matches at the top level only, as in `ls`; use `**/*.json` to search sub-folders.
    """
    return _compile(pattern).regex


def glob_depth(pattern: str | None) -> int | None:
    """The most `/` a path matching `pattern` can hold (None: any depth, for no pattern or one with `**`)."""
    return None if not pattern else _compile(pattern).depth


def one_level(pattern: str | None) -> bool:
    """Whether every path `pattern` matches sits at the level of its literal prefix: an object store's listing can
    then group the deeper names away (a `/` delimiter) instead of returning them all."""
    return bool(pattern) and glob_depth(pattern) == literal_prefix(pattern).count("/")


def literal_prefix(pattern: str | None) -> str:
    """The folder part of a pattern before its first wildcard, unescaped (narrows a listing)."""
    if not pattern:
        return ""
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "*?[{}],":
            break
        if c == "\\" and i + 1 < len(pattern):
            literal.append(pattern[i + 1])
            i += 2
            continue
        literal.append(c)
        i += 1
    head = "".join(literal)
    return head[: head.rfind("/") + 1] if "/" in head else ""


def require_valid_pattern(pattern: str | None) -> None:
    """A listing's check: an unsupported pattern (e.g. saved before the rules) is a ConfigError on the field."""
    if pattern:
        try:
            check_glob(pattern)
        except GlobError as exc:
            from core.errors import ConfigError

            raise ConfigError(
                str(exc), "Fix the file pattern in the source settings.", field="source.file_pattern"
            ) from None


HIDDEN_PREFIXES = (".", "_")


def folder_key_with_data(relative_key: str, size: int, pattern: str | None) -> str | None:
    """Why an object store's key ending in `/` is skipped when it holds bytes (the listing's `skipped` note), or
    None: a key like that is a folder to consoles, tools and Spark, so it is not read; with bytes in it, the data
    went nowhere without a word."""
    if not size or not matches(relative_key.rstrip("/"), pattern):
        return None
    return (
        f"an object whose key ends in '/' holds {size:,} bytes; a key like that is a folder to stores and Spark, so "
        "it is not read. Rename the object without the trailing '/'."
    )


def is_hidden(relative_path: str) -> bool:
    """Files and folders starting with `.` or `_` (e.g. `_SUCCESS`, `.tmp`) are skipped, as Spark does.

    A part of the path starts so exactly when the path does or a `/` is followed by one of them: string scans,
    without splitting (a listing asks this once per listed file)."""
    return relative_path.startswith(HIDDEN_PREFIXES) or "/." in relative_path or "/_" in relative_path


def matches(relative_path: str, pattern: str | None) -> bool:
    if is_hidden(relative_path):
        return False
    if not pattern:
        return True
    return glob_to_regex(pattern).match(relative_path) is not None


def sorts_after(path: str, start_after: str | None) -> bool:
    """`path` is listed by an incremental listing that starts after `start_after` (None: a full listing)."""
    return start_after is None or path > start_after


def folder_is_before(folder: str, start_after: str | None) -> bool:
    """Every path under `folder` (a full path ending in '/') sorts at or before `start_after`, so an incremental
    listing skips the whole folder: the folder's path sorts before it and is not a prefix of it."""
    return start_after is not None and folder < start_after and not start_after.startswith(folder)
