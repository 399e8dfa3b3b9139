"""The metadata store contract (`core.ports.MetadataStore`), on SQLite, PostgreSQL and the in-memory fake.

Every case drives the store through the port only; seeding (ingestions, runs) and looking at what a call left
behind (run records, ledger rows, schema versions) go through a small per-backend harness, because those are
not part of the port.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.db.database import make_engine, upgrade
from app.db.models import LedgerFile, Run, SchemaVersion
from app.db.queries import Queries
from app.db.repository import SqlStore
from app.secrets_box import SecretBox
from core.config import IngestionSpec
from core.domain import (
    FileResult,
    FileStatus,
    Ingestion,
    IngestionStatus,
    KnownFile,
    LedgerEntry,
    RunError,
    RunMetrics,
    RunStatus,
)
from core.errors import NotFound, RunTakenOver
from core.ports import ListingState, MetadataStore
from tests.conftest import DATABASES
from tests.fakes import MemoryStore
from tests.helpers import spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 2, tzinfo=UTC)
NO_SUCH_ID = 987_654


def _entries(*paths: str) -> list[LedgerEntry]:
    return [LedgerEntry(p, 10, NOW, f"etag-{p}", FileStatus.PENDING) for p in paths]


def _by_path(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    return sorted(entries, key=lambda e: e.path)


# --- backends -------------------------------------------------------------------------------------------
class SqlBackend:
    """`SqlStore` on a migrated database; rows are read straight from the tables."""

    def __init__(self, url: str):
        upgrade(url)
        self.db: Engine = make_engine(url)
        self.store = SqlStore(self.db, SecretBox("test-secret-key"))

    def add_ingestion(self, spec: IngestionSpec) -> Ingestion:
        return self.store.create_ingestion(spec, IngestionStatus.ACTIVE)

    def create_run(self, ingestion_id: int) -> int:
        return self.store.create_run(ingestion_id, "manual")

    def run(self, run_id: int) -> Any:
        with Session(self.db) as s:
            return s.get(Run, run_id)

    def ledger(self, ingestion_id: int) -> dict[str, Any]:
        with Session(self.db) as s:
            rows = s.execute(select(LedgerFile).where(col(LedgerFile.ingestion_id) == ingestion_id)).scalars()
            return {r.path: r for r in rows}

    def schema_versions(self, ingestion_id: int) -> list[Any]:
        with Session(self.db) as s:
            query = select(SchemaVersion).where(col(SchemaVersion.ingestion_id) == ingestion_id)
            return list(s.execute(query.order_by(col(SchemaVersion.version))).scalars())

    def close(self) -> None:
        self.db.dispose()


class MemoryBackend:
    def __init__(self) -> None:
        self.store = MemoryStore()

    def add_ingestion(self, spec: IngestionSpec) -> Ingestion:
        return self.store.add_ingestion(spec, IngestionStatus.ACTIVE)

    def create_run(self, ingestion_id: int) -> int:
        return self.store.create_run(ingestion_id, "manual")

    def run(self, run_id: int) -> Any:
        return self.store.get_run(run_id)

    def ledger(self, ingestion_id: int) -> dict[str, Any]:
        return self.store.ledger(ingestion_id)

    def schema_versions(self, ingestion_id: int) -> list[Any]:
        return self.store.schema_versions(ingestion_id)

    def close(self) -> None:
        pass


Backend = SqlBackend | MemoryBackend


@contextlib.contextmanager
def _database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database, as conftest's `database_url` makes one (which cannot be combined with a
    third, non-SQL parameter): a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=[*DATABASES, "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    with _database_url(request.param, request, tmp_path) as url:
        sql = SqlBackend(url)
        try:
            yield sql
        finally:
            sql.close()


@pytest.fixture(params=DATABASES)
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlBackend]:
    with _database_url(request.param, request, tmp_path) as url:
        sql = SqlBackend(url)
        try:
            yield sql
        finally:
            sql.close()


@pytest.fixture
def store(backend: Backend) -> MetadataStore:
    return backend.store


@pytest.fixture
def ing(backend: Backend, tmp_path: Path) -> Ingestion:
    return backend.add_ingestion(spec(str(tmp_path)))


# --- ingestions ----------------------------------------------------------------------------------------
def test_get_ingestion_and_set_status(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    got = store.get_ingestion(ing.id)
    assert (got.id, got.uid, got.name, got.status) == (ing.id, ing.uid, "ingest-events", IngestionStatus.ACTIVE)
    assert got.spec == ing.spec and got.app_id == ing.app_id and got.uid
    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert other.uid != ing.uid and store.get_ingestion(other.id).spec.destination.table == "other"

    store.set_ingestion_status(ing.id, IngestionStatus.NEEDS_REVIEW)
    assert store.get_ingestion(ing.id).status == IngestionStatus.NEEDS_REVIEW
    assert store.get_ingestion(other.id).status == IngestionStatus.ACTIVE
    with pytest.raises(NotFound):
        store.get_ingestion(NO_SUCH_ID)
    with pytest.raises(NotFound):
        store.set_ingestion_status(NO_SUCH_ID, IngestionStatus.PAUSED)


# --- run slot ------------------------------------------------------------------------------------------
def test_run_slot_is_exclusive(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    first, second, third = (backend.create_run(ing.id) for _ in range(3))
    assert store.active_run(ing.id) is None
    assert not store.claim_run_slot(ing.id, first, expected=second)  # the slot is free, not held by `second`
    assert store.claim_run_slot(ing.id, first)
    active = store.active_run(ing.id)
    assert active is not None and (active.run_id, active.owner, active.heartbeat_at) == (first, None, None)
    assert not store.claim_run_slot(ing.id, second)
    assert not store.claim_run_slot(ing.id, second, expected=third)  # wrong expectation
    assert store.active_run(ing.id).run_id == first  # type: ignore[union-attr]

    store.mark_run_started(first, "host:1")
    active = store.active_run(ing.id)
    assert active is not None and (active.run_id, active.owner) == (first, "host:1")
    assert active.heartbeat_at is not None
    assert store.claim_run_slot(ing.id, second, expected=first)  # take-over of a dead owner
    store.release_run_slot(ing.id, first)  # a stale release does not free the new owner's slot
    assert store.active_run(ing.id).run_id == second  # type: ignore[union-attr]

    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert store.claim_run_slot(other.id, third)  # one slot per ingestion
    store.release_run_slot(ing.id, second)
    assert store.active_run(ing.id) is None
    assert store.active_run(other.id).run_id == third  # type: ignore[union-attr]
    assert store.claim_run_slot(ing.id, third)  # a released slot can be claimed again

    assert not store.claim_run_slot(NO_SUCH_ID, first)
    assert store.active_run(NO_SUCH_ID) is None


def test_active_run_names_a_slot_holder_without_a_run_record(store: MetadataStore, ing: Ingestion) -> None:
    assert store.claim_run_slot(ing.id, NO_SUCH_ID)
    active = store.active_run(ing.id)
    assert active is not None and (active.run_id, active.owner, active.heartbeat_at) == (NO_SUCH_ID, None, None)


# --- runs ---------------------------------------------------------------------------------------------------
def test_run_lifecycle(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    queued = backend.run(run)
    assert queued.status == RunStatus.QUEUED and queued.started_at is None and queued.owner is None

    store.mark_run_started(run, "host:7")
    started = backend.run(run)
    assert (started.status, started.owner) == (RunStatus.RUNNING, "host:7")
    assert started.started_at is not None and started.heartbeat_at == started.started_at

    time.sleep(0.01)
    store.heartbeat(run)
    beat = backend.run(run).heartbeat_at
    assert beat > started.heartbeat_at

    store.set_engine_job_id(run, "job-42")
    assert backend.run(run).engine_job_id == "job-42"

    time.sleep(0.01)
    store.update_run_progress(run, 3, 10, RunMetrics(files_processed=3, records_ingested=30))
    progressed = backend.run(run)
    assert (progressed.files_done, progressed.files_total) == (3, 10)
    assert progressed.metrics["records_ingested"] == 30 and progressed.metrics["files_processed"] == 3
    assert progressed.heartbeat_at > beat  # progress is a sign of life too
    assert (progressed.status, progressed.engine_job_id, progressed.finished_at) == (RunStatus.RUNNING, "job-42", None)

    store.finish_run(
        run,
        RunStatus.PARTIAL,
        RunMetrics(files_processed=2, files_quarantined=3, records_ingested=9),
        [RunError("quarantined", "empty", "check it", file="/x")],
        "done",
    )
    record = backend.run(run)
    assert (record.status, record.message) == (RunStatus.PARTIAL, "done")
    assert record.finished_at is not None and record.metrics["records_ingested"] == 9
    assert record.errors == [
        {"file": "/x", "kind": "quarantined", "message": "empty", "action": "check it", "detail": ""}
    ]
    assert (record.files_done, record.files_total) == (5, 10)  # processed + quarantined


def test_a_run_another_server_ended_writes_nothing_more(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    """Found by an outsider: a replica paused (SIGSTOP) past the stale window, its run settled and retried by the
    other, went on when resumed: it overwrote the ledger rows the new run had loaded (1,050 files at 0 records) and
    turned the settled run back into a success. Its next batch is now refused, and its progress and end ignored."""
    run = backend.create_run(ing.id)
    store.mark_run_started(run, "host-a:1")
    store.add_pending_batch(ing.id, run, 1, _entries("/in/a.json"))
    store.finish_run(run, RunStatus.FAILED, RunMetrics(), [], "Interrupted.")  # what the other server's sweep does

    with pytest.raises(RunTakenOver, match=f"Run {run} was ended \\(failed\\) by another server"):
        store.add_pending_batch(ing.id, run, 2, _entries("/in/b.json"))
    assert "/in/b.json" not in backend.ledger(ing.id)
    store.update_run_progress(run, 9, 9, RunMetrics(files_processed=9))
    store.finish_run(run, RunStatus.SUCCESS, RunMetrics(files_processed=9), [], "Loaded 90 records from 9 files.")
    record = backend.run(run)
    assert (record.status, record.message, record.files_done) == (RunStatus.FAILED, "Interrupted.", 0)


def test_a_run_another_server_ended_cannot_commit_settle_or_drop_a_batch(
    backend: Backend, store: MetadataStore, ing: Ingestion
) -> None:
    """Found with two real servers: the paused run's last batch went on to the table and the ledger after the other
    server had settled it and recorded its retry's batch under the same number. The check before a commit, and
    every ledger write of the run (complete, drop, set aside), refuse a run another server ended; the other
    server's batch stays as it recorded it."""
    run = backend.create_run(ing.id)
    store.mark_run_started(run, "host-a:1")
    store.add_pending_batch(ing.id, run, 1, _entries("/in/a.json"))
    store.check_run_live(run)  # still its own
    store.finish_run(run, RunStatus.FAILED, RunMetrics(), [], "Interrupted.")  # the other server's sweep
    store.drop_pending_batch(ing.id, 1)  # ... its reconciliation
    retry = backend.create_run(ing.id)
    store.mark_run_started(retry, "host-b:1")
    store.add_pending_batch(ing.id, retry, 1, _entries("/in/late.json"))

    for refused in (
        lambda: store.check_run_live(run),
        lambda: store.complete_batch(ing.id, 1, {"/in/late.json": FileResult(FileStatus.LOADED, 5)}, run),
        lambda: store.drop_pending_batch(ing.id, 1, run),
        lambda: store.upsert_files(ing.id, run, [_entries("/in/late.json")[0]]),
    ):
        with pytest.raises(RunTakenOver):
            refused()
    assert sorted(e.path for e in store.pending_batches(ing.id)[1]) == ["/in/late.json"]
    assert backend.ledger(ing.id)["/in/late.json"].status == FileStatus.PENDING
    store.complete_batch(ing.id, 1, {"/in/late.json": FileResult(FileStatus.LOADED, 5)}, retry)
    assert backend.ledger(ing.id)["/in/late.json"].status == FileStatus.LOADED


def test_finish_run_files_done(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    """`files_done` never goes down, and a skipped run does not count the metrics' files; a cancelled one does (a run
    a shutdown stopped between batches loaded them)."""
    ahead, skipped, cancelled = (backend.create_run(ing.id) for _ in range(3))
    store.update_run_progress(ahead, 8, 10, RunMetrics())
    store.finish_run(ahead, RunStatus.FAILED, RunMetrics(files_processed=2), [], "failed")
    assert (backend.run(ahead).files_done, backend.run(ahead).status) == (8, RunStatus.FAILED)
    store.finish_run(skipped, RunStatus.SKIPPED, RunMetrics(files_processed=4), [], "skipped")
    store.finish_run(cancelled, RunStatus.CANCELLED, RunMetrics(files_quarantined=4), [], "cancelled")
    assert (backend.run(skipped).files_done, backend.run(skipped).status) == (0, RunStatus.SKIPPED)
    assert (backend.run(cancelled).files_done, backend.run(cancelled).status) == (4, RunStatus.CANCELLED)


def test_run_updates_of_an_unknown_run_are_ignored(store: MetadataStore) -> None:
    store.mark_run_started(NO_SUCH_ID, "host:1")
    store.heartbeat(NO_SUCH_ID)
    store.set_engine_job_id(NO_SUCH_ID, "job")
    store.update_run_progress(NO_SUCH_ID, 1, 1, RunMetrics())
    store.finish_run(NO_SUCH_ID, RunStatus.SUCCESS, RunMetrics(), [], "")


# --- schema versions ------------------------------------------------------------------------------------------
def test_schema_versions(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    v1 = [{"name": "a", "type": "bigint", "nullable": True}]
    v2 = [*v1, {"name": "b", "type": "string", "nullable": True}]
    store.record_schema_version(ing.id, v1, "table created")
    store.record_schema_version(ing.id, v2, "added column b")
    versions = backend.schema_versions(ing.id)
    assert [(v.version, v.status, v.columns, v.reason) for v in versions] == [
        (1, "applied", v1, "table created"),
        (2, "applied", v2, "added column b"),
    ]

    added = {"kind": "added", "column": "c", "description": "new column 'c'"}
    retyped = {"kind": "type_changed", "column": "a", "description": "column 'a' changed bigint → string"}
    proposed = [*v2, {"name": "c", "type": "string", "nullable": True}]
    file1 = {"path": "/f1", "records": 4, "changes": ["new column 'c'"]}
    file2 = {"path": "/f2", "records": 6, "changes": ["new column 'c'", "column 'a' changed bigint → string"]}
    assert store.record_pending_schema(ing.id, v2, [added], [file1]) == 3
    assert store.record_pending_schema(ing.id, proposed, [added, retyped], [file2]) == 3  # extends version 3
    pending = backend.schema_versions(ing.id)[2]
    assert (pending.version, pending.status, pending.columns) == (3, "pending", proposed)
    assert pending.changes == [added, retyped]  # `added` once
    assert pending.files == [file1, file2]
    assert pending.reason == "2 files with: new column 'c'; column 'a' changed bigint → string"
    assert store.pending_schema_columns(ing.id) == proposed
    assert store.pending_schema_columns(backend.add_ingestion(spec("/none", table="none")).id) is None
    # A later run's change of the same kind and column (worked out over every held file) replaces the earlier one.
    wider = {**added, "description": "new column 'c' (double)"}
    assert store.record_pending_schema(ing.id, proposed, [wider], []) == 3
    assert backend.schema_versions(ing.id)[2].changes == [wider, retyped]
    assert store.record_pending_schema(ing.id, proposed, [added], []) == 3

    # An applied version recorded meanwhile takes the next number; the open pending version is still extended.
    store.record_schema_version(ing.id, proposed, "widened")
    assert store.record_pending_schema(ing.id, proposed, [], [{"path": "/f3", "records": 1, "changes": []}]) == 3
    versions = backend.schema_versions(ing.id)
    assert [(v.version, v.status) for v in versions] == [(1, "applied"), (2, "applied"), (3, "pending"), (4, "applied")]
    assert [f["path"] for f in versions[2].files] == ["/f1", "/f2", "/f3"]

    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert store.record_pending_schema(other.id, v1, [added], []) == 1  # numbering is per ingestion


# --- file ledger ------------------------------------------------------------------------------------------
def test_pending_batches_round_trip(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    assert store.pending_batches(ing.id) == {} and store.known_files(ing.id) == {}
    store.add_pending_batch(ing.id, run, 1, _entries("/b", "/a"))
    store.add_pending_batch(ing.id, run, 2, _entries("/c"))
    pending = store.pending_batches(ing.id)
    assert sorted(pending) == [1, 2]
    assert _by_path(pending[1]) == [
        LedgerEntry("/a", 10, NOW, "etag-/a", FileStatus.PENDING, run, 1),
        LedgerEntry("/b", 10, NOW, "etag-/b", FileStatus.PENDING, run, 1),
    ]
    assert pending[2] == [LedgerEntry("/c", 10, NOW, "etag-/c", FileStatus.PENDING, run, 2)]
    assert store.known_files(ing.id) == {p: KnownFile(f"etag-{p}", FileStatus.PENDING) for p in ("/a", "/b", "/c")}
    assert store.max_batch_seq(ing.id) == 0  # pending batches do not count

    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert store.pending_batches(other.id) == {} and store.known_files(other.id) == {}


def test_incremental_listing_state_and_the_ledger_after_a_path(
    backend: Backend, store: MetadataStore, ing: Ingestion
) -> None:
    assert store.listing_state(ing.id) == ListingState()
    state = ListingState("/b", datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    store.set_listing_state(ing.id, state)
    assert store.listing_state(ing.id) == state
    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert store.listing_state(other.id) == ListingState()
    store.add_pending_batch(ing.id, backend.create_run(ing.id), 1, _entries("/a", "/b", "/b/c", "/c"))
    assert sorted(store.known_files(ing.id, after="/b")) == ["/b/c", "/c"]
    assert sorted(store.known_files(ing.id)) == ["/a", "/b", "/b/c", "/c"]


def test_complete_batch(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    store.add_pending_batch(ing.id, run, 1, _entries("/a", "/b", "/c", "/d"))
    store.complete_batch(
        ing.id,
        1,
        {
            "/a": FileResult(FileStatus.LOADED),
            "/b": FileResult(FileStatus.LOADED, records=7, bad_records=2),
            "/c": FileResult(FileStatus.QUARANTINED, error="not JSON"),
            "/nowhere": FileResult(FileStatus.LOADED, records=1),  # not in the ledger: not inserted
        },
    )
    assert store.known_files(ing.id) == {
        "/a": KnownFile("etag-/a", FileStatus.LOADED),
        "/b": KnownFile("etag-/b", FileStatus.LOADED),
        "/c": KnownFile("etag-/c", FileStatus.QUARANTINED),
        "/d": KnownFile("etag-/d", FileStatus.PENDING),
    }
    rows = backend.ledger(ing.id)
    assert [(rows[p].records, rows[p].bad_records, rows[p].error) for p in ("/a", "/b", "/c")] == [
        (0, 0, None),
        (7, 2, None),
        (0, 0, "not JSON"),
    ]
    assert rows["/a"].loaded_at is not None and rows["/b"].loaded_at is not None and rows["/d"].loaded_at is None
    assert (rows["/b"].batch_seq, rows["/b"].run_id) == (1, run)
    assert store.pending_batches(ing.id) == {1: [LedgerEntry("/d", 10, NOW, "etag-/d", FileStatus.PENDING, run, 1)]}

    # A plain `loaded` result (no records, no error) only moves the status: counts already there stay.
    store.complete_batch(ing.id, 1, {"/b": FileResult(FileStatus.LOADED), "/d": FileResult(FileStatus.LOADED)})
    rows = backend.ledger(ing.id)
    assert (rows["/b"].records, rows["/b"].bad_records) == (7, 2)
    assert rows["/d"].status == FileStatus.LOADED and store.pending_batches(ing.id) == {}
    assert store.max_batch_seq(ing.id) == 1


def test_max_batch_seq_counts_loaded_files_only(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    assert store.max_batch_seq(ing.id) == 0
    store.add_pending_batch(ing.id, run, 1, _entries("/a"))
    store.complete_batch(ing.id, 1, {"/a": FileResult(FileStatus.LOADED, records=1)})
    store.add_pending_batch(ing.id, run, 5, _entries("/p"))  # pending
    store.add_pending_batch(ing.id, run, 3, _entries("/q"))
    store.complete_batch(ing.id, 3, {"/q": FileResult(FileStatus.QUARANTINED, error="bad")})  # settled, not loaded
    assert store.max_batch_seq(ing.id) == 1
    store.add_pending_batch(ing.id, run, 2, _entries("/b"))
    store.complete_batch(ing.id, 2, {"/b": FileResult(FileStatus.LOADED)})
    assert store.max_batch_seq(ing.id) == 2
    store.upsert_files(ing.id, run, [LedgerEntry("/u", 1, NOW, "e", FileStatus.LOADED)])  # outside any batch
    assert store.max_batch_seq(ing.id) == 2

    other = backend.add_ingestion(spec("/elsewhere", table="other"))
    assert store.max_batch_seq(other.id) == 0


def test_drop_pending_batch(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    store.add_pending_batch(ing.id, run, 1, _entries("/a", "/b"))
    store.complete_batch(ing.id, 1, {"/a": FileResult(FileStatus.LOADED)})
    store.add_pending_batch(ing.id, run, 2, _entries("/c", "/d"))
    store.drop_pending_batch(ing.id, 2)
    assert store.known_files(ing.id) == {
        "/a": KnownFile("etag-/a", FileStatus.LOADED),
        "/b": KnownFile("etag-/b", FileStatus.PENDING),
    }
    store.drop_pending_batch(ing.id, 1)  # only the batch's pending files go; its loaded file stays
    assert store.known_files(ing.id) == {"/a": KnownFile("etag-/a", FileStatus.LOADED)}
    assert store.pending_batches(ing.id) == {}

    # A retried file re-pointed at a batch that is then dropped leaves the ledger entirely (its earlier row is gone).
    store.upsert_files(ing.id, run, [LedgerEntry("/e", 1, NOW, "e", FileStatus.QUARANTINED, error="empty")])
    store.add_pending_batch(ing.id, run, 3, _entries("/e"))
    store.drop_pending_batch(ing.id, 3)
    assert "/e" not in store.known_files(ing.id)


def test_add_pending_batch_repoints_known_files(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    first, second = backend.create_run(ing.id), backend.create_run(ing.id)
    store.upsert_files(ing.id, first, [LedgerEntry("/d", 1, NOW, "old", FileStatus.FAILED, records=3, error="x")])
    store.add_pending_batch(ing.id, second, 4, [LedgerEntry("/d", 20, LATER, "new", FileStatus.PENDING)])
    assert store.pending_batches(ing.id) == {4: [LedgerEntry("/d", 20, LATER, "new", FileStatus.PENDING, second, 4)]}
    row = backend.ledger(ing.id)["/d"]
    assert (row.status, row.error, row.records, row.run_id, row.batch_seq) == ("pending", None, 0, second, 4)
    store.complete_batch(ing.id, 4, {"/d": FileResult(FileStatus.LOADED)})
    rows = backend.ledger(ing.id)
    assert list(rows) == ["/d"] and rows["/d"].status == FileStatus.LOADED and rows["/d"].error is None


def test_add_pending_batch_is_atomic(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    """A path twice among a batch's new files breaks the ledger's (ingestion, path) key: nothing is written."""
    run = backend.create_run(ing.id)
    with pytest.raises((IntegrityError, ValueError)):
        store.add_pending_batch(ing.id, run, 1, _entries("/x", "/z", "/z"))
    assert store.known_files(ing.id) == {}


def test_upsert_files_inserts_then_updates(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    first, second = backend.create_run(ing.id), backend.create_run(ing.id)
    failed = LedgerEntry("/u", 1, NOW, "e1", FileStatus.FAILED, run_id=NO_SUCH_ID, batch_seq=7, records=3, error="x")
    store.upsert_files(ing.id, first, [failed])
    row = backend.ledger(ing.id)["/u"]
    assert (row.status, row.size, row.etag, row.modified_at) == ("failed", 1, "e1", NOW)
    assert (row.run_id, row.batch_seq, row.records, row.bad_records, row.error) == (first, None, 3, 0, "x")
    assert store.known_files(ing.id) == {"/u": KnownFile("e1", FileStatus.FAILED)}

    store.add_pending_batch(ing.id, second, 1, _entries("/v"))
    store.upsert_files(
        ing.id,
        None,
        [
            LedgerEntry("/u", 2, LATER, "e2", FileStatus.QUARANTINED, bad_records=1, error="truncated"),
            LedgerEntry("/v", 10, NOW, "etag-/v", FileStatus.SKIPPED),
        ],
    )
    rows = backend.ledger(ing.id)
    assert sorted(rows) == ["/u", "/v"]  # updated in place, not duplicated
    u, v = rows["/u"], rows["/v"]
    assert (u.status, u.size, u.etag, u.modified_at, u.run_id) == ("quarantined", 2, "e2", LATER, None)
    assert (u.records, u.bad_records, u.error) == (0, 1, "truncated")
    assert (v.status, v.batch_seq, v.run_id) == ("skipped", None, None)  # it left its batch
    assert store.pending_batches(ing.id) == {}


def test_large_batches_insert_in_bulk(backend: Backend, store: MetadataStore, ing: Ingestion) -> None:
    run = backend.create_run(ing.id)
    paths = [f"/f/{i:05d}.json" for i in range(10_000)]
    store.add_pending_batch(ing.id, run, 1, _entries(*paths))
    store.complete_batch(ing.id, 1, {p: FileResult(FileStatus.LOADED) for p in paths})
    known = store.known_files(ing.id)
    assert len(known) == 10_000 and {k.status for k in known.values()} == {FileStatus.LOADED}
    assert store.max_batch_seq(ing.id) == 1


# --- SQL only -----------------------------------------------------------------------------------------------
def test_credentials_are_encrypted_at_rest(sql_backend: SqlBackend, tmp_path: Path) -> None:
    source = {
        "type": "s3",
        "path": "s3://b/p/",
        "credentials": {"type": "access_key", "access_key_id": "AKIA", "secret_access_key": "top-secret-value"},
    }
    ing = sql_backend.add_ingestion(spec(str(tmp_path), source=source))
    with sql_backend.db.connect() as conn:
        raw = str(conn.execute(text("SELECT source FROM ingestion")).scalar())
    assert "top-secret-value" not in raw and "enc:v1:" in raw
    assert sql_backend.store.get_ingestion(ing.id).spec.source.credentials.secret_access_key == "top-secret-value"


def test_read_side_sums_run_metrics_beyond_32_bits(sql_backend: SqlBackend, tmp_path: Path) -> None:
    """A run that read 5 GB: the dashboard's and the 7-day totals' sums hold it (PostgreSQL once cast each run's
    numbers to a 32-bit integer and failed with 'integer out of range')."""
    ing = sql_backend.add_ingestion(spec(str(tmp_path)))
    run = sql_backend.create_run(ing.id)
    sql_backend.store.mark_run_started(run, "host:1")
    big = 5_000_000_000
    sql_backend.store.finish_run(run, RunStatus.SUCCESS, RunMetrics(files_processed=1, bytes_read=big), [], "ok")
    queries = Queries(sql_backend.db)
    assert queries.dashboard_stats(ing.tenant_id).bytes_24h == big
    assert sum(day.bytes for day in queries.run_totals([ing.id])[ing.id].days) == big


def test_dropping_ledger_rows_clears_where_incremental_listing_starts(sql_backend: SqlBackend, tmp_path: Path) -> None:
    """Reprocess (forget_files), a schema decision (release_held_files) and a full refresh make files at or before
    the listing's start due again: the next run must list every file."""
    store = sql_backend.store
    ing = sql_backend.add_ingestion(spec(str(tmp_path)))
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    drops = (
        lambda: store.forget_files(ing.id, ["/a"], None, None),
        lambda: store.release_held_files(ing.id),
        lambda: store.begin_full_refresh(ing.id, 0),
    )
    for drop in drops:
        store.set_listing_state(ing.id, ListingState("/z", at))
        drop()
        assert store.listing_state(ing.id) == ListingState(None, at)


def test_ingestion_ids_are_never_reused(sql_backend: SqlBackend, tmp_path: Path) -> None:
    """After the newest ingestion is deleted, the next one gets a new id: old links and API clients never open
    another ingestion (SQLite handed out largest id + 1 again before migration 0008)."""
    store = sql_backend.store
    first = sql_backend.add_ingestion(spec(str(tmp_path), name="first"))
    newest = sql_backend.add_ingestion(spec(str(tmp_path), name="newest"))
    store.delete_ingestion(newest.id)
    after = sql_backend.add_ingestion(spec(str(tmp_path), name="after"))
    assert after.id not in (first.id, newest.id) and after.id > newest.id


def test_a_time_in_another_zone_is_stored_as_the_same_instant(sql_backend: SqlBackend, tmp_path: Path) -> None:
    """Found by an outsider: SQLite kept 03:15+01:00 (a Paris schedule's next fire) as 03:15 and read it back as
    03:15Z, an hour late, which made catch-up runs for slots that never were. PostgreSQL converted it already."""
    from zoneinfo import ZoneInfo

    ing = sql_backend.add_ingestion(spec(str(tmp_path)))
    run = sql_backend.create_run(ing.id)
    paris = datetime(2026, 12, 5, 3, 15, tzinfo=ZoneInfo("Europe/Paris"))
    with Session(sql_backend.db) as s:
        row = s.get(Run, run)
        assert row is not None
        row.scheduled_for = paris
        s.add(row)
        s.commit()
    stored = sql_backend.run(run).scheduled_for
    assert stored == paris and stored.utcoffset().total_seconds() == 0, stored
    assert stored.isoformat() == "2026-12-05T02:15:00+00:00"
