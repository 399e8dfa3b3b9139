"""A file's life at the source after it was listed: still being written, changed after it was loaded, grown by
appends, gone before it was read, unreadable. Pure rules plus a storage wrapper the pipeline reads through."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

from core.config import FormatConfig
from core.domain import FileStatus, KnownFile
from core.errors import (
    AutoloaderError,
    BadFileError,
    ConfigError,
    FileRefused,
    SourceChanged,
    SourceNotFound,
    StorageAuthError,
)
from core.storage.base import FileInfo, Storage, StorageWrapper

_HASH_BLOCK = 1024 * 1024
_MTIME_TOLERANCE = timedelta(milliseconds=1)  # a timestamp's round trip through the metadata DB


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def differs(seen: KnownFile, info: FileInfo) -> bool:
    """The file at the source is not the version the ledger recorded: its size or etag differ, or (for sources
    without an etag) its modification time."""
    if seen.size is not None and seen.size != info.size:
        return True
    if seen.etag is not None and info.etag is not None:
        return seen.etag != info.etag
    return seen.modified is not None and abs(_utc(seen.modified) - _utc(info.modified)) > _MTIME_TOLERANCE


def loaded_version(seen: KnownFile) -> tuple[int | None, str | None]:
    """Size and etag of the version whose rows are in the table (a `changed` row keeps them as `previous_*`)."""
    if seen.status == FileStatus.CHANGED:
        return seen.previous_size, seen.previous_etag
    return seen.size, seen.etag


def is_line_based(fmt: FormatConfig) -> bool:
    """Formats where appending records appends bytes: JSON lines and CSV (not multi-line JSON, not binary)."""
    return fmt.type in ("json", "csv") and not fmt.options.multiline and fmt.options.compression in ("auto", "none")


def too_young(info: FileInfo, now: datetime, min_age_seconds: int) -> bool:
    return min_age_seconds > 0 and _utc(now) - _utc(info.modified) < timedelta(seconds=min_age_seconds)


def change_message(path: str, before: tuple[int | None, str | None], info: FileInfo) -> str:
    size, etag = before
    tags = f"etag {etag or '?'} → {info.etag or '?'}"
    if size == info.size:  # `touch` alone gives this too: the store cannot tell a rewrite of the same length from it
        what = f"was rewritten or touched after it was loaded (same size, {info.size:,} bytes; {tags})"
    else:
        what = f"changed after it was loaded (size {size if size is not None else '?'} → {info.size} bytes, {tags})"
    return f"{path} {what}; the table still holds the version loaded earlier."


def prefix_digest(storage: Storage, path: str, size: int) -> tuple[Any, bytes]:
    """sha256 (the running hash, to be continued with what follows) of the file's first `size` bytes, and its last
    of them (b"" for an empty prefix)."""
    digest = hashlib.sha256()
    last = b""
    left = size
    with storage.open(path) as stream:
        while left > 0:
            block = stream.read(min(_HASH_BLOCK, left))
            if not block:
                break
            digest.update(block)
            last = block[-1:]
            left -= len(block)
    if left > 0:
        raise SourceNotFound(f"{path} is shorter than its listed size ({size} bytes)", "It will be read next run.")
    return digest, last


def first_line(storage: Storage, path: str, limit: int = 1024 * 1024) -> bytes:
    """The file's first line with its line end (a CSV header), at most `limit` bytes."""
    with storage.open(path) as stream:
        head = stream.read(limit)
    end = head.find(b"\n")
    return head if end < 0 else head[: end + 1]


def is_plain(storage: Storage, path: str) -> bool:
    from core.formats.compression import detect_compression  # core.formats imports Arrow: not on every run

    with storage.open(path) as stream:
        return detect_compression(stream.read(8)) is None


@dataclass(frozen=True, slots=True)
class Window:
    """The bytes of a file a batch reads: [start, end) of the file, after `prefix` (a CSV header for a tail).
    `seed`: the running sha256 of the file's bytes before `start` (a tail's loaded version), continued with the
    window's bytes as they are read, so that the hash recorded is of the bytes loaded."""

    start: int
    end: int
    prefix: bytes = b""
    seed: Any = None


class _WindowReader(io.RawIOBase):
    """A window of a file; hashes the file's bytes it passes and reports the hash once the window was read whole."""

    def __init__(self, raw: BinaryIO, window: Window, read_whole: Callable[[str], None]):
        self.raw = raw
        self.pending = window.prefix
        self.left = window.end - window.start
        self.hash = window.seed.copy() if window.seed is not None else hashlib.sha256()
        self.read_whole: Callable[[str], None] | None = read_whole
        skip = window.start
        if skip and raw.seekable():
            raw.seek(skip)
            skip = 0
        while skip > 0:
            block = raw.read(min(_HASH_BLOCK, skip))
            if not block:
                break
            skip -= len(block)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pending:
            n = min(len(buffer), len(self.pending))
            buffer[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n
        if self.left <= 0:
            return 0
        data = self.raw.read(min(len(buffer), self.left))
        n = len(data)
        buffer[:n] = data
        self.left -= n
        self.hash.update(data)
        if self.left == 0 and self.read_whole is not None:
            self.read_whole(self.hash.hexdigest())
            self.read_whole = None
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


OPEN_FAILURES = (SourceNotFound, SourceChanged, StorageAuthError, ConfigError, FileRefused)
"""Errors opening one listed file that concern that file only (gone, rewritten, no permission, not a regular
file)."""


class TrackedStorage(StorageWrapper):
    """The run's view of its source: reads limited to set windows, and a listed file that cannot be opened turned
    into a BadFileError (so every reader and the inference skip it) with the first cause kept in `open_failures`.

    `loaded_hashes`: for each windowed file read whole, the sha256 of its bytes up to the window's end as read (the
    tail's continuing its loaded version's): what tells a later append from a rewrite. It was read again after the
    commit: a file rewritten in between had its new bytes hashed as the loaded ones, and the next run loaded only
    the tail of the rewrite (an outside attack on S3: the new version's first rows lost, the old ones kept)."""

    def __init__(self, inner: Storage):
        super().__init__(inner)
        self.windows: dict[str, Window] = {}
        self.versions: dict[str, str] = {}
        """The etag each file to load had in the run's listing: its reads are of that version (Storage.open)."""
        self.open_failures: dict[str, AutoloaderError] = {}
        self.loaded_hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        return self.inner.list_files(pattern, start_after=start_after)

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        return self._opened(path, self.inner.open, version, resumable=True)

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        if path in self.windows:
            return self.open(path, version)
        return self._opened(path, self.inner.open_seekable, version, resumable=False)

    def _opened(
        self, path: str, opener: Callable[[str, str | None], BinaryIO], version: str | None, *, resumable: bool
    ) -> BinaryIO:
        """`resumable`: a sequential stream, which a store that resumes broken reads may find rewritten part-way; a
        seekable copy is whole (and must stay seekable) once opened."""
        version = version or self.versions.get(path)
        try:
            raw = opener(path, version)
        except OPEN_FAILURES as exc:
            raise self._set_aside(path, exc) from exc
        if resumable and version is not None and getattr(self.inner, "open_from", None) is not None:
            raw = cast(BinaryIO, _PinnedReader(raw, lambda exc: self._set_aside(path, exc)))
        window = self.windows.get(path)
        if window is None:
            return raw
        with (
            self._lock
        ):  # the last read decides: one that does not reach the window's end (the file shrank) leaves none
            self.loaded_hashes.pop(path, None)

        def read_whole(digest: str) -> None:
            with self._lock:
                self.loaded_hashes[path] = digest

        return io.BufferedReader(_WindowReader(raw, window, read_whole), buffer_size=_HASH_BLOCK)

    def _set_aside(self, path: str, exc: AutoloaderError) -> AutoloaderError:
        """The error that sets one file aside (its cause kept for the ledger), or `exc` itself if transient."""
        if exc.transient:
            return exc
        with self._lock:
            self.open_failures.setdefault(path, exc)
        return BadFileError(exc.message, exc.action, field=path)


class _PinnedReader(io.RawIOBase):
    """A read of a listed version from a store that resumes failed reads: the file rewritten part-way (a resumed
    read of that version refused, `SourceChanged`) is that file's error, not the batch's."""

    def __init__(self, raw: BinaryIO, set_aside: Callable[[SourceChanged], AutoloaderError]):
        super().__init__()
        self.raw = raw
        self.set_aside = set_aside

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.raw.read(len(buffer))
        except SourceChanged as exc:
            raise self.set_aside(exc) from exc
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def unreadable_file(path: str, exc: Exception) -> BadFileError:
    """A reader crash on one file's content (deep nesting, a parser fault) as that file's own error."""
    text = str(exc).strip()
    cause = f": {text.splitlines()[0][:300]}" if text else ""
    return BadFileError(
        f"{path} could not be read: {type(exc).__name__}{cause}",
        "Fix or replace the file at the source; it is retried when it changes.",
        detail=repr(exc)[:2000],
        field=path,
    )


@dataclass(frozen=True, slots=True)
class Reload:
    """How a changed file is loaded again: only its appended bytes, or in place of its rows."""

    previous_size: int | None
    previous_etag: str | None
    previous_records: int
    tail_from: int | None = None
    """An append-only growth: read from this byte (after `header`); None replaces the file's rows."""
    header: bytes = b""
    seed: Any = None
    """The running sha256 of the bytes before `tail_from`, as they were checked (Window.seed)."""
