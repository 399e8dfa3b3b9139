"""The retry wrappers' edge cases, which real outages hit only by chance: a listing that breaks part-way is listed
again without yielding a file twice; a read that breaks part-way resumes at the byte reached; terminal errors and
exhausted attempts propagate unchanged; a metadata-DB call gives up after the outage budget, counted across calls.

The flaky storage here is a stand-in for an S3 endpoint failing at an exact point, which a real server cannot be
made to do deterministically (tests/integration/test_retries.py stops a real one mid-run)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db.retrying import RetryingStore, is_disconnect, nothing_sent
from core.errors import BadFileError, MetadataUnavailable, SourceChanged, SourceNotFound, StorageUnavailable
from core.lifecycle import TrackedStorage
from core.retry import Backoff
from core.storage.base import FileInfo, changed_since_listing
from core.storage.retrying import RetryingStorage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAST = Backoff(attempts=4, base_seconds=0.0, cap_seconds=0.0)


def _down() -> StorageUnavailable:
    return StorageUnavailable("S3 is down", "The run will retry.")


class FlakyStorage:
    """Files a..e of 1,000 bytes each; `list_breaks` listings fail after `break_after` files, `read_breaks` reads
    fail after `chunk` bytes."""

    def __init__(self, list_breaks: int = 0, break_after: int = 2, read_breaks: int = 0) -> None:
        self.root = "s3://bucket/"
        self.skipped: dict[str, str] = {}
        self.partition_columns: list[str] | None = None
        self.list_breaks = list_breaks
        self.break_after = break_after
        self.read_breaks = read_breaks
        self.data = {f"s3://bucket/{name}": bytes(range(256)) * 4 for name in "abcde"}
        self.listings = 0
        self.opened_at: list[int] = []
        self.rewrite_on_break = False
        self.versions = dict.fromkeys(self.data, "v1")

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        self.listings += 1
        for index, path in enumerate(sorted(self.data)):
            if index == self.break_after and self.list_breaks:
                self.list_breaks -= 1
                raise _down()
            yield FileInfo(path, len(self.data[path]), NOW, self.versions[path])

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        return self.open_from(path, 0, version)

    def open_from(self, path: str, offset: int, version: str | None = None) -> BinaryIO:
        if path not in self.data:
            raise SourceNotFound(f"File {path} does not exist", "Check the path.")
        if version is not None and version != self.versions[path]:
            raise changed_since_listing(path)
        self.opened_at.append(offset)
        return cast(BinaryIO, _BreakingStream(self, self.data[path][offset:]))

    def rewrite_all(self) -> None:
        self.data = {path: b"new " * 300 for path in self.data}
        self.versions = dict.fromkeys(self.data, "v2")

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        return cast(BinaryIO, io.BytesIO(self.data[path]))


class _BreakingStream(io.RawIOBase):
    def __init__(self, storage: FlakyStorage, data: bytes) -> None:
        super().__init__()
        self.storage, self.data, self.position = storage, data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.position >= 300 and self.storage.read_breaks:
            self.storage.read_breaks -= 1
            if self.storage.rewrite_on_break:
                self.storage.rewrite_all()
            raise _down()
        chunk = self.data[self.position : self.position + min(len(buffer), 100)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def test_a_broken_listing_is_listed_again_without_duplicates() -> None:
    inner = FlakyStorage(list_breaks=2)
    paths = [f.path for f in RetryingStorage(inner, FAST, sleep=lambda _: None).list_files()]
    assert paths == sorted(inner.data) and inner.listings == 3


def test_a_listing_broken_more_often_than_the_attempts_fails_as_transient() -> None:
    inner = FlakyStorage(list_breaks=10)
    with pytest.raises(StorageUnavailable):
        list(RetryingStorage(inner, FAST, sleep=lambda _: None).list_files())
    assert inner.listings == FAST.attempts


def test_a_broken_read_resumes_at_the_byte_reached() -> None:
    inner = FlakyStorage(read_breaks=2)
    with RetryingStorage(inner, FAST, sleep=lambda _: None).open("s3://bucket/a") as stream:
        assert stream.read() == inner.data["s3://bucket/a"]
    assert inner.opened_at == [0, 300, 600]  # each reopened stream breaks again 300 bytes further on


def test_a_read_broken_by_a_rewrite_resumes_on_the_version_it_began_or_fails() -> None:
    """The file rewritten while its read was broken: the resume is of the listed version, refused, so no stream
    gives the first 300 bytes of one version and the rest of the other."""
    inner = FlakyStorage(read_breaks=1)
    inner.rewrite_on_break = True
    retrying = RetryingStorage(inner, FAST, sleep=lambda _: None)
    with retrying.open("s3://bucket/a", "v1") as stream, pytest.raises(SourceChanged) as info:
        stream.read()
    assert "s3://bucket/a" in info.value.message
    assert inner.opened_at == [0]


def test_a_tracked_read_of_a_file_rewritten_part_way_sets_that_file_aside() -> None:
    """Through the run's view of the source, the rewrite is the file's error (BadFileError, so the batch is read
    without it) with its cause kept for the ledger (SourceChanged: `failed`, read again by the next run)."""
    inner = FlakyStorage(read_breaks=1)
    inner.rewrite_on_break = True
    tracked = TrackedStorage(RetryingStorage(inner, FAST, sleep=lambda _: None))
    tracked.versions["s3://bucket/a"] = "v1"
    with tracked.open("s3://bucket/a") as stream, pytest.raises(BadFileError) as info:
        stream.read()
    assert info.value.field == "s3://bucket/a" and "rewritten" in info.value.message
    assert isinstance(tracked.open_failures["s3://bucket/a"], SourceChanged)
    with pytest.raises(BadFileError):  # asked again for the listed version: refused at the open
        tracked.open("s3://bucket/a")


def test_terminal_errors_are_not_retried() -> None:
    inner = FlakyStorage()
    with pytest.raises(SourceNotFound):
        RetryingStorage(inner, FAST, sleep=lambda _: None).open("s3://bucket/missing")
    assert inner.opened_at == []


def _operational(statement: str | None) -> OperationalError:
    return OperationalError(statement, {}, Exception("connection refused"))


def test_disconnects_are_told_from_other_database_errors() -> None:
    assert is_disconnect(_operational("UPDATE run ...")) and not nothing_sent(_operational("UPDATE run ..."))
    assert nothing_sent(_operational(None))
    assert not is_disconnect(IntegrityError("INSERT ...", {}, Exception("duplicate key")))


class DownDatabase:
    """A store whose every call fails as an unreachable database (counts the calls)."""

    def __init__(self) -> None:
        self.calls = 0

    def get_ingestion(self, ingestion_id: int) -> Any:
        self.calls += 1
        raise _operational(None)

    def record_schema_version(self, ingestion_id: int, schema: Any, reason: str) -> None:
        self.calls += 1
        raise _operational("INSERT INTO schema_version ...")


def test_the_outage_budget_counts_across_calls_and_ends_in_metadata_unavailable() -> None:
    inner = DownDatabase()
    store = RetryingStore(inner, budget_seconds=0.3, base_seconds=0.01, cap_seconds=0.05)  # type: ignore[arg-type]
    with pytest.raises(MetadataUnavailable) as first:
        store.get_ingestion(1)
    assert inner.calls > 2 and first.value.transient and first.value.action
    calls = inner.calls
    with pytest.raises(MetadataUnavailable):  # the budget is spent: the next call gives up at once
        store.get_ingestion(1)
    assert inner.calls == calls + 1


def test_an_insert_whose_outcome_is_unknown_is_not_retried() -> None:
    inner = DownDatabase()
    store = RetryingStore(inner, budget_seconds=5, base_seconds=0.01, cap_seconds=0.05)  # type: ignore[arg-type]
    with pytest.raises(MetadataUnavailable):
        store.record_schema_version(1, [], "table created")
    assert inner.calls == 1
