"""The metadata store as a run sees it: a call that fails because the database is unreachable is retried with
backoff for up to the run's budget (a little less than the stale-run window), so a short outage or a fail-over
mid-run does not fail the run. After the budget the call raises `MetadataUnavailable` (transient).

Retrying is safe only for a write whose second attempt cannot duplicate anything when the first one committed
without us hearing back. The run's writes are checked one by one:
- run row updates (started, heartbeat, progress, end) set values: repeating them is harmless;
- the ledger writes are idempotent: `add_pending_batch` inserts only paths not there yet and re-points the rest,
  `complete_batch` sets final statuses by path, `drop_pending_batch` deletes pending rows, `upsert_files` updates or
  inserts by path;
- `claim_run_slot` is a compare-and-set: a retry first asks whether the slot already holds the run;
- schema versions are inserts numbered max + 1: they are retried only when the connection failed before any
  statement was sent (a repeat could otherwise record the same version twice).

The heartbeat is not retried here: its loop beats again a moment later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.db.repository import SqlStore
from core.domain import FileResult, Ingestion, KnownFiles, LedgerEntry, RunError, RunMetrics, RunStatus
from core.errors import MetadataUnavailable, says_out_of_space
from core.ports import ActiveRun, ListingState
from core.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_disconnect(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not a constraint or a bad statement)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def nothing_sent(exc: BaseException) -> bool:
    """The connection failed before a statement went out, so nothing can have been committed."""
    return is_disconnect(exc) and isinstance(exc, DBAPIError) and exc.statement is None


def metadata_failure(exc: DBAPIError, what: str, why: str = "did not answer") -> MetadataUnavailable:
    """The typed error for a metadata database that is down, or full (SQLite's "database or disk is full",
    PostgreSQL's "could not extend file"): the second needs space freed, not a database started."""
    reason = str(exc.orig or exc)
    if says_out_of_space(reason):
        return MetadataUnavailable(
            f"The metadata database is out of space and could not {what}: {reason.splitlines()[0][:200]}",
            "Free space on the metadata database's disk (SQLite: the disk of AUTOLOADER_DATA_DIR, unless "
            "AUTOLOADER_DATABASE_URL points elsewhere) or raise its quota; runs are retried once there is room.",
            detail=reason[:500],
        )
    return MetadataUnavailable(
        f"The metadata database {why} while trying to {what}.",
        "Check that the metadata database is up and reachable; the run is retried once it is back.",
        detail=reason[:500],
    )


class RetryingStore:
    """`SqlStore` for the run pipeline (core/ports.py `MetadataStore`); everything else passes through unretried.

    The budget counts from the first failure of an outage, across calls and runs, and ends at the first success:
    a run never works on for longer than the budget without the database (after it, calls fail at once), so another
    replica can take its slot over once its heartbeat is stale without two runs loading at the same time.
    """

    def __init__(self, store: SqlStore, budget_seconds: float, base_seconds: float = 0.25, cap_seconds: float = 4.0):
        self.inner = store
        self.budget_seconds = budget_seconds
        self.backoff = Backoff(base_seconds=base_seconds, cap_seconds=cap_seconds)
        self._down_since: float | None = None
        self._exhausted = False
        """The budget of the current outage is spent: calls fail after one attempt until one succeeds."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _retry(self, what: str, call: Callable[[], T], retryable: Callable[[BaseException], bool] = is_disconnect) -> T:
        retry = 0
        while True:
            try:
                result = call()
            except DBAPIError as exc:
                if not is_disconnect(exc):
                    raise
                now = time.monotonic()
                down_since = self._down_since = self._down_since or now
                retry += 1
                wait = self.backoff.delay(retry)
                self._exhausted = self._exhausted or now + wait - down_since > self.budget_seconds
                if self._exhausted or not retryable(exc):
                    raise self._unavailable(what, exc, retried=self._exhausted) from exc
                log.warning("metadata DB: %s failed (%s); retry %d in %.1f s", what, type(exc).__name__, retry, wait)
                time.sleep(wait)
            else:
                self._down_since, self._exhausted = None, False
                return result

    def _unavailable(self, what: str, exc: DBAPIError, retried: bool) -> MetadataUnavailable:
        why = (
            f"was unreachable for longer than the run's retry budget ({self.budget_seconds:g} s)"
            if retried
            else "dropped the connection (not retried: the write may have been applied)"
        )
        return metadata_failure(exc, what, why)

    # --- ingestion ----------------------------------------------------------------------------------------------
    def get_ingestion(self, ingestion_id: int) -> Ingestion:
        return self._retry("read the ingestion", lambda: self.inner.get_ingestion(ingestion_id))

    def set_ingestion_status(self, ingestion_id: int, status: str) -> None:
        self._retry("set the ingestion status", lambda: self.inner.set_ingestion_status(ingestion_id, status))

    # --- run slot -------------------------------------------------------------------------------------------------
    def claim_run_slot(self, ingestion_id: int, run_id: int, expected: int | None = None) -> bool:
        attempts = [0]

        def claim() -> bool:
            attempts[0] += 1
            if attempts[0] > 1:  # the first attempt may have committed unseen
                active = self.inner.active_run(ingestion_id)
                if active is not None and active.run_id == run_id:
                    return True
            return self.inner.claim_run_slot(ingestion_id, run_id, expected)

        return self._retry("claim the run slot", claim)

    def release_run_slot(self, ingestion_id: int, run_id: int) -> None:
        self._retry("release the run slot", lambda: self.inner.release_run_slot(ingestion_id, run_id))

    def active_run(self, ingestion_id: int) -> ActiveRun | None:
        return self._retry("read the active run", lambda: self.inner.active_run(ingestion_id))

    # --- run row --------------------------------------------------------------------------------------------------
    def mark_run_started(self, run_id: int, owner: str) -> None:
        self._retry("mark the run started", lambda: self.inner.mark_run_started(run_id, owner))

    def heartbeat(self, run_id: int) -> None:
        """One attempt (the heartbeat loop beats again soon); a failed beat starts the outage clock too, so a run
        busy without the database (a long table write) gives up at its next call once the budget is spent."""
        try:
            self.inner.heartbeat(run_id)
        except DBAPIError as exc:
            if is_disconnect(exc) and self._down_since is None:
                self._down_since = time.monotonic()
            raise
        self._down_since, self._exhausted = None, False

    def set_engine_job_id(self, run_id: int, job_id: str) -> None:
        self._retry("record the engine job", lambda: self.inner.set_engine_job_id(run_id, job_id))

    def update_run_progress(self, run_id: int, files_done: int, files_total: int, metrics: RunMetrics) -> None:
        self._retry("record progress", lambda: self.inner.update_run_progress(run_id, files_done, files_total, metrics))

    def finish_run(
        self, run_id: int, status: RunStatus, metrics: RunMetrics, errors: list[RunError], message: str
    ) -> None:
        self._retry("write the run's end", lambda: self.inner.finish_run(run_id, status, metrics, errors, message))

    def record_schema_version(self, ingestion_id: int, schema: list[dict[str, Any]], reason: str) -> None:
        self._retry(
            "record the schema version",
            lambda: self.inner.record_schema_version(ingestion_id, schema, reason),
            retryable=nothing_sent,
        )

    def record_pending_schema(
        self,
        ingestion_id: int,
        columns: list[dict[str, Any]],
        changes: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> int:
        return self._retry(
            "record the pending schema",
            lambda: self.inner.record_pending_schema(ingestion_id, columns, changes, files),
            retryable=nothing_sent,
        )

    def pending_schema_columns(self, ingestion_id: int) -> list[dict[str, Any]] | None:
        return self._retry("read the pending schema", lambda: self.inner.pending_schema_columns(ingestion_id))

    # --- file ledger ----------------------------------------------------------------------------------------------
    def known_files(self, ingestion_id: int, after: str | None = None) -> KnownFiles:
        return self._retry("read the ledger", lambda: self.inner.known_files(ingestion_id, after))

    def listing_state(self, ingestion_id: int) -> ListingState:
        return self._retry("read the listing state", lambda: self.inner.listing_state(ingestion_id))

    def set_listing_state(self, ingestion_id: int, state: ListingState) -> None:
        self._retry("record the listing state", lambda: self.inner.set_listing_state(ingestion_id, state))

    def has_held_files(self, ingestion_id: int) -> bool:
        return self._retry("read the held files", lambda: self.inner.has_held_files(ingestion_id))

    def pending_batches(self, ingestion_id: int) -> dict[int, list[LedgerEntry]]:
        return self._retry("read pending batches", lambda: self.inner.pending_batches(ingestion_id))

    def max_batch_seq(self, ingestion_id: int) -> int:
        return self._retry("read the last batch", lambda: self.inner.max_batch_seq(ingestion_id))

    def add_pending_batch(self, ingestion_id: int, run_id: int, batch_seq: int, entries: list[LedgerEntry]) -> None:
        self._retry(
            "record the pending batch",
            lambda: self.inner.add_pending_batch(ingestion_id, run_id, batch_seq, entries),
        )

    def complete_batch(
        self, ingestion_id: int, batch_seq: int, results: dict[str, FileResult], run_id: int | None = None
    ) -> None:
        self._retry("complete the batch", lambda: self.inner.complete_batch(ingestion_id, batch_seq, results, run_id))

    def drop_pending_batch(self, ingestion_id: int, batch_seq: int, run_id: int | None = None) -> None:
        self._retry("drop the pending batch", lambda: self.inner.drop_pending_batch(ingestion_id, batch_seq, run_id))

    def check_run_live(self, run_id: int) -> None:
        self._retry("check the run", lambda: self.inner.check_run_live(run_id))

    def upsert_files(self, ingestion_id: int, run_id: int | None, entries: Iterable[LedgerEntry]) -> None:
        settled = list(entries)  # an iterator would be empty on the second attempt
        self._retry("record file results", lambda: self.inner.upsert_files(ingestion_id, run_id, settled))

    # --- full refresh (idempotent: a retry after a commit whose answer was lost changes nothing more) --------------
    def full_refresh_marker(self, ingestion_id: int) -> int | None:
        return self._retry("read the full-refresh marker", lambda: self.inner.full_refresh_marker(ingestion_id))

    def begin_full_refresh(self, ingestion_id: int, committed: int) -> None:
        self._retry("start the full refresh", lambda: self.inner.begin_full_refresh(ingestion_id, committed))

    def end_full_refresh(self, ingestion_id: int) -> None:
        self._retry("finish the full refresh", lambda: self.inner.end_full_refresh(ingestion_id))
