"""Every read query of the console and the API: one method per screen or endpoint, each a few statements whatever
the number of ingestions or runs (no query per ingestion), returning `core.views` records, never ORM rows.

Writes live in `app/db/repository.py`; the facade both the pages and the routes call is `app/views.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Engine, case, cast, func, select
from sqlmodel import Session, col

from app.db.metrics_queries import InstanceMetricsQuery
from app.db.models import (
    SPEC_COLUMNS,
    AuditEntry,
    Cluster,
    ClusterPublic,
    LedgerFile,
    MaintenanceRun,
    Notification,
    Run,
    SchemaVersion,
)
from app.db.models import Ingestion as IngestionRow
from app.db.repository.notifications import notifications_of
from core.config import STORED, IngestionSpec
from core.domain import IngestionStatus, RunStatus
from core.errors import NotFound
from core.maintenance import MaintenanceConfig, MaintenanceRecord, config_of
from core.views import (
    ACTIVE_RUN_STATES,
    FINISHED_OK,
    SUCCEEDED,
    AuditRecord,
    DashboardStats,
    DayTotals,
    FilePage,
    FileRecord,
    IngestionSummary,
    InstanceMetrics,
    NotificationRecord,
    PendingSchema,
    RunRecord,
    RunTotals,
    SchemaVersionRecord,
    empty_checks_of,
    next_run_of,
    pending_of,
)

_IN_CHUNK = 500
R = TypeVar("R")


def record(kind: type[R], row: Any, **given: Any) -> R:
    """A read record from an ORM row: the record's fields, read by name (those in `given` from there instead)."""
    names = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]
    return kind(**{name: given[name] if name in given else getattr(row, name) for name in names})


def spec_of(row: IngestionRow) -> IngestionSpec:
    """The stored spec as it is: credentials stay encrypted (the read side never decrypts a secret)."""
    return IngestionSpec.model_validate(
        {"name": row.name, "cluster_id": row.cluster_id, **{part: getattr(row, part) for part in SPEC_COLUMNS}},
        context=STORED,
    )


def cluster_public(row: Cluster) -> ClusterPublic:
    return ClusterPublic.model_validate({**row.model_dump(), "has_token": bool(row.token_encrypted)})


def _metric(name: str) -> Any:
    return func.coalesce(cast(col(Run.metrics)[name].as_float(), BigInteger), 0)


@dataclass(slots=True)
class _ParsedSpec:
    """A row's validated spec, valid while the row's updated_at is unchanged.

    Validating a spec builds a cron trigger (~0.2 ms): with 1,000 ingestions that was most of a dashboard load.
    A spec or status change bumps updated_at.
    """

    updated_at: datetime
    spec: IngestionSpec


class Queries:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._specs: dict[int, _ParsedSpec] = {}
        self._instance_metrics = InstanceMetricsQuery(self.session)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- ingestions ------------------------------------------------------------------------------------------------
    def summaries(
        self,
        tenant_id: int | None,
        only: list[int] | None = None,
        status: str | None = None,
        now: datetime | None = None,
        owner: int | None = None,
    ) -> list[IngestionSummary]:
        """A tenant's ingestions (all, or those in `only`, or of one status; every tenant's for None) with their last
        run and next run, in id order: three statements whatever their number (rows, changed specs, last runs).
        `owner`: only the ingestions that user created (`access.own_only`)."""
        latest = (
            select(col(Run.id))
            .where(col(Run.ingestion_id) == col(IngestionRow.id))
            .order_by(col(Run.created_at).desc(), col(Run.id).desc())
            .limit(1)
            .correlate(IngestionRow)
            .scalar_subquery()
        )
        query = select(
            col(IngestionRow.id),
            col(IngestionRow.name),
            col(IngestionRow.status),
            col(IngestionRow.created_at),
            col(IngestionRow.updated_at),
            col(IngestionRow.next_fire_at),
            col(IngestionRow.tenant_id),
            col(IngestionRow.created_by),
            col(IngestionRow.empty_checks),
            col(IngestionRow.empty_checks_since),
            col(IngestionRow.last_empty_check_at),
            col(IngestionRow.revision),
            latest.label("last_run_id"),
        )
        if tenant_id is not None:
            query = query.where(col(IngestionRow.tenant_id) == tenant_id)
        if only is not None:
            query = query.where(col(IngestionRow.id).in_(only))
        if owner is not None:
            query = query.where(col(IngestionRow.created_by) == owner)
        if status is not None:
            query = query.where(col(IngestionRow.status) == status)
        with self.session() as s:
            rows = s.execute(query.order_by(col(IngestionRow.id))).all()
            specs = self._parsed_specs(s, rows)
            runs = self._runs_by_id(s, [r.last_run_id for r in rows if r.last_run_id is not None])
        return [self._summary(row, specs[row.id], runs, now) for row in rows if row.id in specs]

    @staticmethod
    def _summary(row: Any, spec: IngestionSpec, runs: dict[int, RunRecord], now: datetime | None) -> IngestionSummary:
        last_run = runs.get(row.last_run_id) if row.last_run_id is not None else None
        return IngestionSummary(
            id=row.id,
            name=row.name,
            status=row.status,
            spec=spec,
            created_at=row.created_at,
            last_run=last_run,
            next_run=next_run_of(spec, row.status, row.next_fire_at, now, ingestion_id=row.id),
            tenant_id=row.tenant_id,
            created_by=row.created_by,
            empty_checks=empty_checks_of(row.empty_checks, row.empty_checks_since, row.last_empty_check_at, last_run),
            revision=row.revision,
        )

    def summary(self, ingestion_id: int, tenant_id: int | None, owner: int | None = None) -> IngestionSummary:
        for found in self.summaries(tenant_id, only=[ingestion_id], owner=owner):
            return found
        raise NotFound(f"Ingestion {ingestion_id} does not exist.", "Go back to the list of ingestions and pick one.")

    def _parsed_specs(self, session: Session, rows: Sequence[Any]) -> dict[int, IngestionSpec]:
        """Specs of the light `rows` (id, updated_at), loading and validating only the new or changed ones."""
        found: dict[int, IngestionSpec] = {}
        for row in rows:
            cached = self._specs.get(row.id)
            if cached is not None and cached.updated_at == row.updated_at:
                found[row.id] = cached.spec
        missing = [row.id for row in rows if row.id not in found]
        for start in range(0, len(missing), _IN_CHUNK):
            query = select(IngestionRow).where(col(IngestionRow.id).in_(missing[start : start + _IN_CHUNK]))
            for full in session.execute(query).scalars():
                parsed = _ParsedSpec(full.updated_at, spec_of(full))
                self._specs[full.id or 0] = parsed
                found[full.id or 0] = parsed.spec
        return found

    def _runs_by_id(self, session: Session, run_ids: list[int]) -> dict[int, RunRecord]:
        found: dict[int, RunRecord] = {}
        for start in range(0, len(run_ids), _IN_CHUNK):
            query = select(Run).where(col(Run.id).in_(run_ids[start : start + _IN_CHUNK]))
            for row in session.execute(query).scalars():
                found[row.id or 0] = record(RunRecord, row)
        return found

    def require_ingestion(self, ingestion_id: int, tenant_id: int | None, owner: int | None = None) -> None:
        """NotFound unless the ingestion exists in the tenant (another tenant's is as missing as none) and, given an
        `owner`, that user created it."""
        with self.session() as s:
            row = s.get(IngestionRow, ingestion_id)
            if (
                row is None
                or (tenant_id is not None and row.tenant_id != tenant_id)
                or (owner is not None and row.created_by != owner)
            ):
                raise NotFound(
                    f"Ingestion {ingestion_id} does not exist.", "List ingestions with GET /api/v1/ingestions."
                )

    # --- dashboard ---------------------------------------------------------------------------------------------------
    def dashboard_stats(self, tenant_id: int, now: datetime | None = None, owner: int | None = None) -> DashboardStats:
        now = now or datetime.now(UTC)
        day_ago, two_days_ago, week_ago = now - timedelta(days=1), now - timedelta(days=2), now - timedelta(days=7)
        in_tenant = col(IngestionRow.tenant_id) == tenant_id
        if owner is not None:
            in_tenant = in_tenant & (col(IngestionRow.created_by) == owner)
        all_ingestions = select(col(IngestionRow.id)).where(in_tenant).scalar_subquery()
        recent = (col(Run.ingestion_id).in_(all_ingestions), col(Run.created_at) >= two_days_ago)
        last_day = col(Run.created_at) >= day_ago
        with self.session() as s:
            active, added = s.execute(
                select(
                    func.count().filter(col(IngestionRow.status) == IngestionStatus.ACTIVE.value),
                    func.count().filter(col(IngestionRow.created_at) >= week_ago),
                ).where(in_tenant)
            ).one()
            files, data, previous, finished, ok, running = s.execute(
                select(
                    func.coalesce(func.sum(case((last_day, _metric("files_processed")), else_=0)), 0),
                    func.coalesce(func.sum(case((last_day, _metric("bytes_read")), else_=0)), 0),
                    func.coalesce(func.sum(case((last_day, 0), else_=_metric("files_processed"))), 0),
                    func.count().filter(last_day, col(Run.status).not_in(ACTIVE_RUN_STATES)),
                    func.count().filter(last_day, col(Run.status).in_(SUCCEEDED)),
                    func.count().filter(col(Run.status).in_(ACTIVE_RUN_STATES)),
                ).where(*recent)
            ).one()
        return DashboardStats(int(active), int(added), int(files), int(data), int(previous), finished, ok, running)

    def run_totals(self, ids: list[int], days: int = 7) -> dict[int, RunTotals]:
        """Per ingestion: daily totals of the last `days` UTC days (one GROUP BY) and the loading runs' durations."""
        if not ids:
            return {}
        first = datetime.now(UTC).date() - timedelta(days=days - 1)
        since = datetime.combine(first, datetime.min.time(), UTC)
        day = func.date(col(Run.created_at))
        ok = col(Run.status).in_(FINISHED_OK)
        query = (
            select(
                col(Run.ingestion_id),
                day,
                func.sum(_metric("files_processed")),
                func.sum(_metric("records_ingested")),
                func.sum(_metric("bytes_read")),
                func.count(),
                func.count().filter(col(Run.status) == RunStatus.FAILED.value),
                func.coalesce(func.sum(case((ok, col(Run.metrics)["duration_seconds"].as_float()), else_=0.0)), 0.0),
                func.count().filter(ok),
            )
            .where(col(Run.ingestion_id).in_(ids), col(Run.created_at) >= since)
            .group_by(col(Run.ingestion_id), day)
        )
        totals = {i: RunTotals([DayTotals(first + timedelta(days=n)) for n in range(days)]) for i in ids}
        with self.session() as s:
            for ingestion_id, day_value, files, records, data, runs, failed, seconds, ok_runs in s.execute(query):
                point_day = day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value))
                summary = totals[ingestion_id]
                index = (point_day - first).days
                if 0 <= index < days:
                    summary.days[index] = DayTotals(point_day, files, records, data, runs, failed)
                summary.ok_seconds += float(seconds or 0)
                summary.ok_runs += int(ok_runs)
        return totals

    def pending_schemas(self, ids: list[int]) -> dict[int, PendingSchema]:
        """The pending schema version of each of `ids` that has one: one statement whatever their number."""
        if not ids:
            return {}
        query = select(SchemaVersion).where(
            col(SchemaVersion.ingestion_id).in_(ids), col(SchemaVersion.status) == "pending"
        )
        with self.session() as s:
            rows = s.execute(query.order_by(col(SchemaVersion.version))).scalars().all()
        return {row.ingestion_id: pending_of(row.ingestion_id, record(SchemaVersionRecord, row)) for row in rows}

    # --- instance metrics ---------------------------------------------------------------------------------------------
    def instance_metrics(self, now: datetime | None = None) -> InstanceMetrics:
        """Every tenant's totals for GET /metrics (app/db/metrics_queries.py: a few statements, incremental)."""
        return self._instance_metrics.read(now)

    # --- runs ---------------------------------------------------------------------------------------------------------
    def runs(self, ingestion_id: int, days: int | None = 30, limit: int = 500) -> list[RunRecord]:
        query = select(Run).where(col(Run.ingestion_id) == ingestion_id)
        if days:
            query = query.where(col(Run.created_at) >= datetime.now(UTC) - timedelta(days=days))
        with self.session() as s:
            rows = s.execute(query.order_by(col(Run.id).desc()).limit(limit)).scalars().all()
        return [record(RunRecord, r) for r in rows]

    def run(self, ingestion_id: int, run_id: int) -> RunRecord:
        with self.session() as s:
            row = s.get(Run, run_id)
        if row is None or row.ingestion_id != ingestion_id:
            raise NotFound(f"Run {run_id} of ingestion {ingestion_id} does not exist.", "List the runs first.")
        return record(RunRecord, row)

    # --- file ledger --------------------------------------------------------------------------------------------------
    def files(
        self,
        ingestion_id: int,
        status: str | None = None,
        search: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        run_id: int | None = None,
    ) -> FilePage:
        where = [col(LedgerFile.ingestion_id) == ingestion_id]
        if status:
            where.append(col(LedgerFile.status) == status)
        if search:
            where.append(col(LedgerFile.path).contains(search))
        if run_id is not None:
            where.append(col(LedgerFile.run_id) == run_id)
        order = col(LedgerFile.path) if run_id is not None else col(LedgerFile.id)
        with self.session() as s:
            total = s.execute(select(func.count()).select_from(LedgerFile).where(*where)).scalar() or 0
            query = (
                select(LedgerFile, col(Run.number))
                .outerjoin(Run, col(Run.id) == col(LedgerFile.run_id))
                .where(*where)
                .order_by(order)
                .limit(limit)
                .offset(offset)
            )
            rows = s.execute(query).all()
            return FilePage(int(total), [record(FileRecord, row, run_number=number) for row, number in rows])

    # --- schema versions ----------------------------------------------------------------------------------------------
    def schema_versions(self, ingestion_id: int) -> list[SchemaVersionRecord]:
        query = select(SchemaVersion).where(col(SchemaVersion.ingestion_id) == ingestion_id)
        with self.session() as s:
            rows = s.execute(query.order_by(col(SchemaVersion.version))).scalars().all()
        return [record(SchemaVersionRecord, r) for r in rows]

    # --- table maintenance --------------------------------------------------------------------------------------------
    def maintenance(self, ingestion_id: int, limit: int = 10) -> tuple[MaintenanceConfig, list[MaintenanceRecord]]:
        """The ingestion's maintenance setting and its latest maintenances, newest first."""
        query = (
            select(MaintenanceRun)
            .where(col(MaintenanceRun.ingestion_id) == ingestion_id)
            .order_by(col(MaintenanceRun.created_at).desc(), col(MaintenanceRun.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            stored = s.execute(select(col(IngestionRow.maintenance)).where(col(IngestionRow.id) == ingestion_id))
            config = config_of(stored.scalar())
            return config, [record(MaintenanceRecord, r) for r in s.execute(query).scalars()]

    def maintenance_run(self, ingestion_id: int, maintenance_id: int) -> MaintenanceRecord:
        with self.session() as s:
            row = s.get(MaintenanceRun, maintenance_id)
        if row is None or row.ingestion_id != ingestion_id:
            raise NotFound(
                f"Table maintenance {maintenance_id} of ingestion {ingestion_id} does not exist.",
                f"List them with GET /api/v1/ingestions/{ingestion_id}/maintenance.",
            )
        return record(MaintenanceRecord, row)

    # --- notifications ------------------------------------------------------------------------------------------------
    def notifications(
        self, tenant_id: int, unread_only: bool = False, limit: int = 100, owner: int | None = None
    ) -> list[NotificationRecord]:
        query = (
            select(Notification)
            .where(col(Notification.tenant_id) == tenant_id, *notifications_of(owner))
            .order_by(col(Notification.id).desc())
            .limit(limit)
        )
        if unread_only:
            query = query.where(col(Notification.read_at).is_(None))
        with self.session() as s:
            return [record(NotificationRecord, n) for n in s.execute(query).scalars()]

    def unread_count(self, tenant_id: int, owner: int | None = None) -> int:
        query = (
            select(func.count())
            .select_from(Notification)
            .where(
                col(Notification.tenant_id) == tenant_id, col(Notification.read_at).is_(None), *notifications_of(owner)
            )
        )
        with self.session() as s:
            return int(s.execute(query).scalar() or 0)

    def open_alerts(self, ingestion_id: int, limit: int = 20) -> list[NotificationRecord]:
        """This ingestion's notifications whose condition has not cleared, newest first."""
        query = (
            select(Notification)
            .where(col(Notification.ingestion_id) == ingestion_id, col(Notification.cleared_at).is_(None))
            .order_by(col(Notification.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            return [record(NotificationRecord, n) for n in s.execute(query).scalars()]

    # --- clusters and audit -------------------------------------------------------------------------------------------
    def clusters(self, tenant_id: int) -> list[ClusterPublic]:
        query = select(Cluster).where(col(Cluster.tenant_id) == tenant_id).order_by(col(Cluster.name))
        with self.session() as s:
            rows = s.execute(query).scalars().all()
        return [cluster_public(r) for r in rows]

    def cluster(self, cluster_id: int, tenant_id: int) -> ClusterPublic:
        with self.session() as s:
            row = s.get(Cluster, cluster_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"Cluster {cluster_id} does not exist.", "List clusters with GET /api/v1/clusters.")
        return cluster_public(row)

    def audit(self, tenant_id: int, limit: int = 200) -> list[AuditRecord]:
        query = (
            select(AuditEntry)
            .where(col(AuditEntry.tenant_id) == tenant_id)
            .order_by(col(AuditEntry.id).desc())
            .limit(limit)
        )
        with self.session() as s:
            return [record(AuditRecord, a) for a in s.execute(query).scalars()]
