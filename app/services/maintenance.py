"""Table maintenance on request (API, console) and on schedule (the scheduler's periodic check): compact the table,
then vacuum it, recorded with the files before and after.

A maintenance holds the ingestion's run slot for its whole life (core.ports.maintenance_slot): a run that starts
meanwhile is skipped, as a second run would be, and a maintenance never starts while a run holds it. So a compaction
never races a batch commit, and a vacuum never sees the files of a batch written but not yet committed. Like a run,
it beats a heartbeat and is known to this process (LIVE_RUNS), so no one takes its slot for a dead one's; one left
by a dead process is settled as failed by the periodic check.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from app.db.repository import SqlStore
from app.services.engines import Engines
from app.workers import drain
from core.access import SYSTEM, Principal, require_owner
from core.domain import Ingestion, IngestionStatus
from core.errors import AutoloaderError, Conflict, RunInProgress
from core.live_runs import LIVE_RUNS
from core.maintenance import (
    SAFE_RETENTION_HOURS,
    MaintenanceConfig,
    MaintenanceStatus,
    check_retention,
    due_slot,
)
from core.pipeline import owner_is_dead, process_owner
from core.ports import ActiveRun, maintenance_slot

log = logging.getLogger(__name__)

INTERRUPTED = {
    "kind": "interrupted",
    "message": "The process running this maintenance stopped before it finished.",
    "action": "Nothing to do: an interrupted compaction or vacuum leaves the table as it was or complete; the next "
    "maintenance goes on.",
}


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, AutoloaderError):
        return {"kind": exc.code, "message": exc.message, "action": exc.action, "detail": exc.detail}
    text = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
    return {
        "kind": "error",
        "message": f"{type(exc).__name__}: {text}",
        "action": "Check the server log; the table is unchanged or compacted, never half-written.",
        "detail": repr(exc)[:2000],
    }


class MaintenanceService:
    def __init__(
        self,
        store: SqlStore,
        engines: Engines,
        stale_after: timedelta,
        heartbeat_seconds: float,
        allow_short_retention: bool,
    ):
        self.store = store
        self.engines = engines
        self.stale_after = stale_after
        self.heartbeat_seconds = heartbeat_seconds
        self.allow_short_retention = allow_short_retention
        self.owner = process_owner()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maintenance")
        """Maintenances on request; scheduled ones run on the periodic check's own thread."""
        self.futures: dict[int, Future[None]] = {}
        self._due_lock = threading.Lock()

    # --- the setting --------------------------------------------------------------------------------------------------
    def configure(self, ingestion_id: int, config: MaintenanceConfig, who: Principal = SYSTEM) -> MaintenanceConfig:
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "change table maintenance")
        check_retention(config.vacuum_retention_hours, self.allow_short_retention)
        self.store.set_maintenance_config(ingestion_id, config)
        self.store.audit(
            "maintenance_settings",
            "ingestion",
            ingestion_id,
            who.actor,
            who.tenant_id,
            **config.model_dump(mode="json"),
        )
        return config

    # --- starting one -------------------------------------------------------------------------------------------------
    def start(self, ingestion_id: int, who: Principal = SYSTEM) -> int:
        """Compact and vacuum now, in the background; returns the maintenance's id at once. Refused while a run (or
        another maintenance) of the ingestion is in progress."""
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "maintain tables")
        if ingestion.status == IngestionStatus.DRAFT:
            raise Conflict(
                f"'{ingestion.name}' is a draft: it has no table to maintain yet.",
                "Activate it and let a run create the table first.",
            )
        begun = self._begin(ingestion, "manual")
        assert begun is not None  # only a scheduled slot can be taken by another replica
        maintenance_id = begun[0]
        self.store.audit("maintenance", "ingestion", ingestion_id, who.actor, who.tenant_id, id=maintenance_id)
        future = self.executor.submit(self._execute, ingestion, *begun)
        self.futures[maintenance_id] = future
        future.add_done_callback(lambda _: self.futures.pop(maintenance_id, None))
        return maintenance_id

    def check_due(self) -> None:
        """The scheduler's periodic job: returns at once; the due maintenances run one after the other on a thread
        of their own (one at a time per process: a check that finds the previous one still working does nothing)."""
        if not self._due_lock.acquire(blocking=False):
            return
        thread = threading.Thread(target=self._run_due_and_release, daemon=True, name="maintenance-due")
        try:
            thread.start()
        except BaseException:
            self._due_lock.release()
            raise

    def _run_due_and_release(self) -> None:
        try:
            self.run_due()
        except Exception as exc:  # the metadata DB is down: the next check tries again
            log.warning("table maintenance check failed (%s: %s)", type(exc).__name__, str(exc).strip()[:300])
        finally:
            self._due_lock.release()

    def run_due(self, now: datetime | None = None) -> list[int]:
        """Settle maintenances dead processes left, then run every scheduled maintenance that is due (one per slot
        across replicas), one after the other, in this thread: each holds its ingestion's run slot only while it
        works. An ingestion whose run is in progress is tried again at the next check."""
        self.settle_stale()
        now = now or datetime.now(UTC)
        last = self.store.last_maintenance_slots()
        done = []
        for ingestion_id, status, config in self.store.maintained_ingestions():
            slot = due_slot(config, last.get(ingestion_id), now)
            if slot is None or not IngestionStatus(status).loads:
                continue
            try:
                ingestion = self.store.get_ingestion(ingestion_id)
                begun = self._begin(ingestion, "scheduled", slot)
            except AutoloaderError as exc:
                log.info("ingestion %s: scheduled table maintenance not started: %s", ingestion_id, exc.message)
                continue
            if begun is not None:
                self._execute(ingestion, *begun)
                done.append(begun[0])
        return done

    def _begin(self, ingestion: Ingestion, trigger: str, slot: datetime | None = None) -> tuple[int, int] | None:
        """Record the maintenance and take the run slot: (maintenance id, retention hours), or None when another
        replica has taken this schedule slot. Raises RunInProgress (and forgets the record) when the run slot is
        busy, ConfigError (recorded) for a retention the server no longer allows."""
        retention = self.store.maintenance_config(ingestion.id).vacuum_retention_hours
        maintenance_id = self.store.create_maintenance(ingestion.id, trigger, retention, self.owner, slot)
        if maintenance_id is None:
            return None
        try:
            check_retention(retention, self.allow_short_retention)
        except AutoloaderError as exc:  # stored while allowed, refused now: said on the record
            self.store.finish_maintenance(maintenance_id, MaintenanceStatus.FAILED, exc.message, errors=[_error(exc)])
            raise
        LIVE_RUNS.add(maintenance_slot(maintenance_id))
        if not self.store.claim_run_slot(ingestion.id, maintenance_slot(maintenance_id)):
            LIVE_RUNS.discard(maintenance_slot(maintenance_id))
            self.store.delete_maintenance(maintenance_id)  # nothing happened: no record, and its slot is free again
            active = self.store.active_run(ingestion.id)
            holder = active.label.capitalize() if active is not None else "Another run"
            raise RunInProgress(
                f"{holder} of '{ingestion.name}' is in progress: the table is not maintained while it runs.",
                "Try again once it has finished (a scheduled maintenance tries again every minute).",
            )
        return maintenance_id, retention

    def wait(self, maintenance_id: int, timeout: float = 300) -> None:
        """Block until a maintenance requested in this process has finished."""
        future = self.futures.get(maintenance_id)
        if future is not None:
            future.result(timeout=timeout)

    # --- doing it -----------------------------------------------------------------------------------------------------
    def _execute(self, ingestion: Ingestion, maintenance_id: int, retention: int) -> None:
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(maintenance_id, stop), daemon=True, name=f"maintenance-beat-{maintenance_id}"
        )
        beat.start()
        try:
            self._maintain(ingestion, maintenance_id, retention)
        except Exception as exc:
            log.exception("table maintenance %s of ingestion %s failed", maintenance_id, ingestion.id)
            try:
                self.store.finish_maintenance(maintenance_id, MaintenanceStatus.FAILED, "Failed.", errors=[_error(exc)])
            except Exception:  # the metadata DB is down: the periodic check settles the record
                log.error("maintenance %s: its end could not be recorded", maintenance_id)
        finally:
            stop.set()
            try:
                self.store.release_run_slot(ingestion.id, maintenance_slot(maintenance_id))
            except Exception:  # the metadata DB is down: the slot is taken over once the heartbeat is stale
                log.error("maintenance %s could not release the run slot", maintenance_id)
            LIVE_RUNS.discard(maintenance_slot(maintenance_id))

    def _maintain(self, ingestion: Ingestion, maintenance_id: int, retention: int) -> None:
        destination = ingestion.spec.destination
        try:
            engine = self.engines.for_ingestion(ingestion)
            if engine.table_schema(destination) is None:
                message = f"Nothing to maintain: table {destination.full_name} does not exist yet (a run creates it)."
                self.store.finish_maintenance(maintenance_id, MaintenanceStatus.SKIPPED, message)
                return
            compacted = engine.compact(destination)
            self.store.record_compaction(maintenance_id, compacted)
            # The format's own floor (Delta: 7 days) is lifted only for a retention under it that the server allows.
            lift_floor = self.allow_short_retention and retention < SAFE_RETENTION_HOURS
            removed = engine.vacuum(destination, retention, allow_short=lift_floor)
        except AutoloaderError as exc:
            self.store.finish_maintenance(maintenance_id, MaintenanceStatus.FAILED, exc.message, errors=[_error(exc)])
            return
        message = (
            f"Compacted {compacted.files_before:,} data files into {compacted.files_after:,}; vacuum deleted "
            f"{removed:,} files no version of the last {retention} h needs."
        )
        self.store.finish_maintenance(maintenance_id, MaintenanceStatus.SUCCESS, message, files_removed=removed)

    def _heartbeat(self, maintenance_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                self.store.heartbeat_maintenance(maintenance_id)
            except Exception as exc:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat of maintenance %s failed: %s", maintenance_id, type(exc).__name__)

    # --- maintenances dead processes left ---------------------------------------------------------------------------
    def settle_stale(self, now: datetime | None = None) -> int:
        """End as failed every maintenance marked running whose process is gone or whose heartbeat is stale, and free
        the run slot it may still hold. A maintenance of this process is alive while it executes (LIVE_RUNS); one just
        created is given two heartbeats before the registry is asked."""
        now = now or datetime.now(UTC)
        young = timedelta(seconds=2 * self.heartbeat_seconds)
        settled = 0
        for row in self.store.running_maintenances():
            assert row.id is not None
            holder = ActiveRun(maintenance_slot(row.id), row.owner, row.heartbeat_at)
            if row.heartbeat_at is not None and now - row.heartbeat_at < young:
                continue
            if not owner_is_dead(holder, self.stale_after, now):
                continue
            if self.store.settle_maintenance(row.id, "Interrupted.", INTERRUPTED):
                settled += 1
                log.warning("table maintenance %s of ingestion %s was interrupted", row.id, row.ingestion_id)
            self.store.release_run_slot(row.ingestion_id, maintenance_slot(row.id))
        return settled

    def close(self) -> None:
        """Start no more maintenance and wait a while for the one running (app/workers.py); one cut short is settled
        at the next start (`settle_stale`)."""
        drain(self.executor, self.futures.values(), "table maintenance")
