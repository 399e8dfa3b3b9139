"""In-memory implementations of the core ports, for tests that need no SQL database.

`MemoryStore` mirrors `app.db.repository.SqlStore` method for method; the metadata-store contract suite
(tests/contract/test_metadata_store.py) runs the same cases against both, so a divergence fails there.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.config import IngestionSpec
from core.domain import (
    FileResult,
    FileStatus,
    Ingestion,
    IngestionStatus,
    KnownFiles,
    LedgerEntry,
    RunError,
    RunMetrics,
    RunStatus,
)
from core.errors import Conflict, NotFound, run_taken_over
from core.ports import ActiveRun, ListingState, MetadataStore
from core.schema import merged_changes
from core.wording import counted


def _now() -> datetime:
    return datetime.now(UTC)


# --- rows: the same fields as the SQL tables (app/db/models.py), so tests read either store alike ----------
@dataclass(slots=True)
class IngestionRow:
    id: int
    uid: str
    name: str
    spec: IngestionSpec
    status: str
    active_run_id: int | None = None
    created_at: datetime = field(default_factory=_now)


@dataclass(slots=True)
class RunRow:
    id: int
    ingestion_id: int
    trigger: str
    status: str = RunStatus.QUEUED.value
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    owner: str | None = None
    heartbeat_at: datetime | None = None
    files_total: int = 0
    files_done: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    engine_job_id: str | None = None


@dataclass(slots=True)
class LedgerRow:
    path: str
    size: int
    etag: str | None
    status: str
    modified_at: datetime
    run_id: int | None = None
    batch_seq: int | None = None
    records: int = 0
    bad_records: int = 0
    error: str | None = None
    discovered_at: datetime = field(default_factory=_now)
    loaded_at: datetime | None = None
    previous_size: int | None = None
    previous_etag: str | None = None
    content_hash: str | None = None


@dataclass(slots=True)
class SchemaVersionRow:
    version: int
    status: str
    columns: list[dict[str, Any]]
    reason: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime = field(default_factory=_now)


class MemoryStore(MetadataStore):
    """The metadata store in dicts. One lock guards everything: runs call it from worker and heartbeat threads.

    Rows handed out (by the port or the helpers) are copies, as a SQL store's are: mutating them changes nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ingestions: dict[int, IngestionRow] = {}
        self._runs: dict[int, RunRow] = {}
        self._ledger: dict[int, dict[str, LedgerRow]] = defaultdict(dict)
        self._listing: dict[int, ListingState] = {}
        self._schemas: dict[int, list[SchemaVersionRow]] = defaultdict(list)
        self._next_ingestion_id = 1
        self._next_run_id = 1

    # === the port (core.ports.MetadataStore) ============================================================
    def get_ingestion(self, ingestion_id: int) -> Ingestion:
        with self._lock:
            row = self._ingestion(ingestion_id)
            return Ingestion(
                id=row.id,
                uid=row.uid,
                name=row.name,
                spec=row.spec.model_copy(deep=True),
                status=IngestionStatus(row.status),
                created_at=row.created_at,
            )

    def set_ingestion_status(self, ingestion_id: int, status: str) -> None:
        with self._lock:
            self._ingestion(ingestion_id).status = str(status)

    # --- run slot --------------------------------------------------------------------------------------
    def claim_run_slot(self, ingestion_id: int, run_id: int, expected: int | None = None) -> bool:
        with self._lock:
            row = self._ingestions.get(ingestion_id)
            if row is None or row.active_run_id != expected:
                return False
            row.active_run_id = run_id
            return True

    def release_run_slot(self, ingestion_id: int, run_id: int) -> None:
        with self._lock:
            row = self._ingestions.get(ingestion_id)
            if row is not None and row.active_run_id == run_id:
                row.active_run_id = None

    def active_run(self, ingestion_id: int) -> ActiveRun | None:
        """The slot's run with its owner and heartbeat; a slot naming a run that does not exist has neither."""
        with self._lock:
            row = self._ingestions.get(ingestion_id)
            if row is None or row.active_run_id is None:
                return None
            run = self._runs.get(row.active_run_id)
            if run is None:
                return ActiveRun(row.active_run_id, None, None)
            return ActiveRun(run.id, run.owner, run.heartbeat_at, getattr(run, "number", None))

    # --- runs --------------------------------------------------------------------------------------------
    def mark_run_started(self, run_id: int, owner: str) -> None:
        now = _now()
        self._update_run(run_id, status=RunStatus.RUNNING.value, started_at=now, heartbeat_at=now, owner=owner)

    def heartbeat(self, run_id: int) -> None:
        self._update_run(run_id, heartbeat_at=_now())

    def set_engine_job_id(self, run_id: int, job_id: str) -> None:
        self._update_run(run_id, engine_job_id=job_id)

    def update_run_progress(self, run_id: int, files_done: int, files_total: int, metrics: RunMetrics) -> None:
        if self._unfinished(run_id):
            self._update_run(
                run_id, files_done=files_done, files_total=files_total, metrics=metrics.as_dict(), heartbeat_at=_now()
            )

    def _unfinished(self, run_id: int) -> bool:
        run = self._runs.get(run_id)
        return run is None or run.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value)

    def finish_run(
        self, run_id: int, status: RunStatus, metrics: RunMetrics, errors: list[RunError], message: str
    ) -> None:
        """Close the run; `files_done` never goes down, and a cancelled or skipped run keeps it as it was."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or not self._unfinished(run_id):  # ended already, by a server that took it over
                return
            run.status, run.finished_at, run.message = status.value, _now(), message
            run.metrics = metrics.as_dict()
            run.errors = [
                {"file": e.file, "kind": e.kind, "message": e.message, "action": e.action, "detail": e.detail}
                for e in errors
            ]
            if status != RunStatus.SKIPPED:
                run.files_done = max(run.files_done, metrics.files_processed + metrics.files_quarantined)

    def _update_run(self, run_id: int, **values: Any) -> None:
        """Like SQL's UPDATE … WHERE id = run_id: an unknown run is not an error, nothing changes."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                for name, value in values.items():
                    setattr(run, name, value)

    # --- schema versions -------------------------------------------------------------------------------
    def record_schema_version(self, ingestion_id: int, schema: list[dict[str, Any]], reason: str) -> None:
        with self._lock:
            versions = self._schemas[ingestion_id]
            versions.append(
                SchemaVersionRow(
                    version=self._last_version(ingestion_id) + 1,
                    status="applied",
                    columns=copy.deepcopy(schema),
                    reason=reason,
                )
            )

    def record_pending_schema(
        self,
        ingestion_id: int,
        columns: list[dict[str, Any]],
        changes: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> int:
        """Extend the one pending version if there is one (a change of the same kind and column replaces the
        earlier one, files accumulated, columns replaced); otherwise open a new pending version after the last one."""
        with self._lock:
            pending = next((v for v in self._schemas[ingestion_id] if v.status == "pending"), None)
            if pending is None:
                pending = SchemaVersionRow(version=self._last_version(ingestion_id) + 1, status="pending", columns=[])
                self._schemas[ingestion_id].append(pending)
            pending.changes = merged_changes(pending.changes, copy.deepcopy(changes))
            pending.files = [*pending.files, *copy.deepcopy(files)]
            pending.columns = copy.deepcopy(columns)
            pending.reason = f"{counted(len(pending.files), 'file')} with: " + "; ".join(
                c["description"] for c in pending.changes
            )
            return pending.version

    def pending_schema_columns(self, ingestion_id: int) -> list[dict[str, Any]] | None:
        with self._lock:
            pending = next((v for v in self._schemas[ingestion_id] if v.status == "pending"), None)
            return None if pending is None else copy.deepcopy(pending.columns)

    def _last_version(self, ingestion_id: int) -> int:
        return max((v.version for v in self._schemas[ingestion_id]), default=0)

    # --- file ledger ---------------------------------------------------------------------------------------
    def listing_state(self, ingestion_id: int) -> ListingState:
        with self._lock:
            return self._listing.get(ingestion_id, ListingState())

    def set_listing_state(self, ingestion_id: int, state: ListingState) -> None:
        with self._lock:
            self._listing[ingestion_id] = state

    def known_files(self, ingestion_id: int, after: str | None = None) -> KnownFiles:
        with self._lock:
            return KnownFiles(
                (
                    p,
                    r.etag,
                    r.status,
                    r.size,
                    r.modified_at,
                    r.records,
                    r.previous_size,
                    r.previous_etag,
                    r.content_hash,
                )
                for p, r in self._ledger[ingestion_id].items()
                if after is None or p > after
            )

    def has_held_files(self, ingestion_id: int) -> bool:
        with self._lock:
            return any(r.status == FileStatus.HELD.value for r in self._ledger[ingestion_id].values())

    def pending_batches(self, ingestion_id: int) -> dict[int, list[LedgerEntry]]:
        with self._lock:
            batches: dict[int, list[LedgerEntry]] = defaultdict(list)
            for r in self._ledger[ingestion_id].values():
                if r.status == FileStatus.PENDING.value:
                    batches[r.batch_seq or 0].append(
                        LedgerEntry(r.path, r.size, r.modified_at, r.etag, FileStatus.PENDING, r.run_id, r.batch_seq)
                    )
            return dict(batches)

    def max_batch_seq(self, ingestion_id: int) -> int:
        """The highest batch sequence among *loaded* files (pending and quarantined ones do not count)."""
        with self._lock:
            return max(
                (
                    r.batch_seq
                    for r in self._ledger[ingestion_id].values()
                    if r.status == FileStatus.LOADED.value and r.batch_seq is not None
                ),
                default=0,
            )

    def add_pending_batch(self, ingestion_id: int, run_id: int, batch_seq: int, entries: list[LedgerEntry]) -> None:
        """New files are inserted; files already in the ledger are re-pointed at this batch (error and counts reset,
        discovery and load times kept; a reloaded file, one with `previous_size`, keeps its counts and hash).
        A path twice among the new files violates the ledger's unique key, as in
        SQL, and nothing is written. A run already ended is refused (RunTakenOver), as SqlStore refuses it."""
        now = _now()
        with self._lock:
            self._fence(run_id)
            ledger = self._ledger[ingestion_id]
            fresh = [e.path for e in entries if e.path not in ledger]
            if len(fresh) != len(set(fresh)):
                raise ValueError(f"duplicate path in batch {batch_seq} of ingestion {ingestion_id}")
            for e in entries:
                row = ledger.get(e.path)
                if row is None:
                    ledger[e.path] = LedgerRow(
                        path=e.path,
                        size=e.size,
                        etag=e.etag,
                        status=FileStatus.PENDING.value,
                        modified_at=e.modified,
                        run_id=run_id,
                        batch_seq=batch_seq,
                        discovered_at=now,
                    )
                    continue
                row.status, row.size, row.etag, row.modified_at = FileStatus.PENDING.value, e.size, e.etag, e.modified
                row.run_id, row.batch_seq, row.error = run_id, batch_seq, None
                row.previous_size, row.previous_etag = e.previous_size, e.previous_etag
                if e.previous_size is None:
                    row.records, row.bad_records = 0, 0

    def _fence(self, run_id: int | None) -> None:
        """As SqlStore's `fence_run`: a run another server ended writes nothing more (call with the lock held)."""
        if run_id is not None and not self._unfinished(run_id):
            raise run_taken_over(run_id, self._runs[run_id].status)

    def check_run_live(self, run_id: int) -> None:
        with self._lock:
            self._fence(run_id)

    def complete_batch(
        self, ingestion_id: int, batch_seq: int, results: dict[str, FileResult], run_id: int | None = None
    ) -> None:
        """Set each listed file's final status and load time. Like SqlStore, rows are matched by path only:
        `batch_seq` is not checked, and a plain `loaded` result (no records, no error) keeps the row's counts."""
        now = _now()
        with self._lock:
            self._fence(run_id)
            ledger = self._ledger[ingestion_id]
            for path, result in results.items():
                row = ledger.get(path)
                if row is None:
                    continue
                row.status, row.loaded_at = result.status.value, now
                if result.status == FileStatus.LOADED:
                    row.previous_size, row.previous_etag = None, None
                plain = not (result.records or result.error or result.content_hash)
                if result.status == FileStatus.LOADED and plain:
                    continue
                row.records, row.bad_records, row.error = result.records, result.bad_records, result.error
                row.content_hash = result.content_hash or row.content_hash

    def drop_pending_batch(self, ingestion_id: int, batch_seq: int, run_id: int | None = None) -> None:
        """Delete the batch's pending rows; a retried file's earlier row goes with it (the next run sees it as new).
        A reloaded file (with `previous_size`) goes back to its loaded version instead, as in SqlStore."""
        with self._lock:
            self._fence(run_id)
            ledger = self._ledger[ingestion_id]
            for path in [
                p for p, r in ledger.items() if r.batch_seq == batch_seq and r.status == FileStatus.PENDING.value
            ]:
                row = ledger[path]
                if row.previous_size is None:
                    del ledger[path]
                    continue
                row.status, row.size, row.etag = FileStatus.LOADED.value, row.previous_size, row.previous_etag
                row.previous_size, row.previous_etag = None, None

    def upsert_files(self, ingestion_id: int, run_id: int | None, entries: Iterable[LedgerEntry]) -> None:
        """Final statuses outside a batch: the row takes `run_id` (not the entry's) and leaves any batch."""
        now = _now()
        with self._lock:
            self._fence(run_id)
            ledger = self._ledger[ingestion_id]
            for e in entries:
                row = ledger.get(e.path)
                if row is None:
                    row = ledger[e.path] = LedgerRow(
                        e.path, e.size, e.etag, e.status.value, e.modified, discovered_at=now
                    )
                row.size, row.etag, row.modified_at, row.status = e.size, e.etag, e.modified, e.status.value
                row.run_id, row.batch_seq = run_id, None
                row.records, row.bad_records, row.error = e.records, e.bad_records, e.error
                row.previous_size, row.previous_etag = e.previous_size, e.previous_etag
                if e.content_hash is not None:
                    row.content_hash = e.content_hash

    def _ingestion(self, ingestion_id: int) -> IngestionRow:
        row = self._ingestions.get(ingestion_id)
        if row is None:
            raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions.")
        return row

    # === test helpers (not part of the port): seed the store and look inside it ===========================
    def add_ingestion(self, spec: IngestionSpec, status: IngestionStatus = IngestionStatus.ACTIVE) -> Ingestion:
        """Like `SqlStore.create_ingestion`: names are unique."""
        with self._lock:
            if any(r.name == spec.name for r in self._ingestions.values()):
                raise Conflict(
                    f"An ingestion named '{spec.name}' already exists.", "Choose another name.", field="name"
                )
            ingestion_id, self._next_ingestion_id = self._next_ingestion_id, self._next_ingestion_id + 1
            self._ingestions[ingestion_id] = IngestionRow(
                id=ingestion_id,
                uid=str(uuid.uuid4()),
                name=spec.name,
                spec=spec.model_copy(deep=True),
                status=IngestionStatus(status).value,
            )
            return self.get_ingestion(ingestion_id)

    def create_run(self, ingestion_id: int, trigger: str = "manual") -> int:
        """A queued run, as `SqlStore.create_run`."""
        with self._lock:
            self._ingestion(ingestion_id)
            run_id, self._next_run_id = self._next_run_id, self._next_run_id + 1
            self._runs[run_id] = RunRow(id=run_id, ingestion_id=ingestion_id, trigger=trigger)
            return run_id

    def get_run(self, run_id: int) -> RunRow:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NotFound(f"Run {run_id} does not exist.", "Create it with create_run.")
            return copy.deepcopy(run)

    def runs(self, ingestion_id: int) -> list[RunRow]:
        """The ingestion's runs, newest first (as the run history lists them)."""
        with self._lock:
            return [
                copy.deepcopy(r)
                for r in sorted(self._runs.values(), key=lambda r: -r.id)
                if r.ingestion_id == ingestion_id
            ]

    def set_heartbeat(self, run_id: int, at: datetime) -> None:
        """Backdate a run's last heartbeat: what a process that stopped beating leaves behind."""
        self._update_run(run_id, heartbeat_at=at)

    def ledger(self, ingestion_id: int) -> dict[str, LedgerRow]:
        with self._lock:
            return copy.deepcopy(dict(self._ledger[ingestion_id]))

    def schema_versions(self, ingestion_id: int) -> list[SchemaVersionRow]:
        with self._lock:
            return copy.deepcopy(sorted(self._schemas[ingestion_id], key=lambda v: v.version))
