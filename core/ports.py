"""What the core needs from the outside: the metadata store. `app/` implements it on SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.domain import FileResult, Ingestion, KnownFiles, LedgerEntry, RunError, RunMetrics, RunStatus


@dataclass(slots=True)
class ActiveRun:
    """Who holds an ingestion's run slot: a run (its id), or a table maintenance (its id negated, see
    `maintenance_slot`), with the holder's process and last heartbeat."""

    run_id: int
    owner: str | None
    heartbeat_at: datetime | None
    number: int | None = None
    """A run's number within its ingestion (what the console shows as Run #N), when known."""

    @property
    def label(self) -> str:
        """How messages name the holder as the console does: "run #4" (the run's number within its ingestion; "run
        12", its id, for a run without one) or "table maintenance 3" (`.capitalize()` at a sentence's start)."""
        if self.run_id < 0:
            return f"table maintenance {-self.run_id}"
        return f"run #{self.number}" if self.number is not None else f"run {self.run_id}"


@dataclass(frozen=True, slots=True)
class ListingState:
    """Where an incremental listing may start (source.incremental_listing).

    `listed_through`: every file whose path sorts at or before it is in the ledger (None: unknown, list fully);
    advanced by runs that end, cleared by a failed run and by anything that drops ledger rows (Reprocess, a
    schema decision releasing held files, a full refresh). `full_listing_at`: when a run last listed every file."""

    listed_through: str | None = None
    full_listing_at: datetime | None = None


def maintenance_slot(maintenance_id: int) -> int:
    """The run-slot value of a table maintenance: its id negated, so it never equals a run id. Holding the slot keeps
    runs (and other maintenances) of the ingestion out while its table is compacted and vacuumed."""
    return -maintenance_id


class MetadataStore(Protocol):
    def get_ingestion(self, ingestion_id: int) -> Ingestion: ...

    def set_ingestion_status(self, ingestion_id: int, status: str) -> None: ...

    # --- run slot: at most one run per ingestion ------------------------------------------
    def claim_run_slot(self, ingestion_id: int, run_id: int, expected: int | None = None) -> bool:
        """Atomically make `run_id` the ingestion's active run if the slot holds `expected`."""
        ...

    def release_run_slot(self, ingestion_id: int, run_id: int) -> None: ...

    def active_run(self, ingestion_id: int) -> ActiveRun | None: ...

    # --- runs -------------------------------------------------------------------------------
    def mark_run_started(self, run_id: int, owner: str) -> None: ...

    def heartbeat(self, run_id: int) -> None: ...

    def set_engine_job_id(self, run_id: int, job_id: str) -> None:
        """The engine's job reference (e.g. a Spark job tag) so the run history can link to the engine UI."""
        ...

    def update_run_progress(self, run_id: int, files_done: int, files_total: int, metrics: RunMetrics) -> None: ...

    def finish_run(
        self, run_id: int, status: RunStatus, metrics: RunMetrics, errors: list[RunError], message: str
    ) -> None: ...

    def record_schema_version(self, ingestion_id: int, schema: list[dict[str, Any]], reason: str) -> None: ...

    def record_pending_schema(
        self,
        ingestion_id: int,
        columns: list[dict[str, Any]],
        changes: list[dict[str, Any]],
        files: list[dict[str, Any]],
    ) -> int:
        """Record (or extend) the ingestion's pending schema version; returns its version number. Extending it, a
        change of the same kind and column replaces the earlier one (it was worked out over every held file)."""
        ...

    def pending_schema_columns(self, ingestion_id: int) -> list[dict[str, Any]] | None:
        """The proposed columns of the ingestion's pending schema version, None when there is none."""
        ...

    # --- file ledger --------------------------------------------------------------------------
    def known_files(self, ingestion_id: int, after: str | None = None) -> KnownFiles:
        """The ledger's rows (those whose path sorts after `after`, for an incremental listing)."""
        ...

    def has_held_files(self, ingestion_id: int) -> bool:
        """Whether files wait in the ledger for a schema review (status `held`)."""
        ...

    def listing_state(self, ingestion_id: int) -> ListingState: ...

    def set_listing_state(self, ingestion_id: int, state: ListingState) -> None: ...

    def pending_batches(self, ingestion_id: int) -> dict[int, list[LedgerEntry]]: ...

    def max_batch_seq(self, ingestion_id: int) -> int: ...

    def add_pending_batch(self, ingestion_id: int, run_id: int, batch_seq: int, entries: list[LedgerEntry]) -> None:
        """Record the files of a batch as `pending` *before* the table commit (the intent)."""
        ...

    def complete_batch(
        self, ingestion_id: int, batch_seq: int, results: dict[str, FileResult], run_id: int | None = None
    ) -> None:
        """Move a batch's `pending` files to their final status (after the table commit). With `run_id`, the run
        that does it: refused (RunTakenOver) once another server ended that run."""
        ...

    def drop_pending_batch(self, ingestion_id: int, batch_seq: int, run_id: int | None = None) -> None:
        """Forget an uncommitted batch; with `run_id`, refused once another server ended that run."""
        ...

    def upsert_files(self, ingestion_id: int, run_id: int | None, entries: Iterable[LedgerEntry]) -> None:
        """Record files with a final status outside a batch (quarantined, failed, skipped); refused once another
        server ended the run `run_id`."""
        ...

    def check_run_live(self, run_id: int) -> None:
        """Raise RunTakenOver once another server ended the run (right before a table commit: a run paused past
        the stale window must not commit the batch the other server has settled and retried)."""
        ...

    # --- full refresh (core/pipeline.py `_begin_full_refresh`) ---------------------------------
    def full_refresh_marker(self, ingestion_id: int) -> int | None:
        """None: no full refresh; -1: one is requested; N >= 0: one started when the table's committed batch was N."""
        ...

    def begin_full_refresh(self, ingestion_id: int, committed: int) -> None:
        """Forget every ledger row of the ingestion and set the marker to `committed`, in one transaction."""
        ...

    def end_full_refresh(self, ingestion_id: int) -> None: ...
