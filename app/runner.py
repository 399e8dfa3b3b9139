"""The one owner of a run's life: submit it to a worker, execute the pipeline, decide on a retry, tell the listeners
(alerts) how it ended, and close runs a stopped server left open.

The scheduler only fires (it claims a slot and calls `submit`); it also lends the runner its clock so that a retry
starts at its time. Nothing calls back into the scheduler, so the flow of a run goes one way:
fire → Runner.submit → worker → RunPipeline.execute → Runner._finished (retry? listeners).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError

from app.db.repository import SqlStore
from app.logging_setup import run_log_context
from app.workers import DRAIN_SECONDS, drain
from core.domain import Ingestion, IngestionStatus, RunError, RunMetrics, RunOutcome, RunStatus, RunTrigger
from core.errors import MetadataUnavailable
from core.pipeline import RunPipeline, interrupted, why_dead
from core.ports import ActiveRun

log = logging.getLogger(__name__)

RunListener = Callable[[Ingestion, RunOutcome, bool], None]
"""Called after every run with (ingestion, outcome, whether a retry is coming)."""

ORPHAN_MESSAGE = "The server stopped before this run finished; the next run reconciles the table and ledger."
INTERRUPTED = RunError(
    kind="interrupted",
    message="The run stopped before it finished: its process died, or it lost the metadata database for longer "
    "than the stale-run window.",
    action="Nothing to do: the next run reconciles the table and the file ledger.",
)

NOT_STARTED = RunError(
    kind="metadata_unavailable",
    message="The run could not start: the metadata database was unreachable.",
    action="Nothing to do: the ingestion's next run loads the files once the database is back.",
)


def _log_end(outcome: RunOutcome) -> None:
    m = outcome.metrics
    log.info(
        "run %s ended %s: %s file(s), %s record(s), %s bytes read, %s written, in %.3f s",
        outcome.run_id,
        outcome.status.value,
        m.files_processed,
        m.records_ingested,
        m.bytes_read,
        m.bytes_written,
        m.duration_seconds,
    )


NO_NEW_FILES = "No new files."
"""The pipeline's message for a run that found nothing to load and nothing else to report."""
CHECK_TRIGGERS = (RunTrigger.SCHEDULED.value,)
"""The fires that are a continuous ingestion's checks. A catch-up run (one per restart) stays a run: it says the
server was down."""


def empty_check(mode: str, trigger: str, outcome: RunOutcome, previous_message: str | None = None) -> bool | None:
    """Whether a continuous ingestion's fire is an empty check, folded into the ingestion's count instead of kept
    as a run: True (counted) when it found no new file, failed nothing and had nothing to note, or noted exactly
    what the ingestion's last stored run said (`previous_message`: a file left out on every listing, say, is
    reported once, not every few seconds); False (dropped, not counted) when it was skipped because a run of the
    ingestion was still going; None (kept as a run) otherwise. Manual runs, retries, catch-up runs and scheduled
    (non-continuous) ingestions keep their run."""
    if mode != "continuous" or trigger not in CHECK_TRIGGERS:
        return None
    if outcome.status == RunStatus.SKIPPED:
        return False
    metrics = outcome.metrics
    message = outcome.message.strip()
    said_before = message.startswith(NO_NEW_FILES) and message == (previous_message or "").strip()
    quiet = not outcome.errors and not outcome.schema_pending and (message == NO_NEW_FILES or said_before)
    untouched = metrics.files_processed == 0 and metrics.files_quarantined == 0
    return True if outcome.status == RunStatus.SUCCESS and quiet and untouched else None


class Clock(Protocol):
    """Calls a function once at a given time (the scheduler's timer in the server)."""

    def at(self, when: datetime, job_id: str, function: Callable[..., Any], *args: Any) -> None: ...


class Runner:
    def __init__(self, store: SqlStore, pipeline: RunPipeline, retry_backoff_seconds: list[float], workers: int):
        self.store = store
        self.pipeline = pipeline
        self.retry_backoff = retry_backoff_seconds
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self.futures: dict[int, Future[RunOutcome]] = {}
        self.listeners: list[RunListener] = []
        self.clock: Clock | None = None
        """Set when the server's scheduler runs; without one (the CLI) failed runs are not retried."""
        self.unstarted: set[int] = set()
        """Runs submitted here that could not start (metadata DB down): still `queued`, ended by the sweep."""

    # --- a run's life ----------------------------------------------------------------------------------------------
    def submit(self, ingestion_id: int, run_id: int) -> None:
        """Hand a queued run to the run workers."""
        self.futures[run_id] = self.executor.submit(self._execute, ingestion_id, run_id)
        self.futures[run_id].add_done_callback(lambda _: self.futures.pop(run_id, None))

    def wait(self, run_id: int, timeout: float = 300) -> None:
        """Block until a run submitted by this process has finished (returns at once if it already has)."""
        future = self.futures.get(run_id)
        if future is not None:
            future.result(timeout=timeout)

    def run_inline(self, ingestion_id: int, run_id: int) -> RunOutcome:
        """Execute in this thread until the run ends (the CLI): no retry is planned."""
        with run_log_context(run_id, ingestion_id):
            log.info("run %s of ingestion %s started", run_id, ingestion_id)
            outcome = self.pipeline.execute(ingestion_id, run_id)
            _log_end(outcome)
            self._tell_listeners(ingestion_id, outcome, will_retry=False)
        return outcome

    def _execute(self, ingestion_id: int, run_id: int) -> RunOutcome:
        with run_log_context(run_id, ingestion_id):
            log.info("run %s of ingestion %s started", run_id, ingestion_id)
            return self._execute_logged(ingestion_id, run_id)

    def _execute_logged(self, ingestion_id: int, run_id: int) -> RunOutcome:
        try:
            outcome = self.pipeline.execute(ingestion_id, run_id)
        except MetadataUnavailable as exc:  # the metadata DB was down before the run could even start
            log.error("run %s of ingestion %s did not start: %s", run_id, ingestion_id, exc.message)
            self.unstarted.add(run_id)
            raise
        _log_end(outcome)
        self._fold_if_empty_check(ingestion_id, outcome)
        try:
            will_retry = self._plan_retry(outcome)
        except DBAPIError as exc:  # the metadata DB is down again: the ingestion's next fire loads the files
            log.warning("run %s: no retry planned, the metadata DB did not answer (%s)", run_id, type(exc).__name__)
            will_retry = False
        self._tell_listeners(ingestion_id, outcome, will_retry)
        return outcome

    def _fold_if_empty_check(self, ingestion_id: int, outcome: RunOutcome) -> None:
        """An empty continuous check leaves no run behind, only the ingestion's count (`empty_check`)."""
        if outcome.status not in (RunStatus.SUCCESS, RunStatus.SKIPPED) or outcome.errors:
            return
        try:
            run = self.store.get_run_by_id(outcome.run_id)
            if run is None:
                return
            mode = self.store.get_ingestion(ingestion_id).spec.schedule.mode
            previous = self.store.last_run_message(ingestion_id, before=outcome.run_id)
            counted = empty_check(mode, run.trigger, outcome, previous)
            if counted is not None:
                self.store.fold_empty_check(outcome.run_id, counted=counted)
        except Exception as exc:  # the run stays stored as it is: nothing lost, only the history is longer
            log.warning("run %s: empty check not folded (%s: %s)", outcome.run_id, type(exc).__name__, exc)

    def _tell_listeners(self, ingestion_id: int, outcome: RunOutcome, will_retry: bool) -> None:
        if not self.listeners:
            return
        try:
            ingestion = self.store.get_ingestion(ingestion_id)
        except Exception:  # the ingestion may have been deleted meanwhile
            log.exception("run %s finished, but its ingestion could not be read", outcome.run_id)
            return
        for listener in self.listeners:
            try:
                listener(ingestion, outcome, will_retry)
            except Exception:  # a listener (alerting) must never turn a finished run into a crash
                log.exception("a listener failed after run %s", outcome.run_id)

    # --- retries ------------------------------------------------------------------------------------------------------
    def _plan_retry(self, outcome: RunOutcome) -> bool:
        """Queue a retry of a transient failure (or of a run a shutdown stopped) after 1, 5, 15 minutes by default.

        Returns whether a retry is coming (alerts wait for the last attempt). One retry is queued per ingestion at a
        time: during an outage every scheduled fire (each minute, each continuous check) that failed had queued
        a retry of its own, chains overlapping into dozens of queued runs; the queued one loads their files too.
        """
        if self.clock is None or outcome.status not in (RunStatus.FAILED, RunStatus.CANCELLED) or not outcome.transient:
            return False
        run = self.store.get_run_by_id(outcome.run_id)
        if run is not None and run.trigger != "retry" and self.store.has_queued_retry(run.ingestion_id):
            return True
        attempt = 1 if run is None else run.attempt
        if attempt > len(self.retry_backoff):
            return False
        not_before = datetime.now(UTC) + timedelta(seconds=self.retry_backoff[attempt - 1])
        retry_id = self.store.create_retry_run(outcome.run_id, not_before)
        if retry_id is not None:
            self.clock.at(not_before, f"retry-{retry_id}", self.start_retry, retry_id)
        return True

    def start_retry(self, run_id: int) -> None:
        """A retry's time has come: start it if the ingestion is still active and no other replica took it."""
        run = self.store.get_run_by_id(run_id)
        if run is None or run.status != RunStatus.QUEUED.value:
            return
        ingestion = self.store.get_ingestion(run.ingestion_id)
        if ingestion.status != IngestionStatus.ACTIVE:
            message = f"Retry not started: the ingestion is {ingestion.status.value}."
            self.store.finish_run(run_id, RunStatus.CANCELLED, RunMetrics(), [], message)
            return
        if self.store.take_queued_retry(run_id):
            self.submit(run.ingestion_id, run_id)

    def rearm_retries(self) -> None:
        """Arm every queued retry (at start-up, and periodically for retries another replica queued)."""
        if self.clock is None:
            return
        for run in self.store.pending_retries():
            if run.id is not None and run.not_before is not None:
                self.clock.at(run.not_before, f"retry-{run.id}", self.start_retry, run.id)

    # --- start-up and shutdown ----------------------------------------------------------------------------------------
    def recover_orphans(self) -> list[int]:
        """At start-up: runs left queued/running by a dead process are closed so they do not show as live. Returns
        the runs that were running (ended failed, `interrupted`), for `retry_interrupted` once the clock is set."""
        ended_running = []
        now = datetime.now(UTC)
        for run in self.store.orphaned_runs():
            active = ActiveRun(run.id or 0, run.owner, run.heartbeat_at)
            reason = None if run.owner is None else why_dead(active, self.pipeline.stale_after, now)
            if run.owner is None or reason is not None:
                running = run.status == RunStatus.RUNNING.value
                status = RunStatus.FAILED if running else RunStatus.CANCELLED
                metrics = RunMetrics(**run.metrics) if run.metrics else RunMetrics()
                errors = [interrupted(reason) if reason else INTERRUPTED] if running else []
                message = f"Interrupted: {reason}." if running and reason else ORPHAN_MESSAGE
                self.store.finish_run(run.id or 0, status, metrics, errors, message)
                self.store.release_run_slot(run.ingestion_id, run.id or 0)
                if running:
                    ended_running.append(run.id or 0)
        return ended_running

    def retry_interrupted(self, run_ids: list[int]) -> None:
        """Queue the retry of runs a stopped server left running, as the stale-run sweep does for a run it settles:
        their remaining files should not wait for the next fire (a day, for a daily schedule)."""
        for run_id in run_ids:
            self._plan_retry(RunOutcome(run_id, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], transient=True))

    def settle_stale_runs(self) -> int:
        """Periodically: end runs marked `running` whose process is gone, whose heartbeat is stale, or that this
        process stopped executing without writing their end (the metadata DB was down), and free their slots, so
        the ingestion is runnable again within the stale window without a restart."""
        settled = self._end_unstarted()
        now = datetime.now(UTC)
        for run in self.store.running_runs():
            if run.id is None:
                continue
            reason = why_dead(ActiveRun(run.id, run.owner, run.heartbeat_at), self.stale, now)
            if reason is None:
                continue
            ended_here = self.store.settle_interrupted_run(run.id, interrupted(reason), f"Interrupted: {reason}.")
            self.store.release_run_slot(run.ingestion_id, run.id)
            if ended_here:
                settled += 1
                log.warning("run %s of ingestion %s was interrupted; settled as failed", run.id, run.ingestion_id)
                # its files should not wait for the next fire (a daily schedule): retried like a transient failure
                self._plan_retry(RunOutcome(run.id, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], transient=True))
        return settled

    def _end_unstarted(self) -> int:
        ended = 0
        for run_id in list(self.unstarted):
            run = self.store.get_run_by_id(run_id)
            if run is not None and run.status == RunStatus.QUEUED.value:
                self.store.finish_run(run_id, RunStatus.FAILED, RunMetrics(), [NOT_STARTED], NOT_STARTED.message)
                ended += 1
            self.unstarted.discard(run_id)
        return ended

    @property
    def stale(self) -> timedelta:
        return self.pipeline.stale_after

    def close(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Take no more runs (queued ones stay queued: the next start's sweep ends them) and wait up to
        `drain_seconds` for those running to end (app/workers.py): each ends at its next batch boundary."""
        self.pipeline.stop_between_batches()
        drain(self.executor, self.futures.values(), "run", drain_seconds)
