"""Application services: what the REST API, the console and the CLI call. Wires store, storage and engines."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from app.alerts import AlertService
from app.clusters import ClusterService
from app.db.database import make_engine, upgrade
from app.db.repository import NotificationStore, SqlStore
from app.scheduler import SchedulerService
from app.secrets_box import SecretBox
from app.settings import Settings
from core.alerts import AlertKind
from core.config import IngestionSpec
from core.domain import FileStatus, Ingestion, IngestionStatus, LedgerEntry, RunMetrics, RunOutcome, RunStatus
from core.engines.base import Engine
from core.engines.embedded import EmbeddedEngine
from core.errors import ConfigError, Conflict, RunInProgress
from core.formats import schema_from_json, schema_to_json
from core.pipeline import RunPipeline, owner_is_dead
from core.ports import ActiveRun
from core.preview import PreviewResult, preview
from core.schedule import next_fire_times
from core.schema import data_fields
from core.schema_resolution import ResolutionPlan, plan_resolution
from core.storage import open_storage

log = logging.getLogger(__name__)

LOCKED_PARTS = ("source", "format", "destination", "cluster_id")


@dataclass(slots=True)
class DailyPoint:
    day: str
    files: int
    records: int
    bytes: int
    runs: int
    failed: int


class Services:
    """One per process. Creating it applies pending migrations."""

    def __init__(self, settings: Settings):
        self.settings = settings
        url = settings.resolved_database_url
        upgrade(url)
        self.db = make_engine(url)
        self.store = SqlStore(self.db, SecretBox(settings.resolved_secret_key))
        self.embedded = EmbeddedEngine(settings.resolved_warehouse, settings.warehouse_storage_options)
        self.clusters = ClusterService(self.store, settings.data_dir)
        self.pipeline = RunPipeline(
            self.store,
            self.engine_for,
            open_storage,
            heartbeat_seconds=settings.heartbeat_seconds,
            stale_after=timedelta(seconds=settings.stale_run_seconds),
        )
        self.executor = ThreadPoolExecutor(max_workers=settings.run_workers, thread_name_prefix="run")
        self.futures: dict[int, Future[RunOutcome]] = {}
        self.scheduler: SchedulerService | None = None
        self.notifications = NotificationStore(self.db)
        self.alerts = AlertService(self.notifications, settings)

    def start(self) -> None:
        """Server start-up: close runs a stopped server left open, then start the scheduler."""
        closed = self.recover_orphans()
        if closed:
            log.warning("closed %d run(s) left open by a stopped server", closed)
        self.scheduler = SchedulerService(
            self,
            self.settings.retry_backoff_seconds,
            self.settings.schedule_refresh_seconds,
            self.settings.alert_check_seconds,
        )
        self.scheduler.start()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.clusters.close()
        self.db.dispose()

    def engine_for(self, ingestion: Ingestion) -> Engine:
        if ingestion.spec.cluster_id is not None:
            return self.clusters.engine(ingestion.spec.cluster_id)
        return self.embedded

    # --- ingestions ------------------------------------------------------------------------------------
    def create_ingestion(self, spec: IngestionSpec, activate: bool = False, actor: str = "api") -> Ingestion:
        self._check_cluster(spec)
        ingestion = self.store.create_ingestion(spec, IngestionStatus.DRAFT)
        self.store.audit("create", "ingestion", ingestion.id, actor, name=spec.name)
        if activate:
            ingestion = self.activate(ingestion.id, actor)
        return ingestion

    def next_run(self, ingestion: Ingestion) -> datetime | None:
        """When the ingestion fires next: from the live scheduler in the server, else from its trigger."""
        if ingestion.status != IngestionStatus.ACTIVE:
            return None
        if self.scheduler is not None:
            return self.scheduler.next_run(ingestion.id)
        upcoming = next_fire_times(ingestion.spec.schedule, 1)
        return upcoming[0] if upcoming else None

    def _sync_schedule(self, ingestion: Ingestion) -> None:
        """A change to status or schedule takes effect at once (no-op outside the server, e.g. the CLI)."""
        if self.scheduler is not None:
            self.scheduler.sync(ingestion)

    def _check_cluster(self, spec: IngestionSpec) -> None:
        """Saving needs the cluster to exist, not to be running (a local cluster starts on the first run)."""
        if spec.cluster_id is not None:
            self.clusters.get(spec.cluster_id)

    def engine_for_spec(self, spec: IngestionSpec) -> Engine:
        probe = Ingestion(id=0, uid="", name=spec.name, spec=spec, status=IngestionStatus.DRAFT)
        return self.engine_for(probe)

    def update_ingestion(self, ingestion_id: int, spec: IngestionSpec, actor: str = "api") -> Ingestion:
        current = self.store.get_ingestion(ingestion_id)
        self._check_cluster(spec)
        if current.status != IngestionStatus.DRAFT:
            old, new = current.spec.model_dump(), spec.model_dump()
            for part in LOCKED_PARTS:
                if self._comparable(part, old[part]) != self._comparable(part, new[part]):
                    raise Conflict(
                        f"'{part}' cannot change once an ingestion has been activated.",
                        "Create a new ingestion for a different source, format, target table or engine.",
                        field=part,
                    )
        updated = self.store.update_ingestion(ingestion_id, spec)
        self.store.audit("update", "ingestion", ingestion_id, actor, name=spec.name)
        self._sync_schedule(updated)
        return updated

    @staticmethod
    def _comparable(part: str, value: Any) -> Any:
        """Credentials may be rotated on an active ingestion; they do not lock."""
        if part != "source":
            return value
        return {k: v for k, v in value.items() if k != "credentials"}

    def delete_ingestion(self, ingestion_id: int, drop_table: bool = False, actor: str = "api") -> None:
        ingestion = self.store.get_ingestion(ingestion_id)
        active = self.store.active_run(ingestion_id)
        if active is not None and not owner_is_dead(active, self.pipeline.stale_after, datetime.now(UTC)):
            raise RunInProgress(
                f"Run {active.run_id} of '{ingestion.name}' is in progress.", "Wait for it to finish, then delete."
            )
        if drop_table:
            self.engine_for(ingestion).drop_table(ingestion.spec.destination)
        if self.scheduler is not None:
            self.scheduler.remove(ingestion_id)
        self.store.delete_ingestion(ingestion_id)
        self.store.audit("delete", "ingestion", ingestion_id, actor, name=ingestion.name, drop_table=drop_table)

    def activate(self, ingestion_id: int, actor: str = "api") -> Ingestion:
        ingestion = self.store.get_ingestion(ingestion_id)
        if ingestion.status == IngestionStatus.DRAFT and ingestion.spec.schedule.backfill.mode == "new_only":
            self._skip_existing_files(ingestion)
        return self._change_status(ingestion_id, IngestionStatus.ACTIVE, "activate", actor)

    def _change_status(self, ingestion_id: int, status: IngestionStatus, action: str, actor: str) -> Ingestion:
        """Set the status, audit it and make the schedule follow at once."""
        self.store.set_ingestion_status(ingestion_id, status)
        self.store.audit(action, "ingestion", ingestion_id, actor)
        changed = self.store.get_ingestion(ingestion_id)
        self._sync_schedule(changed)
        return changed

    def _skip_existing_files(self, ingestion: Ingestion) -> None:
        """Backfill 'new files only': what is there at activation is recorded as skipped, not loaded."""
        storage = open_storage(ingestion.spec.source)
        known = self.store.known_files(ingestion.id)
        entries = [
            LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.SKIPPED, error="existed before activation")
            for f in storage.list_files(ingestion.spec.source.file_pattern)
            if f.path not in known
        ]
        self.store.upsert_files(ingestion.id, None, entries)

    def pause(self, ingestion_id: int, actor: str = "api") -> Ingestion:
        return self._change_status(ingestion_id, IngestionStatus.PAUSED, "pause", actor)

    def resume(self, ingestion_id: int, actor: str = "api") -> Ingestion:
        ingestion = self.store.get_ingestion(ingestion_id)
        if ingestion.status != IngestionStatus.PAUSED:
            raise Conflict(f"'{ingestion.name}' is {ingestion.status}, not paused.", "Nothing to resume.")
        return self._change_status(ingestion_id, IngestionStatus.ACTIVE, "resume", actor)

    # --- runs ------------------------------------------------------------------------------------------
    def _check_runnable(self, ingestion: Ingestion) -> None:
        if ingestion.status == IngestionStatus.PAUSED:
            raise Conflict(f"'{ingestion.name}' is paused.", "Resume it first (POST …/resume), then run it.")
        if ingestion.status == IngestionStatus.DRAFT:
            raise Conflict(f"'{ingestion.name}' is a draft.", "Activate it first (POST …/activate), then run it.")
        if ingestion.status == IngestionStatus.NEEDS_REVIEW:
            raise Conflict(
                f"'{ingestion.name}' has a schema change waiting for review.",
                "Resolve it first (console: Review, or POST …/schema-versions/{version}/resolve); that resumes it.",
            )
        active = self.store.active_run(ingestion.id)
        if active is not None and not owner_is_dead(active, self.pipeline.stale_after, datetime.now(UTC)):
            raise RunInProgress(
                f"Run {active.run_id} of '{ingestion.name}' is still in progress.",
                "Wait for it to finish; its progress is on the run record.",
            )

    def trigger_run(self, ingestion_id: int, trigger: str = "manual", actor: str = "api") -> int:
        """Queue a run in the background and return its id at once."""
        ingestion = self.store.get_ingestion(ingestion_id)
        self._check_runnable(ingestion)
        run_id = self.store.create_run(ingestion_id, trigger)
        self.store.audit("run", "ingestion", ingestion_id, actor, run_id=run_id, trigger=trigger)
        self.submit_run(ingestion_id, run_id)
        return run_id

    def submit_run(self, ingestion_id: int, run_id: int) -> None:
        """Hand a queued run to the run workers; the scheduler sees the outcome (retries)."""
        self.futures[run_id] = self.executor.submit(self._execute, ingestion_id, run_id)
        self.futures[run_id].add_done_callback(lambda _: self.futures.pop(run_id, None))

    def wait_for_run(self, run_id: int, timeout: float = 300) -> None:
        """Block until a run submitted by this process has finished (returns at once if it already has)."""
        future = self.futures.get(run_id)
        if future is not None:
            future.result(timeout=timeout)

    def _execute(self, ingestion_id: int, run_id: int) -> RunOutcome:
        outcome = self.pipeline.execute(ingestion_id, run_id)
        will_retry = self.scheduler.after_run(outcome) if self.scheduler is not None else False
        self._alert(ingestion_id, outcome, will_retry)
        return outcome

    def _alert(self, ingestion_id: int, outcome: RunOutcome, will_retry: bool) -> None:
        try:
            self.alerts.on_run(self.store.get_ingestion(ingestion_id), outcome, will_retry)
        except Exception:  # alerting must never turn a finished run into a crash
            log.exception("alerting for run %s failed", outcome.run_id)

    def run_now(self, id_or_name: str, trigger: str = "cli") -> RunOutcome:
        """Run in this thread until the run ends (the CLI)."""
        ingestion = self.store.find_ingestion(id_or_name)
        self._check_runnable(ingestion)
        run_id = self.store.create_run(ingestion.id, trigger)
        self.store.audit("run", "ingestion", ingestion.id, "cli", run_id=run_id, trigger=trigger)
        outcome = self.pipeline.execute(ingestion.id, run_id)
        self._alert(ingestion.id, outcome, will_retry=False)
        return outcome

    def reprocess(
        self,
        ingestion_id: int,
        paths: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str = "api",
    ) -> tuple[int, int]:
        """Load a selection of files again (by path or modification range): returns (files, run id)."""
        if paths is None and since is None and until is None:
            raise ConfigError(
                "Reprocessing needs a selection.", "Give file paths, or a modified since/until range.", field="paths"
            )
        ingestion = self.store.get_ingestion(ingestion_id)
        self._check_runnable(ingestion)
        count = self.store.forget_files(ingestion_id, paths, since, until)
        self.store.audit(
            "reprocess",
            "ingestion",
            ingestion_id,
            actor,
            files=count,
            paths=paths,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
        )
        return count, self.trigger_run(ingestion_id, "backfill", actor)

    def retry_run(self, ingestion_id: int, run_id: int, actor: str = "api") -> int:
        run = self.store.get_run(ingestion_id, run_id)
        if run.status not in (RunStatus.FAILED.value, RunStatus.PARTIAL.value, RunStatus.CANCELLED.value):
            raise Conflict(f"Run {run_id} is {run.status}; only failed runs can be retried.", "Pick a failed run.")
        return self.trigger_run(ingestion_id, "retry", actor)

    def recover_orphans(self) -> int:
        """At start-up: runs left queued/running by a dead process are closed so they do not show as live."""
        closed = 0
        now = datetime.now(UTC)
        for run in self.store.orphaned_runs():
            active = ActiveRun(run.id or 0, run.owner, run.heartbeat_at)
            if run.owner is None or owner_is_dead(active, self.pipeline.stale_after, now):
                status = RunStatus.CANCELLED if run.status == RunStatus.QUEUED.value else RunStatus.FAILED
                message = "The server stopped before this run finished; the next run reconciles the table and ledger."
                self.store.finish_run(
                    run.id or 0, status, RunMetrics(**run.metrics) if run.metrics else RunMetrics(), [], message
                )
                self.store.release_run_slot(run.ingestion_id, run.id or 0)
                closed += 1
        return closed

    # --- schema review ----------------------------------------------------------------------------------------
    def plan_schema_resolution(
        self,
        ingestion_id: int,
        version: int,
        resolution: str,
        default_values: dict[str, Any] | None = None,
        table: str | None = None,
    ) -> ResolutionPlan:
        """What a resolution will run, shown before it is applied."""
        ingestion = self.store.get_ingestion(ingestion_id)
        pending = self.store.get_schema_version(ingestion_id, version)
        if pending.status != "pending":
            raise Conflict(
                f"Schema version {version} is already {pending.status}.", "List the schema history for the current one."
            )
        return plan_resolution(
            resolution, ingestion.spec.destination.full_name, pending.columns, pending.changes, default_values, table
        )

    def resolve_schema(
        self,
        ingestion_id: int,
        version: int,
        resolution: str,
        default_values: dict[str, Any] | None = None,
        table: str | None = None,
        actor: str = "api",
    ) -> tuple[ResolutionPlan, int | None]:
        """Apply a decision on a pending schema change; every choice but review_later resumes the
        ingestion and loads the held files at once. Returns the plan and the run id."""
        plan = self.plan_schema_resolution(ingestion_id, version, resolution, default_values, table)
        audit = {"version": version, "resolution": resolution, "statements": plan.statements}
        if resolution == "review_later":
            self.store.audit("schema_review_later", "ingestion", ingestion_id, actor, **audit)
            return plan, None
        ingestion = self.store.get_ingestion(ingestion_id)
        pending = self.store.get_schema_version(ingestion_id, version)
        proposed = schema_from_json(pending.columns)
        destination = ingestion.spec.destination
        engine = self.engine_for(ingestion)
        spec = ingestion.spec
        if resolution in ("auto_merge", "backfill_default"):
            engine.add_columns(destination, [proposed.field(c["column"]) for c in plan.added])
            if plan.widened:
                engine.widen_columns(destination, [proposed.field(c["column"]) for c in plan.widened])
            for change in plan.added if resolution == "backfill_default" else []:
                engine.fill_column(destination, change["column"], (default_values or {})[change["column"]])
        elif resolution == "new_table":
            assert plan.new_table is not None
            moved = destination.model_copy(update={"table": plan.new_table.rsplit(".", 1)[1]})
            if engine.table_schema(moved) is not None:
                raise Conflict(f"Table {moved.full_name} already exists.", "Give another table name.", field="table")
            spec = spec.model_copy(update={"destination": moved})
        elif resolution == "ignore":
            settings = spec.format.schema_.model_copy(
                update={"ignored_columns": sorted({*spec.format.schema_.ignored_columns, *plan.ignored})}
            )
            spec = spec.model_copy(update={"format": spec.format.model_copy(update={"schema_": settings})})
        if spec is not ingestion.spec:
            self.store.update_ingestion(ingestion_id, spec)
        current = engine.table_schema(spec.destination)
        columns = schema_to_json(pa.schema(data_fields(current))) if current is not None else pending.columns
        self.store.resolve_schema_version(ingestion_id, version, resolution, actor, columns)
        released = self.store.release_held_files(ingestion_id)
        self.notifications.clear(ingestion_id, AlertKind.SCHEMA_PENDING.value)
        self.store.audit("schema_resolve", "ingestion", ingestion_id, actor, released_files=released, **audit)
        self._change_status(ingestion_id, IngestionStatus.ACTIVE, "resume", actor)
        return plan, self.trigger_run(ingestion_id, "manual", actor)

    # --- preview and metrics ------------------------------------------------------------------------------
    def test_configuration(self, spec: IngestionSpec) -> PreviewResult:
        return preview(spec, open_storage(spec.source), self.engine_for_spec(spec))

    def metrics(self, ingestion_id: int, days: int = 7) -> dict[str, Any]:
        self.store.get_ingestion(ingestion_id)
        today = datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        runs = self.store.run_metrics_since(ingestion_id, datetime.combine(first, datetime.min.time(), UTC))
        series = {
            (first + timedelta(days=i)).isoformat(): DailyPoint((first + timedelta(days=i)).isoformat(), 0, 0, 0, 0, 0)
            for i in range(days)
        }
        durations = []
        for run in runs:
            point = series.get(run.created_at.date().isoformat())
            if point is None:
                continue
            point.runs += 1
            point.files += int(run.metrics.get("files_processed", 0))
            point.records += int(run.metrics.get("records_ingested", 0))
            point.bytes += int(run.metrics.get("bytes_read", 0))
            if run.status == RunStatus.FAILED.value:
                point.failed += 1
            if run.status in (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value):
                durations.append(float(run.metrics.get("duration_seconds", 0.0)))
        daily = list(series.values())
        return {
            "days": days,
            "files_processed": sum(p.files for p in daily),
            "records_ingested": sum(p.records for p in daily),
            "bytes_read": sum(p.bytes for p in daily),
            "runs": sum(p.runs for p in daily),
            "failed_runs": sum(p.failed for p in daily),
            "average_duration_seconds": round(sum(durations) / len(durations), 3) if durations else None,
            "daily": [_point(p) for p in daily],
        }


def _point(p: DailyPoint) -> dict[str, Any]:
    return {"day": p.day, "files": p.files, "records": p.records, "bytes": p.bytes, "runs": p.runs, "failed": p.failed}
