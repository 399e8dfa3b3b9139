"""The in-process scheduler (APScheduler 3): fires scheduled and continuous ingestions, catches up missed fires
once, and lends its clock to the runner (retries) and to periodic checks. It only fires: what a run does after
that belongs to `app/runner.py`.

The metadata DB is the source of truth. Each fire is keyed by its slot (the trigger's fire time): the run row's
unique (ingestion, slot) makes every fire run once even with several replicas on one PostgreSQL database, each
running this same scheduler. A SQLite deployment is single-replica.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from app.db.repository import SqlStore
from core.domain import Ingestion
from core.schedule import last_fire_time, trigger_for

log = logging.getLogger(__name__)

CRON_LOOKBACK = timedelta(minutes=10)
MAINTENANCE_CHECK_SECONDS = 60.0
Submit = Callable[[int, int], None]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _job_id(ingestion_id: int) -> str:
    return f"ingestion-{ingestion_id}"


class Scheduler:
    def __init__(self, store: SqlStore, submit: Submit, refresh_seconds: float = 15.0):
        self.store = store
        self.submit = submit
        self.refresh_seconds = refresh_seconds
        self.known: dict[int, datetime] = {}
        self.started = False
        self.refresh_failing_since: datetime | None = None
        self.refresh_error: str | None = None
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    # --- life cycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Rebuild every job from the DB and fire one catch-up run per ingestion that missed fires."""
        self.scheduler.start()
        self.started = True
        for ingestion in self.store.list_ingestions():
            if ingestion.status.loads:
                self.sync(ingestion, catch_up=True)
        self.known = self.store.ingestion_versions()
        self.every(self.refresh_seconds, "refresh", self.refresh_safely)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # --- the clock it lends -------------------------------------------------------------------------------------------
    def at(self, when: datetime, job_id: str, function: Callable[..., Any], *args: Any) -> None:
        """Call `function(*args)` once at `when` (replacing a job of the same id)."""
        self.scheduler.add_job(function, DateTrigger(when), args=list(args), id=job_id, replace_existing=True)

    def every(self, seconds: float, job_id: str, function: Callable[[], Any]) -> None:
        """Call `function()` every `seconds`; a call that fails (the metadata DB is down) is logged in one line and
        the job simply runs again at its next time."""

        def guarded() -> None:
            try:
                function()
            except Exception as exc:
                log.warning(
                    "%s failed (%s: %s); tried again in %g s", job_id, type(exc).__name__, _first_line(exc), seconds
                )

        self.scheduler.add_job(guarded, "interval", seconds=seconds, id=job_id, replace_existing=True)

    def maintain(self, check_due: Callable[[], Any], seconds: float = MAINTENANCE_CHECK_SECONDS) -> None:
        """Table maintenance: every `seconds`, `check_due` starts the maintenances that are due. Their schedule is a
        slot computed from each ingestion's setting (core/maintenance.py), so a periodic check is enough: it runs each
        slot once across replicas and catches up one missed slot after a stop, without a job per ingestion."""
        self.every(seconds, "table-maintenance", check_due)

    # --- ingestion jobs -----------------------------------------------------------------------------------------------
    def sync(self, ingestion: Ingestion, catch_up: bool = False) -> None:
        """Make the job match the ingestion: scheduled when it loads (active, or a review pending) and not manual,
        absent otherwise.
        Outside a running server (the CLI, a script) there is nothing to sync."""
        if not self.running:
            return
        trigger = trigger_for(ingestion.spec.schedule, ingestion.id) if ingestion.status.loads else None
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
            self.at(now, f"catch-up-{ingestion.id}", self._fire, ingestion.id, slot, "catch_up")
        self.store.set_next_fire(ingestion.id, trigger.get_next_fire_time(None, now))

    def refresh_safely(self) -> None:
        """The periodic refresh: a failure (the metadata DB is down) is logged and tried again next interval; the
        jobs already scheduled keep firing meanwhile."""
        try:
            self.refresh()
        except Exception as exc:
            if self.refresh_failing_since is None:
                self.refresh_failing_since = datetime.now(UTC)
            self.refresh_error = f"{type(exc).__name__}: {_first_line(exc)}"
            log.warning("schedule refresh failed (%s); retried in %.0f s", self.refresh_error, self.refresh_seconds)
        else:
            self.refresh_failing_since, self.refresh_error = None, None

    def health(self) -> tuple[bool, str]:
        """(healthy, why) for /health: not started in this process is fine (the CLI); stopped or a refresh
        failing for three intervals in a row is not."""
        if not self.started:
            return True, "not started in this process"
        if not self.running:
            return False, "the scheduler has stopped: restart the server"
        failing = self.refresh_failing_since
        if failing is not None and datetime.now(UTC) - failing > timedelta(seconds=3 * self.refresh_seconds):
            return False, f"refreshing schedules has failed since {failing.isoformat(timespec='seconds')}: " + (
                self.refresh_error or "unknown error"
            )
        return True, f"running, {len(self.scheduler.get_jobs())} job(s)"

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
        if not self.running:
            return
        if self.scheduler.get_job(_job_id(ingestion_id)) is not None:
            self.scheduler.remove_job(_job_id(ingestion_id))
        if persist:
            self.store.set_next_fire(ingestion_id, None)

    def _trigger(self, ingestion_id: int) -> BaseTrigger | None:
        job = self.scheduler.get_job(_job_id(ingestion_id))
        return None if job is None else job.trigger

    def _fire(self, ingestion_id: int, slot: datetime | None = None, trigger_name: str = "scheduled") -> None:
        """One fire: claim its slot (one replica wins), then hand the run to the runner. A fire that cannot reach
        the metadata DB is lost (logged); the job fires again at its next time."""
        try:
            self._claim_and_submit(ingestion_id, slot, trigger_name)
        except Exception as exc:
            log.warning("ingestion %s: fire skipped, %s: %s", ingestion_id, type(exc).__name__, _first_line(exc))

    def _claim_and_submit(self, ingestion_id: int, slot: datetime | None, trigger_name: str) -> None:
        now = datetime.now(UTC)
        trigger = self._trigger(ingestion_id)
        if trigger is None:
            return
        window = getattr(trigger, "interval", None)
        slot = slot or last_fire_time(trigger, now, 2 * window if window else CRON_LOOKBACK) or now
        self.store.set_next_fire(ingestion_id, trigger.get_next_fire_time(slot, now))
        run_id = self.store.create_scheduled_run(ingestion_id, slot, trigger_name)
        if run_id is not None:
            self.submit(ingestion_id, run_id)
