"""The SQL metadata store: implements `core.ports.MetadataStore` plus the queries the API needs."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.db.models import AuditEntry, LedgerFile, Notification, Run, SchemaVersion, utcnow
from app.db.models import Ingestion as IngestionRow
from app.secrets_box import SecretBox
from core.config import SECRET_FIELDS, IngestionSpec
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
from core.errors import Conflict, NotFound
from core.ports import ActiveRun

_SPEC_PARTS = ("source", "format", "destination", "schedule", "quality", "limits")
_INSERT_CHUNK = 2000


def save_named(s: Session, row: Any, kind: str) -> None:
    """Commit a row whose unique name is the one constraint a user can hit; a clash names the field."""
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        raise Conflict(f"{kind} named '{row.name}' already exists.", "Choose another name.", field="name") from None
    s.refresh(row)


class SqlStore:
    def __init__(self, engine: Engine, secrets: SecretBox):
        self.engine = engine
        self.secrets = secrets

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- ingestions: mapping -------------------------------------------------------------------------
    def _encrypt_source(self, source: dict[str, Any]) -> dict[str, Any]:
        creds = dict(source.get("credentials") or {})
        for key in SECRET_FIELDS:
            value = creds.get(key)
            if value and not self.secrets.is_encrypted(value):
                creds[key] = self.secrets.encrypt(value)
        return {**source, "credentials": creds}

    def _decrypt_source(self, source: dict[str, Any]) -> dict[str, Any]:
        creds = dict(source.get("credentials") or {})
        for key in SECRET_FIELDS:
            if creds.get(key):
                creds[key] = self.secrets.decrypt(creds[key])
        return {**source, "credentials": creds}

    def _to_domain(self, row: IngestionRow) -> Ingestion:
        spec = IngestionSpec.model_validate(
            {
                "name": row.name,
                "cluster_id": row.cluster_id,
                **{part: getattr(row, part) for part in _SPEC_PARTS},
                "source": self._decrypt_source(row.source),
            }
        )
        assert row.id is not None
        return Ingestion(
            id=row.id,
            uid=row.uid,
            name=row.name,
            spec=spec,
            status=IngestionStatus(row.status),
            created_at=row.created_at,
        )

    @staticmethod
    def _spec_columns(spec: IngestionSpec) -> dict[str, Any]:
        data = spec.model_dump(mode="json", by_alias=True)
        return {part: data[part] for part in _SPEC_PARTS}

    # --- ingestions: CRUD ---------------------------------------------------------------------------
    def create_ingestion(self, spec: IngestionSpec, status: IngestionStatus) -> Ingestion:
        columns = self._spec_columns(spec)
        columns["source"] = self._encrypt_source(columns["source"])
        row = IngestionRow(
            name=spec.name,
            status=IngestionStatus(status).value,
            cluster_id=spec.cluster_id,
            uid=str(uuid.uuid4()),
            **columns,
        )
        with self.session() as s:
            self._save_named(s, row)
        return self._to_domain(row)

    @staticmethod
    def _save_named(s: Session, row: IngestionRow) -> None:
        save_named(s, row, "An ingestion")

    def _row(self, s: Session, ingestion_id: int) -> IngestionRow:
        row = s.get(IngestionRow, ingestion_id)
        if row is None:
            raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions.")
        return row

    def get_ingestion(self, ingestion_id: int) -> Ingestion:
        with self.session() as s:
            return self._to_domain(self._row(s, ingestion_id))

    def find_ingestion(self, id_or_name: str) -> Ingestion:
        with self.session() as s:
            row = s.get(IngestionRow, int(id_or_name)) if id_or_name.isdigit() else None
            if row is None:
                row = s.execute(select(IngestionRow).where(col(IngestionRow.name) == id_or_name)).scalars().first()
            if row is None:
                raise NotFound(
                    f"No ingestion with id or name '{id_or_name}'.", "List them with GET /api/v1/ingestions."
                )
            return self._to_domain(row)

    def list_ingestions(
        self, status: str | None = None, source_type: str | None = None, mode: str | None = None
    ) -> list[Ingestion]:
        with self.session() as s:
            query = select(IngestionRow).order_by(col(IngestionRow.id))
            if status:
                query = query.where(col(IngestionRow.status) == status)
            rows = s.execute(query).scalars().all()
        items = [self._to_domain(r) for r in rows]
        if source_type:
            items = [i for i in items if i.spec.source.type == source_type]
        if mode:
            items = [i for i in items if i.spec.schedule.mode == mode]
        return items

    def update_ingestion(self, ingestion_id: int, spec: IngestionSpec) -> Ingestion:
        columns = self._spec_columns(spec)
        columns["source"] = self._encrypt_source(columns["source"])
        with self.session() as s:
            row = self._row(s, ingestion_id)
            row.name, row.cluster_id, row.updated_at = spec.name, spec.cluster_id, utcnow()
            for part, value in columns.items():
                setattr(row, part, value)
            self._save_named(s, row)
            return self._to_domain(row)

    def set_ingestion_status(self, ingestion_id: int, status: str) -> None:
        with self.session() as s:
            result = s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id)
                .values(status=str(status), updated_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"Ingestion {ingestion_id} does not exist.", "List ingestions first.")
            s.commit()

    def delete_ingestion(self, ingestion_id: int) -> None:
        with self.session() as s:
            self._row(s, ingestion_id)
            s.execute(delete(LedgerFile).where(col(LedgerFile.ingestion_id) == ingestion_id))
            s.execute(delete(Run).where(col(Run.ingestion_id) == ingestion_id))
            s.execute(delete(SchemaVersion).where(col(SchemaVersion.ingestion_id) == ingestion_id))
            s.execute(delete(Notification).where(col(Notification.ingestion_id) == ingestion_id))
            s.execute(delete(IngestionRow).where(col(IngestionRow.id) == ingestion_id))
            s.commit()

    # --- run slot ------------------------------------------------------------------------------------------
    def claim_run_slot(self, ingestion_id: int, run_id: int, expected: int | None = None) -> bool:
        with self.session() as s:
            current = col(IngestionRow.active_run_id)
            condition = current.is_(None) if expected is None else current == expected
            result = s.execute(
                update(IngestionRow).where(col(IngestionRow.id) == ingestion_id, condition).values(active_run_id=run_id)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_run_slot(self, ingestion_id: int, run_id: int) -> None:
        with self.session() as s:
            s.execute(
                update(IngestionRow)
                .where(col(IngestionRow.id) == ingestion_id, col(IngestionRow.active_run_id) == run_id)
                .values(active_run_id=None)
            )
            s.commit()

    def active_run(self, ingestion_id: int) -> ActiveRun | None:
        with self.session() as s:
            row = s.execute(
                select(col(Run.id), col(Run.owner), col(Run.heartbeat_at))
                .join(IngestionRow, col(IngestionRow.active_run_id) == col(Run.id))
                .where(col(IngestionRow.id) == ingestion_id)
            ).first()
            if row is None:
                slot = s.execute(
                    select(col(IngestionRow.active_run_id)).where(col(IngestionRow.id) == ingestion_id)
                ).scalar()
                return None if slot is None else ActiveRun(slot, None, None)
            return ActiveRun(row[0], row[1], row[2])

    # --- runs ---------------------------------------------------------------------------------------------
    def create_run(self, ingestion_id: int, trigger: str) -> int:
        with self.session() as s:
            run = Run(ingestion_id=ingestion_id, trigger=trigger, status=RunStatus.QUEUED.value)
            s.add(run)
            s.commit()
            assert run.id is not None
            return run.id

    def create_scheduled_run(self, ingestion_id: int, slot: datetime, trigger: str = "scheduled") -> int | None:
        """Claim a scheduled fire: the (ingestion, slot) pair is unique, so across replicas one insert wins."""
        with self.session() as s:
            run = Run(ingestion_id=ingestion_id, trigger=trigger, status=RunStatus.QUEUED.value, scheduled_for=slot)
            s.add(run)
            try:
                s.commit()
            except IntegrityError:
                return None
            return run.id

    def create_retry_run(self, failed_run_id: int, not_before: datetime) -> int | None:
        """Queue the retry of a failed run once (unique on `retry_of`)."""
        with self.session() as s:
            failed = s.get(Run, failed_run_id)
            if failed is None:
                return None
            run = Run(
                ingestion_id=failed.ingestion_id,
                trigger="retry",
                status=RunStatus.QUEUED.value,
                attempt=failed.attempt + 1,
                retry_of=failed_run_id,
                not_before=not_before,
            )
            s.add(run)
            try:
                s.commit()
            except IntegrityError:
                return None
            return run.id

    def take_queued_retry(self, run_id: int) -> bool:
        """Atomically take a due retry (one replica wins): clears its `not_before`."""
        with self.session() as s:
            result = s.execute(
                update(Run)
                .where(
                    col(Run.id) == run_id, col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_not(None)
                )
                .values(not_before=None)
            )
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def run_attempt(self, run_id: int) -> int:
        run = self.get_run_by_id(run_id)
        return 1 if run is None else run.attempt

    def get_run_by_id(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def pending_retries(self) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_not(None))
            return list(s.execute(query).scalars().all())

    def ingestion_versions(self) -> dict[int, datetime]:
        """id → updated_at of every ingestion (the scheduler's cheap change detector)."""
        with self.session() as s:
            rows = s.execute(select(col(IngestionRow.id), col(IngestionRow.updated_at)))
            return {row[0]: row[1] for row in rows}

    def set_next_fire(self, ingestion_id: int, at: datetime | None) -> None:
        with self.session() as s:
            s.execute(update(IngestionRow).where(col(IngestionRow.id) == ingestion_id).values(next_fire_at=at))
            s.commit()

    def next_fire(self, ingestion_id: int) -> datetime | None:
        with self.session() as s:
            row = self._row(s, ingestion_id)
            return row.next_fire_at

    def mark_run_started(self, run_id: int, owner: str) -> None:
        now = utcnow()
        self._update_run(run_id, status=RunStatus.RUNNING.value, started_at=now, heartbeat_at=now, owner=owner)

    def set_engine_job_id(self, run_id: int, job_id: str) -> None:
        self._update_run(run_id, engine_job_id=job_id)

    def heartbeat(self, run_id: int) -> None:
        self._update_run(run_id, heartbeat_at=utcnow())

    def update_run_progress(self, run_id: int, files_done: int, files_total: int, metrics: RunMetrics) -> None:
        self._update_run(
            run_id, files_done=files_done, files_total=files_total, metrics=metrics.as_dict(), heartbeat_at=utcnow()
        )

    def finish_run(
        self, run_id: int, status: RunStatus, metrics: RunMetrics, errors: list[RunError], message: str
    ) -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                return
            run.status, run.finished_at, run.message = status.value, utcnow(), message
            run.metrics = metrics.as_dict()
            run.errors = [
                {"file": e.file, "kind": e.kind, "message": e.message, "action": e.action, "detail": e.detail}
                for e in errors
            ]
            if status not in (RunStatus.CANCELLED, RunStatus.SKIPPED):
                run.files_done = max(run.files_done, metrics.files_processed + metrics.files_quarantined)
            s.add(run)
            s.commit()

    def _update_run(self, run_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(Run).where(col(Run.id) == run_id).values(**values))
            s.commit()

    def get_run(self, ingestion_id: int, run_id: int) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.ingestion_id != ingestion_id:
                raise NotFound(f"Run {run_id} of ingestion {ingestion_id} does not exist.", "List the runs first.")
            return run

    def list_runs(self, ingestion_id: int, days: int | None = 30, limit: int = 500) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.ingestion_id) == ingestion_id)
            if days:
                query = query.where(col(Run.created_at) >= utcnow() - timedelta(days=days))
            query = query.order_by(col(Run.id).desc()).limit(limit)
            return list(s.execute(query).scalars().all())

    def orphaned_runs(self) -> list[Run]:
        """Runs still marked queued or running (checked at start-up)."""
        with self.session() as s:
            running = col(Run.status) == RunStatus.RUNNING.value
            queued_now = and_(col(Run.status) == RunStatus.QUEUED.value, col(Run.not_before).is_(None))
            query = select(Run).where(or_(running, queued_now))
            return list(s.execute(query).scalars().all())

    def run_metrics_since(self, ingestion_id: int, since: datetime) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.ingestion_id) == ingestion_id, col(Run.created_at) >= since)
            return list(s.execute(query).scalars().all())

    # --- schema versions ------------------------------------------------------------------------------------
    def record_schema_version(self, ingestion_id: int, schema: list[dict[str, Any]], reason: str) -> None:
        with self.session() as s:
            last = s.execute(
                select(func.max(SchemaVersion.version)).where(col(SchemaVersion.ingestion_id) == ingestion_id)
            ).scalar()
            s.add(
                SchemaVersion(
                    ingestion_id=ingestion_id, version=(last or 0) + 1, columns=schema, reason=reason, status="applied"
                )
            )
            s.commit()

    def record_pending_schema(
        self,
        ingestion_id: int,
        columns: list[dict[str, Any]],
        changes: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> int:
        with self.session() as s:
            pending = self._pending_version(s, ingestion_id)
            if pending is None:
                last = s.execute(
                    select(func.max(SchemaVersion.version)).where(col(SchemaVersion.ingestion_id) == ingestion_id)
                ).scalar()
                pending = SchemaVersion(
                    ingestion_id=ingestion_id, version=(last or 0) + 1, status="pending", columns=[]
                )
            known = {(c["kind"], c["column"]) for c in pending.changes}
            pending.changes = [*pending.changes, *(c for c in changes if (c["kind"], c["column"]) not in known)]
            pending.files = [*pending.files, *files]
            pending.columns = columns
            pending.reason = f"{len(pending.files)} file(s) with: " + "; ".join(
                c["description"] for c in pending.changes
            )
            s.add(pending)
            s.commit()
            return pending.version

    @staticmethod
    def _pending_version(s: Session, ingestion_id: int) -> SchemaVersion | None:
        query = select(SchemaVersion).where(
            col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.status) == "pending"
        )
        return s.execute(query).scalars().first()

    def get_schema_version(self, ingestion_id: int, version: int) -> SchemaVersion:
        with self.session() as s:
            query = select(SchemaVersion).where(
                col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.version) == version
            )
            found = s.execute(query).scalars().first()
            if found is None:
                raise NotFound(
                    f"Schema version {version} of ingestion {ingestion_id} does not exist.",
                    "List them with GET /api/v1/ingestions/{id}/schema-versions.",
                )
            return found

    def resolve_schema_version(
        self, ingestion_id: int, version: int, resolution: str, actor: str, columns: list[dict[str, Any]]
    ) -> None:
        with self.session() as s:
            s.execute(
                update(SchemaVersion)
                .where(col(SchemaVersion.ingestion_id) == ingestion_id, col(SchemaVersion.version) == version)
                .values(
                    status="applied", resolution=resolution, resolved_at=utcnow(), resolved_by=actor, columns=columns
                )
            )
            s.commit()

    def release_held_files(self, ingestion_id: int) -> int:
        """Forget held files so that the next run loads them (after a schema decision)."""
        with self.session() as s:
            result = s.execute(
                delete(LedgerFile).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.HELD.value
                )
            )
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def list_schema_versions(self, ingestion_id: int) -> list[SchemaVersion]:
        with self.session() as s:
            query = select(SchemaVersion).where(col(SchemaVersion.ingestion_id) == ingestion_id)
            return list(s.execute(query.order_by(col(SchemaVersion.version))).scalars().all())

    # --- ledger -----------------------------------------------------------------------------------------------
    def known_files(self, ingestion_id: int) -> dict[str, KnownFile]:
        with self.session() as s:
            rows = s.execute(
                select(col(LedgerFile.path), col(LedgerFile.etag), col(LedgerFile.status)).where(
                    col(LedgerFile.ingestion_id) == ingestion_id
                )
            )
            return {path: KnownFile(etag, FileStatus(status)) for path, etag, status in rows}

    def pending_batches(self, ingestion_id: int) -> dict[int, list[LedgerEntry]]:
        with self.session() as s:
            rows = s.execute(
                select(LedgerFile).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.PENDING.value
                )
            ).scalars()
            batches: dict[int, list[LedgerEntry]] = defaultdict(list)
            for r in rows:
                batches[r.batch_seq or 0].append(
                    LedgerEntry(r.path, r.size, r.modified_at, r.etag, FileStatus.PENDING, r.run_id, r.batch_seq)
                )
            return dict(batches)

    def max_batch_seq(self, ingestion_id: int) -> int:
        with self.session() as s:
            value = s.execute(
                select(func.max(LedgerFile.batch_seq)).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.LOADED.value
                )
            ).scalar()
            return int(value or 0)

    def add_pending_batch(self, ingestion_id: int, run_id: int, batch_seq: int, entries: list[LedgerEntry]) -> None:
        """Insert new files and re-point retried ones (failed, quarantined, changed) at this batch, atomically."""
        now = utcnow()
        with self.session() as s:
            existing = (
                set(
                    s.execute(
                        select(col(LedgerFile.path)).where(
                            col(LedgerFile.ingestion_id) == ingestion_id,
                            col(LedgerFile.path).in_([e.path for e in entries]),
                        )
                    ).scalars()
                )
                if len(entries) < 50_000
                else set(self.known_files(ingestion_id))
            )
            fresh = [e for e in entries if e.path not in existing]
            for chunk in _chunks(fresh, _INSERT_CHUNK):
                s.execute(
                    insert(LedgerFile),
                    [
                        {
                            "ingestion_id": ingestion_id,
                            "path": e.path,
                            "size": e.size,
                            "etag": e.etag,
                            "modified_at": e.modified,
                            "status": FileStatus.PENDING.value,
                            "run_id": run_id,
                            "batch_seq": batch_seq,
                            "records": 0,
                            "bad_records": 0,
                            "discovered_at": now,
                        }
                        for e in chunk
                    ],
                )
            for e in entries:
                if e.path in existing:
                    s.execute(
                        update(LedgerFile)
                        .where(col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.path) == e.path)
                        .values(
                            status=FileStatus.PENDING.value,
                            size=e.size,
                            etag=e.etag,
                            modified_at=e.modified,
                            run_id=run_id,
                            batch_seq=batch_seq,
                            error=None,
                            records=0,
                            bad_records=0,
                        )
                    )
            s.commit()

    def complete_batch(self, ingestion_id: int, batch_seq: int, results: dict[str, FileResult]) -> None:
        now = utcnow()
        with self.session() as s:
            plain = [p for p, r in results.items() if r.status == FileStatus.LOADED and not r.records and not r.error]
            for chunk in _chunks(plain, _INSERT_CHUNK):
                s.execute(
                    update(LedgerFile)
                    .where(col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.path).in_(chunk))
                    .values(status=FileStatus.LOADED.value, loaded_at=now)
                )
            detailed = [
                {
                    "b_path": p,
                    "b_status": r.status.value,
                    "b_records": r.records,
                    "b_bad": r.bad_records,
                    "b_error": r.error,
                }
                for p, r in results.items()
                if p not in set(plain)
            ]
            if detailed:
                ledger = LedgerFile.__table__  # type: ignore[attr-defined]
                s.connection().execute(
                    update(ledger)
                    .where(ledger.c.ingestion_id == ingestion_id, ledger.c.path == bindparam("b_path"))
                    .values(
                        status=bindparam("b_status"),
                        records=bindparam("b_records"),
                        bad_records=bindparam("b_bad"),
                        error=bindparam("b_error"),
                        loaded_at=now,
                    ),
                    detailed,
                )
            s.commit()

    def drop_pending_batch(self, ingestion_id: int, batch_seq: int) -> None:
        with self.session() as s:
            s.execute(
                delete(LedgerFile).where(
                    col(LedgerFile.ingestion_id) == ingestion_id,
                    col(LedgerFile.batch_seq) == batch_seq,
                    col(LedgerFile.status) == FileStatus.PENDING.value,
                )
            )
            s.commit()

    def upsert_files(self, ingestion_id: int, run_id: int | None, entries: Iterable[LedgerEntry]) -> None:
        with self.session() as s:
            for e in entries:
                values = {
                    "size": e.size,
                    "etag": e.etag,
                    "modified_at": e.modified,
                    "status": e.status.value,
                    "run_id": run_id,
                    "batch_seq": None,
                    "records": e.records,
                    "bad_records": e.bad_records,
                    "error": e.error,
                }
                result = s.execute(
                    update(LedgerFile)
                    .where(col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.path) == e.path)
                    .values(**values)
                )
                if not result.rowcount:  # type: ignore[attr-defined]
                    s.execute(insert(LedgerFile).values(ingestion_id=ingestion_id, path=e.path, **values))
            s.commit()

    def forget_files(
        self, ingestion_id: int, paths: list[str] | None, since: datetime | None, until: datetime | None
    ) -> int:
        """Drop settled ledger rows (by path, or modified in a range) so the next run loads those files again."""
        where = [col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) != FileStatus.PENDING.value]
        if paths is not None:
            where.append(col(LedgerFile.path).in_(paths))
        if since is not None:
            where.append(col(LedgerFile.modified_at) >= since)
        if until is not None:
            where.append(col(LedgerFile.modified_at) < until)
        with self.session() as s:
            result = s.execute(delete(LedgerFile).where(*where))
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def list_files(
        self,
        ingestion_id: int,
        status: str | None = None,
        search: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> tuple[int, list[LedgerFile]]:
        with self.session() as s:
            where = [col(LedgerFile.ingestion_id) == ingestion_id]
            if status:
                where.append(col(LedgerFile.status) == status)
            if search:
                where.append(col(LedgerFile.path).contains(search))
            total = s.execute(select(func.count()).select_from(LedgerFile).where(*where)).scalar() or 0
            query = select(LedgerFile).where(*where).order_by(col(LedgerFile.id)).limit(limit).offset(offset)
            return int(total), list(s.execute(query).scalars().all())

    # --- audit ------------------------------------------------------------------------------------------------
    def audit(
        self, action: str, object_type: str, object_id: str | int | None, actor: str = "api", **details: Any
    ) -> None:
        with self.session() as s:
            s.add(
                AuditEntry(
                    action=action,
                    object_type=object_type,
                    object_id=None if object_id is None else str(object_id),
                    actor=actor,
                    details=details,
                )
            )
            s.commit()

    def list_audit(self, limit: int = 200) -> list[AuditEntry]:
        with self.session() as s:
            query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
            return list(s.execute(query).scalars().all())


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class NotificationStore:
    """In-app notifications. An uncleared notification of a (ingestion, kind) suppresses repeats."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def open_alert(self, ingestion_id: int, kind: str) -> Notification | None:
        with self.session() as s:
            query = select(Notification).where(
                col(Notification.ingestion_id) == ingestion_id,
                col(Notification.kind) == kind,
                col(Notification.cleared_at).is_(None),
            )
            return s.execute(query.limit(1)).scalars().first()

    def add(self, notification: Notification) -> Notification:
        with self.session() as s:
            s.add(notification)
            s.commit()
            s.refresh(notification)
            return notification

    def set_deliveries(self, notification_id: int, deliveries: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(update(Notification).where(col(Notification.id) == notification_id).values(deliveries=deliveries))
            s.commit()

    def clear(self, ingestion_id: int, kind: str) -> int:
        with self.session() as s:
            result = s.execute(
                update(Notification)
                .where(
                    col(Notification.ingestion_id) == ingestion_id,
                    col(Notification.kind) == kind,
                    col(Notification.cleared_at).is_(None),
                )
                .values(cleared_at=utcnow())
            )
            s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def recent(self, unread_only: bool = False, limit: int = 100) -> list[Notification]:
        with self.session() as s:
            query = select(Notification).order_by(col(Notification.id).desc()).limit(limit)
            if unread_only:
                query = query.where(col(Notification.read_at).is_(None))
            return list(s.execute(query).scalars().all())

    def unread_count(self) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(Notification).where(col(Notification.read_at).is_(None))
            return int(s.execute(query).scalar() or 0)

    def mark_read(self, notification_id: int | None = None) -> None:
        with self.session() as s:
            query = update(Notification).where(col(Notification.read_at).is_(None))
            if notification_id is not None:
                query = query.where(col(Notification.id) == notification_id)
            s.execute(query.values(read_at=utcnow()))
            s.commit()

    def last_loaded_at(self, ingestion_id: int) -> datetime | None:
        with self.session() as s:
            return s.execute(
                select(func.max(LedgerFile.loaded_at)).where(
                    col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.LOADED.value
                )
            ).scalar()

    def running_runs(self) -> list[Run]:
        with self.session() as s:
            query = select(Run).where(col(Run.status) == RunStatus.RUNNING.value)
            return list(s.execute(query).scalars().all())
