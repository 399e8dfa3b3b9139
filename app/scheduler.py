"""The in-process scheduler (APScheduler 3): fires scheduled and continuous ingestions, catches up
missed fires once, and retries transient failures with backoff.

The metadata DB is the source of truth. Each fire is keyed by its slot (the trigger's fire time):
the run row's unique (ingestion, slot) makes every fire run once even with several replicas on one
PostgreSQL database, each running this same scheduler. A SQLite deployment is single-replica.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from core.domain import Ingestion, IngestionStatus, RunMetrics, RunOutcome, RunStatus
from core.schedule import last_fire_time, trigger_for

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger(__name__)

CRON_LOOKBACK = timedelta(minutes=10)


def _job_id(ingestion_id: int) -> str:
    return f"ingestion-{ingestion_id}"


class SchedulerService:
    def __init__(
        self,
        services: Services,
        retry_backoff_seconds: list[float],
        refresh_seconds: float = 15.0,
        alert_check_seconds: float = 60.0,
    ):
        self.services = services
        self.store = services.store
        self.retry_backoff = retry_backoff_seconds
        self.refresh_seconds = refresh_seconds
        self.alert_check_seconds = alert_check_seconds
        self.known: dict[int, datetime] = {}
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # --- life cycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Rebuild every job from the DB, fire one catch-up run per ingestion that missed fires, re-arm retries."""
        self.scheduler.start()
        for ingestion in self.store.list_ingestions(status=IngestionStatus.ACTIVE.value):
            self.sync(ingestion, catch_up=True)
        self.known = self.store.ingestion_versions()
        self.scheduler.add_job(self.refresh, "interval", seconds=self.refresh_seconds, id="refresh")
        self.scheduler.add_job(self.check_alerts, "interval", seconds=self.alert_check_seconds, id="alert-checks")

    def check_alerts(self) -> None:
        self.services.alerts.check(self.store.list_ingestions(status=IngestionStatus.ACTIVE.value))
        for run in self.store.pending_retries():
            if run.id is not None and run.not_before is not None:
                self._arm_retry(run.id, run.not_before)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # --- jobs -------------------------------------------------------------------------------------------
    def sync(self, ingestion: Ingestion, catch_up: bool = False) -> None:
        """Make the job match the ingestion: scheduled when active and not manual, absent otherwise."""
        trigger = trigger_for(ingestion.spec.schedule) if ingestion.status == IngestionStatus.ACTIVE else None
        if trigger is None:
            self.remove(ingestion.id)
            return
        now = datetime.now(UTC)
        missed = self.store.next_fire(ingestion.id) if catch_up else None
        self.scheduler.add_job(
            self._fire, trigger, id=_job_id(ingestion.id), args=[ingestion.id], replace_existing=True
        )
        if missed is not None and missed < now:
            slot = last_fire_time(trigger, now, now - missed + timedelta(seconds=1)) or missed
            log.info("ingestion %s missed fires since %s: one catch-up run for slot %s", ingestion.id, missed, slot)
            catch_up_job = f"catch-up-{ingestion.id}"
            self.scheduler.add_job(
                self._fire,
                DateTrigger(now),
                args=[ingestion.id, slot, "catch_up"],
                id=catch_up_job,
                replace_existing=True,
            )
        self.store.set_next_fire(ingestion.id, trigger.get_next_fire_time(None, now))

    def refresh(self) -> None:
        """Pick up changes made through another replica (or the CLI): one light query of update times."""
        versions = self.store.ingestion_versions()
        for ingestion_id, updated in versions.items():
            if self.known.get(ingestion_id) != updated:
                self.sync(self.store.get_ingestion(ingestion_id))
        for ingestion_id in self.known.keys() - versions.keys():
            self.remove(ingestion_id, persist=False)
        self.known = versions

    def remove(self, ingestion_id: int, persist: bool = True) -> None:
        if self.scheduler.get_job(_job_id(ingestion_id)) is not None:
            self.scheduler.remove_job(_job_id(ingestion_id))
        if persist:
            self.store.set_next_fire(ingestion_id, None)

    def next_run(self, ingestion_id: int) -> datetime | None:
        job = self.scheduler.get_job(_job_id(ingestion_id))
        return None if job is None else job.next_run_time

    def _trigger(self, ingestion_id: int) -> BaseTrigger | None:
        job = self.scheduler.get_job(_job_id(ingestion_id))
        return None if job is None else job.trigger

    def _fire(self, ingestion_id: int, slot: datetime | None = None, trigger_name: str = "scheduled") -> None:
        """One fire: claim its slot (one replica wins), then hand the run to the run workers."""
        now = datetime.now(UTC)
        trigger = self._trigger(ingestion_id)
        if trigger is None:
            return
        window = getattr(trigger, "interval", None)
        slot = slot or last_fire_time(trigger, now, 2 * window if window else CRON_LOOKBACK) or now
        self.store.set_next_fire(ingestion_id, trigger.get_next_fire_time(slot, now))
        run_id = self.store.create_scheduled_run(ingestion_id, slot, trigger_name)
        if run_id is None:
            return
        self.services.submit_run(ingestion_id, run_id)

    # --- retries ------------------------------------------------------------------------------------------
    def after_run(self, outcome: RunOutcome) -> bool:
        """Queue a retry of a transient failure, after 1, 5, 15 minutes by default (settings).

        Returns whether a retry is coming (alerts wait for the last attempt).
        """
        if outcome.status != RunStatus.FAILED or not outcome.transient:
            return False
        attempt = self.store.run_attempt(outcome.run_id)
        if attempt > len(self.retry_backoff):
            return False
        not_before = datetime.now(UTC) + timedelta(seconds=self.retry_backoff[attempt - 1])
        retry_id = self.store.create_retry_run(outcome.run_id, not_before)
        if retry_id is not None:
            self._arm_retry(retry_id, not_before)
        return True

    def _arm_retry(self, run_id: int, not_before: datetime) -> None:
        self.scheduler.add_job(
            self._start_retry, DateTrigger(not_before), args=[run_id], id=f"retry-{run_id}", replace_existing=True
        )

    def _start_retry(self, run_id: int) -> None:
        run = self.store.get_run_by_id(run_id)
        if run is None or run.status != RunStatus.QUEUED.value:
            return
        ingestion = self.store.get_ingestion(run.ingestion_id)
        if ingestion.status != IngestionStatus.ACTIVE:
            message = f"Retry not started: the ingestion is {ingestion.status.value}."
            self.store.finish_run(run_id, RunStatus.CANCELLED, RunMetrics(), [], message)
            return
        if self.store.take_queued_retry(run_id):
            self.services.submit_run(run.ingestion_id, run_id)
