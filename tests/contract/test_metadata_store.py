"""The metadata store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from core.domain import FileResult, FileStatus, LedgerEntry, RunError, RunMetrics, RunStatus
from tests.helpers import spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _entries(*paths: str) -> list[LedgerEntry]:
    return [LedgerEntry(p, 10, NOW, f"etag-{p}", FileStatus.PENDING) for p in paths]


def test_run_slot_is_exclusive(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = services.store
    ing = store.create_ingestion(spec(str(tmp_path)), "active")
    first, second = store.create_run(ing.id, "manual"), store.create_run(ing.id, "manual")
    assert store.claim_run_slot(ing.id, first)
    assert not store.claim_run_slot(ing.id, second)
    store.mark_run_started(first, "host:1")
    active = store.active_run(ing.id)
    assert active is not None and (active.run_id, active.owner) == (first, "host:1")
    assert store.claim_run_slot(ing.id, second, expected=first)  # take-over of a dead owner
    store.release_run_slot(ing.id, first)  # a stale release does not free the new owner's slot
    assert store.active_run(ing.id).run_id == second  # type: ignore[union-attr]
    store.release_run_slot(ing.id, second)
    assert store.active_run(ing.id) is None


def test_ledger_batch_lifecycle(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = services.store
    ing = store.create_ingestion(spec(str(tmp_path)), "active")
    run = store.create_run(ing.id, "manual")
    store.add_pending_batch(ing.id, run, 1, _entries("/a", "/b"))
    store.add_pending_batch(ing.id, run, 2, _entries("/c"))
    assert {k: sorted(e.path for e in v) for k, v in store.pending_batches(ing.id).items()} == {
        1: ["/a", "/b"],
        2: ["/c"],
    }
    store.complete_batch(
        ing.id, 1, {"/a": FileResult(FileStatus.LOADED, 5), "/b": FileResult(FileStatus.QUARANTINED, error="bad")}
    )
    store.drop_pending_batch(ing.id, 2)
    known = store.known_files(ing.id)
    assert {p: k.status for p, k in known.items()} == {"/a": FileStatus.LOADED, "/b": FileStatus.QUARANTINED}
    assert store.max_batch_seq(ing.id) == 1
    total, rows = store.list_files(ing.id, status="loaded")
    assert total == 1 and rows[0].records == 5 and rows[0].loaded_at is not None

    # a failed file is re-pointed at a later batch instead of duplicated
    store.upsert_files(ing.id, run, [LedgerEntry("/d", 1, NOW, "e", FileStatus.FAILED, error="x")])
    store.add_pending_batch(ing.id, run, 3, _entries("/d"))
    store.complete_batch(ing.id, 3, {"/d": FileResult(FileStatus.LOADED)})
    total, rows = store.list_files(ing.id, search="/d")
    assert total == 1 and rows[0].status == "loaded" and rows[0].error is None


def test_large_batches_insert_in_bulk(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = services.store
    ing = store.create_ingestion(spec(str(tmp_path)), "active")
    run = store.create_run(ing.id, "manual")
    paths = [f"/f/{i:05d}.json" for i in range(10_000)]
    store.add_pending_batch(ing.id, run, 1, _entries(*paths))
    store.complete_batch(ing.id, 1, {p: FileResult(FileStatus.LOADED) for p in paths})
    assert len(store.known_files(ing.id)) == 10_000
    assert store.list_files(ing.id, status="loaded")[0] == 10_000


def test_finish_run_records_metrics_and_errors(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = services.store
    ing = store.create_ingestion(spec(str(tmp_path)), "active")
    run = store.create_run(ing.id, "manual")
    store.finish_run(
        run,
        RunStatus.PARTIAL,
        RunMetrics(files_processed=2, records_ingested=9),
        [RunError("quarantined", "empty", "check it", file="/x")],
        "done",
    )
    record = store.get_run(ing.id, run)
    assert record.status == "partial" and record.metrics["records_ingested"] == 9
    assert record.errors[0]["file"] == "/x" and record.finished_at is not None


def test_credentials_are_encrypted_at_rest(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = {
        "type": "s3",
        "path": "s3://b/p/",
        "credentials": {"type": "access_key", "access_key_id": "AKIA", "secret_access_key": "top-secret-value"},
    }
    ing = services.store.create_ingestion(spec(str(tmp_path), source=source), "draft")
    with services.db.connect() as conn:
        raw = str(conn.execute(text("SELECT source FROM ingestion")).scalar())
    assert "top-secret-value" not in raw and "enc:v1:" in raw
    assert services.store.get_ingestion(ing.id).spec.source.credentials.secret_access_key == "top-secret-value"
