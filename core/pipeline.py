"""The run pipeline (PRODUCT.md §5): discover → diff against the ledger → infer/check schema →
load in bounded batches → commit → update ledger → metrics.

Exactly once rests on three steps per batch, in this order:
1. the batch's files are written to the ledger as `pending` with the batch sequence (the intent);
2. the batch is committed to the table with a Delta application transaction
   (app id = the ingestion's app id, version = the batch sequence) — skipped if already there;
3. the ledger rows move to `loaded`.
A run that finds `pending` rows left by a dead process asks the table: if the transaction version
reached the batch, the batch is marked loaded; otherwise its rows are dropped and the files are
loaded again. Either way every file ends up in the table exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from core.config import SourceConfig
from core.domain import (
    FileResult,
    FileStatus,
    Ingestion,
    IngestionStatus,
    KnownFile,
    LedgerEntry,
    RunError,
    RunMetrics,
    RunOutcome,
    RunStatus,
)
from core.engines.base import BatchRequest, BatchResult, Engine, FileOutcome, InferResult
from core.errors import (
    AutoloaderError,
    BadFileError,
    ConcurrentCommit,
    ConfigError,
    FileRefused,
    MetadataUnavailable,
    RunTakenOver,
    SchemaChangeError,
    ShuttingDown,
    SourceChanged,
    SourceNotFound,
    TooManyBadRecords,
)
from core.faults import crash_point
from core.lifecycle import (
    Reload,
    TrackedStorage,
    Window,
    change_message,
    first_line,
    is_line_based,
    is_plain,
    loaded_version,
    prefix_digest,
    unreadable_file,
)
from core.live_runs import LIVE_RUNS
from core.ports import ActiveRun, ListingState, MetadataStore
from core.run_messages import (
    copies_note,
    malformed_error,
    sampled_note,
    skipped_note,
    unmatched_files,
    waiting_note,
)
from core.selection import bad_record_offenders, copies_of_loaded, plan_batches, select_new_files
from core.storage.base import FileInfo, Storage
from core.wording import counted

if TYPE_CHECKING:
    import pyarrow as pa

    from core.schema import Classification

# Arrow and the schema rules (core.formats, core.schema) are imported by the methods that load files, not here: a
# run that finds nothing new never needs them, and `autoloader run` from cron should not pay for their import.

log = logging.getLogger(__name__)

T = TypeVar("T")
CHANGED_WARNINGS_LISTED = 100
"""file_changed warnings listed on one run (a producer touching every file must not make a huge run record)."""
COMMIT_CONFLICT_ATTEMPTS = 3
"""Tries of one batch whose commit loses to another writer's (ConcurrentCommit) before the run gives up."""
FILE_ERRORS_LISTED = 100
"""Errors of one kind naming a file (quarantined, vanished, unreadable) listed on one run: a source folder moved
away mid-run stored 1,700 of them (a 460 KB runs list); every file keeps its reason in the ledger, and the run's
message counts them all."""
EngineFactory = Callable[[Ingestion], Engine]
StorageFactory = Callable[[SourceConfig], Storage]


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(active: ActiveRun, stale_after: timedelta, now: datetime) -> bool:
    """A run's process is dead if it is on this host and its pid is gone, or its heartbeat is stale (even when its
    process is alive: a run cut off from the metadata DB longer than the stale window gives up on its own).

    A run owned by this very process is alive exactly while this process executes it (`LIVE_RUNS`): a run whose
    thread ended while the metadata DB was down left its row `running`, and is settled as soon as the DB is back.
    """
    return why_dead(active, stale_after, now) is not None


def why_dead(active: ActiveRun, stale_after: timedelta, now: datetime) -> str | None:
    """Why the run's process counts as dead (`owner_is_dead`), in words for its run record; None while alive."""
    if active.owner:
        host, _, pid = active.owner.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid():
                alive = active.run_id in LIVE_RUNS
                return None if alive else "this server stopped executing it without writing its end (database down)"
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return f"its process ({active.owner}) is gone (killed, crashed or restarted)"
            except PermissionError:  # alive, under another user: its heartbeat decides
                pass
    if active.heartbeat_at is None:
        return "it never sent a heartbeat"
    beat = active.heartbeat_at if active.heartbeat_at.tzinfo else active.heartbeat_at.replace(tzinfo=UTC)
    silent = now - beat
    if silent <= stale_after:
        return None
    server = active.owner or "its server"
    return (
        f"{server} sent no heartbeat for {silent.total_seconds():.0f} s (the stale window is "
        f"{stale_after.total_seconds():.0f} s: paused, starved or cut off from the database), so it was taken over"
    )


RECONCILES = "Nothing to do: the next run reconciles the table and the file ledger."


def interrupted(reason: str, action: str = RECONCILES) -> RunError:
    """The error of a run settled as interrupted, saying why."""
    return RunError(kind="interrupted", message=f"The run stopped before it finished: {reason}.", action=action)


@dataclass(slots=True)
class _RunContext:
    ingestion: Ingestion
    run_id: int
    started: float
    ingested_at: datetime
    build_engine: Callable[[], Engine]
    storage: Storage = field(init=False)  # set once built: building it can fail, and that failure is recorded
    metrics: RunMetrics = field(default_factory=RunMetrics)
    errors: list[RunError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_total: int = 0
    files_done: int = 0
    files_settled: int = 0
    held_files: int = 0
    wrote_data: bool = False
    loaded_before: bool = True
    """Whether the ledger held a batch of this ingestion when the run planned its first (`_next_batch_seq`)."""
    tracked: TrackedStorage | None = None
    reloads: dict[str, Reload] = field(default_factory=dict)
    recorded_aside: set[str] = field(default_factory=set)
    """Files set aside and noted on the run before their batch's commit (`_record_set_aside`)."""
    changed: int = 0
    listed_errors: Counter[str] = field(default_factory=Counter)
    vanished: int = 0
    unreadable: int = 0
    rewritten: int = 0
    misfits: list[str] = field(default_factory=list)
    """Under the `fail` policy, the files that do not match the table (recorded `failed`, named on the run): the
    others load, and the run ends failed naming them (`_refusal`)."""
    misfit_changes: list[str] = field(default_factory=list)
    built_engine: Engine | None = None
    listing: ListingState | None = None
    """The incremental listing state read at the start (None: the source lists fully every run)."""
    listed_through: str | None = None
    listed_fully: bool = True
    refreshing: bool = False
    """A full refresh is under way and no batch of this run replaced the table yet (`_begin_full_refresh`)."""

    @property
    def engine(self) -> Engine:
        """The ingestion's engine, built on first use (inside the run, so a failure to build it is recorded): a run
        that finds no new file and no batch to settle never builds it (no Arrow import, no Spark session)."""
        if self.built_engine is None:
            self.built_engine = self.build_engine()
        return self.built_engine


class RunPipeline:
    def __init__(
        self,
        store: MetadataStore,
        engine_for: EngineFactory,
        storage_for: StorageFactory,
        *,
        heartbeat_seconds: float = 5.0,
        stale_after: timedelta = timedelta(seconds=60),
        progress_interval: float = 1.0,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.store = store
        self.on_progress = on_progress
        """Told the ingestion's id once a run has started and after each progress it stores (a page shows it at once
        instead of at its next poll); an error it raises is logged, never the run's."""
        self.engine_for = engine_for
        self.storage_for = storage_for
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = stale_after
        self.progress_interval = progress_interval
        self.owner = process_owner()
        self.stop_reason: str | None = None
        """Set when the process is stopping: runs end at their next batch boundary (`stop_between_batches`)."""

    def stop_between_batches(self, reason: str = "The server is shutting down") -> None:
        """Shutdown: every run ends before its next batch (ShuttingDown), the batch it is writing committed and
        recorded if that takes less than the drain, so a restart does not cut a write part-way. Safe from a signal
        handler and from another thread."""
        self.stop_reason = reason

    # --- entry point ----------------------------------------------------------------------------
    def execute(self, ingestion_id: int, run_id: int) -> RunOutcome:
        """Run one queued run to its end. Never raises for run-level failures: they end up in the record."""
        # Live in this process before its row names this process as owner, until its end is written (or the DB
        # stayed down past the run's retry budget): see `owner_is_dead`.
        LIVE_RUNS.add(run_id)
        try:
            try:
                ingestion = self.store.get_ingestion(ingestion_id)
            except MetadataUnavailable:
                raise
            except AutoloaderError as exc:  # e.g. a credential the key in use cannot decrypt (rotated meanwhile)
                return self._fail_unstarted(run_id, exc)
            # Owner and heartbeat are on the run before it takes the slot: a run seen in the slot is never
            # mistaken for one left behind by a dead process.
            self.store.mark_run_started(run_id, self.owner)
            if not self._claim(ingestion_id, run_id):
                active = self.store.active_run(ingestion_id)
                message = f"Skipped: {active.label if active else 'a run'} of this ingestion is still in progress."
                self.store.finish_run(run_id, RunStatus.SKIPPED, RunMetrics(), [], message)
                return RunOutcome(run_id, RunStatus.SKIPPED, RunMetrics(), message=message)
            self._announce(ingestion_id)
            stop = threading.Event()
            beat = threading.Thread(
                target=self._heartbeat, args=(run_id, stop), daemon=True, name=f"heartbeat-{run_id}"
            )
            beat.start()
            try:
                return self._execute_claimed(ingestion, run_id)
            finally:
                stop.set()
                try:
                    self.store.release_run_slot(ingestion_id, run_id)
                except AutoloaderError:  # the metadata DB stayed down: the slot is taken over once it is back
                    log.error("run %s could not release its slot; the next run takes it over", run_id)
        finally:
            LIVE_RUNS.discard(run_id)

    def _fail_unstarted(self, run_id: int, exc: AutoloaderError) -> RunOutcome:
        """End a run that could not even read its ingestion: failed with the reason, not left queued for ever."""
        error = RunError(kind=exc.code, message=exc.message, action=exc.action, file=None, detail=exc.detail)
        self.store.finish_run(run_id, RunStatus.FAILED, RunMetrics(), [error], exc.message)
        return RunOutcome(run_id, RunStatus.FAILED, RunMetrics(), [error], exc.message, transient=exc.transient)

    def _execute_claimed(self, ingestion: Ingestion, run_id: int) -> RunOutcome:
        transient = False
        started = time.monotonic()
        ctx = _RunContext(
            ingestion=ingestion,
            run_id=run_id,
            started=started,
            ingested_at=datetime.now(UTC),
            build_engine=lambda: self.engine_for(ingestion),
        )
        try:
            ctx.storage = self.storage_for(ingestion.spec.source)
            status, message = self._run(ctx)
        except AutoloaderError as exc:
            status, message, transient = RunStatus.FAILED, exc.message, exc.transient
            if isinstance(exc, ShuttingDown):  # stopped, not failed: a restart is no error (its retry is planned)
                status = RunStatus.CANCELLED
            if isinstance(exc, RunTakenOver):  # its end is not written (the other server's stays): say so here
                log.warning("run %s of %s stopped: %s", run_id, ingestion.name, exc.message)
            self._forget_listing(ctx)
            ctx.errors.append(
                RunError(kind=exc.code, message=exc.message, action=exc.action, file=None, detail=exc.detail)
            )
        except Exception as exc:  # an internal fault must still end the run record
            log.exception("run %s of ingestion %s crashed", run_id, ingestion.id)
            status, message = RunStatus.FAILED, f"Internal error: {exc}"
            self._forget_listing(ctx)
            ctx.errors.append(
                RunError(
                    kind="internal",
                    message=f"Internal error: {exc}",
                    action="Retry the run; if it fails again, report it with the details.",
                    detail=traceback.format_exc(limit=5),
                )
            )
        ctx.metrics.duration_seconds = round(time.monotonic() - started, 3)
        ctx.metrics.error_count = len(ctx.errors)
        if ctx.notes:
            message = f"{message} Notes: {'; '.join(ctx.notes)}".strip()
        try:
            self.store.finish_run(run_id, status, ctx.metrics, ctx.errors, message)
        except AutoloaderError:  # the metadata DB stayed down: a later run or the stale sweep settles the row
            log.error("run %s ended %s, but its end could not be written: %s", run_id, status.value, message)
        return RunOutcome(
            run_id, status, ctx.metrics, ctx.errors, message, transient=transient, schema_pending=ctx.held_files > 0
        )

    # --- the run ----------------------------------------------------------------------------------
    def _run(self, ctx: _RunContext) -> tuple[RunStatus, str]:
        spec = ctx.ingestion.spec
        self._reconcile(ctx)
        if spec.destination.write_mode == "overwrite" and self.store.has_held_files(ctx.ingestion.id):
            # Held files replace the table with the files after them once released: a newer file loaded now would
            # be replaced by the release (its rows gone, the ledger calling it loaded; an outside attack). Held
            # files, not the status, decide: a pause and resume set the status back to active.
            return RunStatus.SKIPPED, (
                "Skipped: this overwrite ingestion waits for its schema review; once a resolution is applied, the "
                "held files and any newer ones replace the table together."
            )
        self._begin_full_refresh(ctx)
        if spec.source.reload_changed_files:
            self._check_can_reload(ctx)
        ctx.tracked = TrackedStorage(ctx.storage)
        ctx.storage = ctx.tracked
        start_after = self._listing_start(ctx)
        known = self.store.known_files(ctx.ingestion.id, after=start_after)
        listing = ctx.storage.list_files(spec.source.file_pattern, start_after=start_after)
        selection = select_new_files(listing, known, spec, datetime.now(UTC))
        ctx.listed_through, ctx.listed_fully = selection.listed_through, start_after is None
        if ctx.storage.skipped:
            ctx.notes.append(skipped_note(ctx.storage.skipped))
        if selection.waiting:
            ctx.notes.append(waiting_note(selection.waiting, spec.source.min_file_age_seconds))
        for info, seen in selection.changed:
            self._record_change(ctx, info, seen)
        new_files = selection.load
        ctx.tracked.versions.update((info.path, info.etag) for info in new_files if info.etag)
        if copies := copies_of_loaded(new_files, known):
            ctx.notes.append(copies_note(copies))
        by_path = {info.path: info for info in new_files}
        ctx.reloads = {path: self._reload_plan(ctx, by_path[path], seen) for path, seen in selection.reload.items()}
        ctx.files_total = len(new_files)
        if not new_files:
            if not selection.listed and start_after is None and not len(known):
                self._note_unmatched_pattern(ctx)
            self._finish_full_refresh(ctx)
            self._advance_listing(ctx)
            if ctx.metrics.files_processed:  # a batch an interrupted run committed, settled and counted by this one
                return RunStatus.SUCCESS, f"{self._loaded_summary(ctx)}{self._aside_summary(ctx)}"
            return RunStatus.SUCCESS, f"No new files.{self._aside_summary(ctx)}"
        self._store_progress(ctx, 0)
        next_seq = self._next_batch_seq(ctx)
        for index, batch in enumerate(plan_batches(new_files, spec)):
            if self.stop_reason is not None:
                raise ShuttingDown(
                    f"{self.stop_reason}: the run ended before batch {next_seq}. {self._loaded_summary(ctx)}",
                    "Nothing to do: the next run (on a server, its retry once the server is back) loads the "
                    "remaining files.",
                )
            mode = spec.destination.write_mode
            if mode == "overwrite" and index > 0:
                mode = "append"
            self._load_batch_despite_conflicts(ctx, batch, next_seq, mode)
            next_seq += 1
            if ctx.wrote_data:
                self._finish_full_refresh(ctx)
        self._finish_full_refresh(ctx)
        if ctx.wrote_data:
            self._after_run(ctx)
        summary = self._loaded_summary(ctx)
        if ctx.held_files:
            summary += f" {counted(ctx.held_files, 'file')} held for schema review."
        summary += self._aside_summary(ctx)
        if ctx.misfits:  # before the listing advances: the misfits are listed again
            raise self._refusal(ctx, summary)
        self._advance_listing(ctx)
        if ctx.metrics.files_quarantined or ctx.unreadable:
            return RunStatus.PARTIAL, summary
        return RunStatus.SUCCESS, summary

    @staticmethod
    def _loaded_summary(ctx: _RunContext) -> str:
        records, files = ctx.metrics.records_ingested, ctx.metrics.files_processed
        return f"Loaded {counted(records, 'record')} from {counted(files, 'file')}."

    @staticmethod
    def _note_unmatched_pattern(ctx: _RunContext) -> None:
        """An ingestion that never saw a file and whose pattern matched nothing: say which files the path holds that
        the pattern does not match (a runs' "No new files." hid a pattern gone wrong that Test Connection named)."""
        pattern = ctx.ingestion.spec.source.file_pattern
        if pattern and (unmatched := unmatched_files(ctx.storage)):
            ctx.notes.append(f"0 files match the pattern '{pattern}'; {unmatched}")

    @staticmethod
    def _after_run(ctx: _RunContext) -> None:
        """The table's upkeep after the loads (Z-order): the batches are committed and recorded by now, so its
        failure is a note on a run that loaded, not a failed run whose files would look unloaded."""
        try:
            ctx.engine.after_run(ctx.ingestion.spec.destination)
        except AutoloaderError as exc:
            log.warning("Z-order of %s failed after its loads: %r", ctx.ingestion.name, exc)
            ctx.notes.append(f"the table was not Z-ordered this run: {exc.message}")

    @staticmethod
    def _aside_summary(ctx: _RunContext) -> str:
        """The run message's count of files not loaded as they are: quarantined, unreadable, gone, changed."""
        parts = [
            f"{counted(count, 'file')} {what}."
            for count, what in (
                (ctx.metrics.files_quarantined, "quarantined"),
                (ctx.unreadable, "unreadable (skipped)"),
                (ctx.vanished, "deleted before being read (skipped)"),
                (ctx.rewritten, "rewritten while being read (read again by the next run)"),
                (ctx.changed, "changed after being loaded (not reloaded: reload_changed_files is off)"),
            )
            if count
        ]
        return "".join(f" {part}" for part in parts)

    @staticmethod
    def _check_can_reload(ctx: _RunContext) -> None:
        """reload_changed_files replaces a changed file's rows, found by `_source_file`, with a delete the engine
        must offer: refuse it plainly where that is not possible rather than duplicate rows."""
        destination = ctx.ingestion.spec.destination
        if not callable(getattr(ctx.engine, "delete_rows_from", None)):
            raise ConfigError(
                f"reload_changed_files is not supported on the {ctx.engine.name} engine yet: it cannot replace "
                "the rows of a file that changed.",
                "Turn reload_changed_files off (changed files are then reported with status 'changed'), "
                "or run this ingestion on the embedded engine.",
                field="source.reload_changed_files",
            )
        if not destination.lineage_columns:
            raise ConfigError(
                f"reload_changed_files needs the lineage columns of {destination.full_name}: a changed file's "
                "rows are found by _source_file.",
                "Turn the destination's lineage columns on, or turn reload_changed_files off.",
                field="source.reload_changed_files",
            )

    def _record_change(self, ctx: _RunContext, info: FileInfo, seen: KnownFile) -> None:
        """A loaded file changed and is not reloaded: ledger status `changed` (with the version in the table as
        previous size/etag) and a warning on the run; the run itself still succeeds."""
        before = loaded_version(seen)
        message = change_message(info.path, before, info)
        entry = LedgerEntry(
            info.path,
            info.size,
            info.modified,
            info.etag,
            FileStatus.CHANGED,
            records=seen.records,
            error=message,
            previous_size=before[0],
            previous_etag=before[1],
        )
        self.store.upsert_files(ctx.ingestion.id, ctx.run_id, [entry])
        ctx.changed += 1
        if ctx.changed > CHANGED_WARNINGS_LISTED:  # every one is in the ledger and counted in the run message
            return
        ctx.errors.append(
            RunError(
                kind="file_changed",
                file=info.path,
                message=message,
                action="Turn on source.reload_changed_files to load the new version (appended records only, or in "
                "place of the file's rows); producers should write new files instead of changing loaded ones.",
            )
        )

    def _reload_plan(self, ctx: _RunContext, info: FileInfo, seen: KnownFile) -> Reload:
        """Append-only growth of a line-based file (the old bytes hash as they did at load time and ended a line)
        reads only the new bytes; any other change replaces the file's rows."""
        size, etag = loaded_version(seen)
        replace = Reload(size, etag, seen.records)
        fmt = ctx.ingestion.spec.format
        if size is None or not seen.content_hash or info.size <= size or not is_line_based(fmt):
            return replace
        inner = ctx.tracked.inner if ctx.tracked else ctx.storage
        try:
            prefix, last = prefix_digest(inner, info.path, size)
            if prefix.hexdigest() != seen.content_hash or (size and last != b"\n") or not is_plain(inner, info.path):
                return replace
            header = first_line(inner, info.path) if fmt.type == "csv" and fmt.options.header and size else b""
        except AutoloaderError as exc:
            if exc.transient:
                raise
            return replace  # the load itself names the file and the reason
        return Reload(size, etag, seen.records, tail_from=size, header=header, seed=prefix)

    def _reconcile(self, ctx: _RunContext) -> None:
        """Settle batches left `pending` by a dead run (only then is the table asked which one it committed).

        A batch the table lacks is fenced first (Engine.fence_batch): its run may not be dead but paused past the
        stale window, and still able to commit it after this run planned other files under its number."""
        ingestion, destination = ctx.ingestion, ctx.ingestion.spec.destination
        pending = self.store.pending_batches(ingestion.id)
        if not pending:
            return
        committed = ctx.engine.committed_version(destination, ingestion.app_id) or 0
        for seq, entries in sorted(pending.items()):
            if seq > committed:
                ctx.engine.fence_batch(destination, ingestion.app_id, seq)
                committed = ctx.engine.committed_version(destination, ingestion.app_id) or 0
            if seq <= committed and not ctx.engine.is_fence(destination, ingestion.app_id, seq):
                if destination.write_mode == "overwrite":
                    ctx.engine.settle_overwrite(destination, ingestion.app_id, seq)
                runs = {e.run_id for e in entries}
                run_id = runs.pop() if len(runs) == 1 else None
                counts = ctx.engine.count_rows_from(destination, [e.path for e in entries], run_id)
                results = {e.path: FileResult(FileStatus.LOADED, records=counts.get(e.path, 0)) for e in entries}
                self.store.complete_batch(ingestion.id, seq, results, ctx.run_id)
                # This run settles them: its counts include them (the interrupted run never recorded them).
                ctx.metrics.files_processed += len(entries)
                ctx.metrics.records_ingested += sum(r.records for r in results.values())
                files = counted(len(entries), "file")
                ctx.notes.append(f"recovered batch {seq} ({files}) committed by an interrupted run")
            else:
                self.store.drop_pending_batch(ingestion.id, seq, ctx.run_id)
                files = counted(len(entries), "file")
                ctx.notes.append(f"re-queued {files} of an interrupted run's uncommitted batch {seq}")

    # --- incremental listing ----------------------------------------------------------------------
    def _listing_start(self, ctx: _RunContext) -> str | None:
        """Where this run's listing starts (source.incremental_listing): after the state's `listed_through`, unless a
        full listing is due (the first run, every full_listing_interval_hours, a full refresh, and after anything
        that cleared the state: a failed run, Reprocess, a schema decision). None lists every file."""
        source = ctx.ingestion.spec.source
        if not source.incremental_listing:
            return None
        state = ctx.listing = self.store.listing_state(ctx.ingestion.id)
        last_full = state.full_listing_at
        if last_full is None or ctx.ingested_at - last_full >= timedelta(hours=source.full_listing_interval_hours):
            return None
        if ctx.refreshing:
            return None
        return state.listed_through

    def _advance_listing(self, ctx: _RunContext) -> None:
        """At the end of a run that recorded every file it selected: the next incremental listing may start after
        the greatest path listed (before any file still too young), and a full listing's time is kept."""
        previous, through = ctx.listing, ctx.listed_through
        if previous is None or ctx.rewritten:  # a file rewritten while read is read by the next run: list it again
            return
        if ctx.listed_fully:
            advanced = ListingState(through, ctx.ingested_at)
        else:  # this listing started after previous.listed_through: what it saw sorts after that
            advanced = ListingState(through or previous.listed_through, previous.full_listing_at)
        if advanced != previous:
            self.store.set_listing_state(ctx.ingestion.id, advanced)

    def _forget_listing(self, ctx: _RunContext) -> None:
        """After a failed run the next one lists every file: files this run listed and did not record may sort
        before `listed_through` (a full listing finds files that arrived out of order)."""
        previous = ctx.listing
        if previous is None or previous.listed_through is None:
            return
        try:
            self.store.set_listing_state(ctx.ingestion.id, ListingState(None, previous.full_listing_at))
        except AutoloaderError:  # the metadata DB is down: the run's failure is what gets reported
            log.warning("could not clear the incremental listing state of ingestion %s", ctx.ingestion.id)

    # --- full refresh -----------------------------------------------------------------------------
    def _begin_full_refresh(self, ctx: _RunContext) -> None:
        """Start (or restart) a requested full refresh: every file of the source is loaded again, the first batch
        that commits replacing the table's content (BatchRequest.replace), the later ones adding to it.

        The marker (MetadataStore.full_refresh_marker) makes it crash-safe. Starting empties the ledger and notes
        the table's committed batch N in one transaction; the marker is cleared right after the replacing batch is
        settled, so while it is set the table holds at most one batch above N, and that batch is the replacing one
        or the fence `_reconcile` committed in its place:
        - no batch above N, or a fence: nothing replaced the table yet (a crash before that commit) → start again;
        - a batch above N: the replace committed, its ledger rows were settled by `_reconcile` → clear the marker
          (after letting the engine finish that overwrite, for formats where it is two steps)."""
        ingestion, destination = ctx.ingestion, ctx.ingestion.spec.destination
        marker = self.store.full_refresh_marker(ingestion.id)
        if marker is None:
            return
        committed = ctx.engine.committed_version(destination, ingestion.app_id) or 0
        if marker >= 0 and committed > marker and not ctx.engine.is_fence(destination, ingestion.app_id, committed):
            ctx.engine.settle_overwrite(destination, ingestion.app_id, committed)
            self.store.end_full_refresh(ingestion.id)
            ctx.notes.append(f"finished the full refresh an interrupted run committed (batch {committed})")
            return
        self.store.begin_full_refresh(ingestion.id, committed)
        crash_point("full_refresh_begun")
        ctx.refreshing = True
        ctx.notes.append("full refresh: every file at the source loaded again, replacing the table's rows")

    def _finish_full_refresh(self, ctx: _RunContext) -> None:
        """Clear the marker once a batch of this run replaced the table. A refresh that loaded nothing (no file at
        the source, or every one set aside) still replaces the table, with no rows: one empty commit."""
        if not ctx.refreshing:
            return
        ingestion, destination = ctx.ingestion, ctx.ingestion.spec.destination
        if not ctx.wrote_data:
            table_schema = ctx.engine.table_schema(destination)
            if table_schema is not None:
                self._replace_with_nothing(ctx, table_schema)
        crash_point("full_refresh_committed")
        self.store.end_full_refresh(ingestion.id)
        ctx.refreshing = False

    def _replace_with_nothing(self, ctx: _RunContext, table_schema: pa.Schema) -> None:
        import pyarrow as pa

        from core.schema import data_fields

        spec = ctx.ingestion.spec
        request = BatchRequest(
            app_id=ctx.ingestion.app_id,
            batch_seq=self._next_batch_seq(ctx),
            run_id=ctx.run_id,
            files=[],
            storage=ctx.storage,
            format=spec.format,
            destination=spec.destination,
            schema=pa.schema(data_fields(table_schema)),
            evolve=False,
            ignored_columns=frozenset(spec.format.schema_.ignored_columns),
            mode=spec.destination.write_mode,
            ingested_at=ctx.ingested_at,
            max_bad_record_ratio=spec.quality.max_bad_record_ratio,
            replace=True,
        )
        result = ctx.engine.load_batch(request)
        ctx.metrics.bytes_written += result.bytes_written
        ctx.metrics.batches_committed += 1

    def _next_batch_seq(self, ctx: _RunContext) -> int:
        """The sequence of the run's first batch: above every batch the table committed and the ledger recorded
        (asked once files are to be loaded, after `_reconcile` settled the pending ones)."""
        ingestion = ctx.ingestion
        committed = ctx.engine.committed_version(ingestion.spec.destination, ingestion.app_id) or 0
        recorded = self.store.max_batch_seq(ingestion.id)
        ctx.loaded_before = recorded > 0
        return max(committed, recorded) + 1

    def _incoming_schema(
        self, ctx: _RunContext, files: list[FileInfo], table_schema: pa.Schema | None
    ) -> tuple[list[FileInfo], pa.Schema]:
        """The files to load now and their schema. Against an existing table every file is checked
        (not just a sample), so files with a change the policy does not take are held or fail the run."""
        import pyarrow as pa

        from core.formats import nulls_to_table_types, unify_schemas
        from core.schema import classify, data_fields, hold_together, without

        spec = ctx.ingestion.spec
        settings = spec.format.schema_
        ignored = frozenset(settings.ignored_columns)
        if table_schema is None or settings.on_schema_change == "rescue" or settings.inference == "manual":
            files, inferred = self._guarded(
                ctx, files, lambda some: ctx.engine.infer_schema(ctx.storage, some, spec.format)
            )
            if inferred.sampled:
                ctx.notes.append(sampled_note(inferred.sampled, inferred.sample_bytes))
            if inferred.case_variants and ctx.engine.drops_case_variants(spec.format):
                files = self._set_aside_case_variants(ctx, files, None, inferred.schema)
            if table_schema is None:
                return files, without(inferred.schema, ignored)
            return files, without(nulls_to_table_types(inferred.checked_schema, table_schema), ignored)
        files, (schemas, suspects) = self._guarded(
            ctx, files, lambda some: self._file_schemas(ctx, some, table_schema, ignored)
        )
        if suspects:
            files = self._set_aside_case_variants(ctx, files, suspects, table_schema)
            schemas = {f.path: schemas[f.path] for f in files if f.path in schemas}
        split = classify(settings.on_schema_change, table_schema, schemas, ignored)
        if split.held and settings.on_schema_change == "fail":
            if spec.destination.write_mode == "overwrite":
                split = hold_together(split, [f.path for f in files])
            self._refuse_misfits(ctx, [f for f in files if f.path in split.held], split)
        elif split.held:
            if spec.destination.write_mode == "overwrite":
                split = hold_together(split, [f.path for f in files])
            self._hold(ctx, [f for f in files if f.path in split.held], split, table_schema, schemas)
        loadable = [f for f in files if f.path not in split.held]
        known = [without(schemas[f.path], ignored) for f in loadable if f.path in schemas]
        if not known:
            return loadable, pa.schema(data_fields(table_schema))
        return loadable, nulls_to_table_types(unify_schemas(known), table_schema)

    def _refuse_misfits(self, ctx: _RunContext, misfits: list[FileInfo], split: Classification) -> None:
        """The `fail` policy: files whose schema differs from the table's are recorded `failed`, each named on the
        run, and the run ends failed; the files that fit still load. (A run that failed at the first misfit left
        every file of its batch without a ledger row, so the files that fit never loaded while the misfit stayed.)
        A misfit is tried again at every run, and loads once the policy or the table lets it."""
        table = ctx.ingestion.spec.destination.full_name
        for info in misfits:
            changes = split.held.get(info.path)
            if changes:
                reason = f"does not match table {table}: " + "; ".join(c.describe() for c in changes)
            else:  # an overwrite run's file that fits, refused with its run's misfits (hold_together)
                reason = f"not loaded: another file of the run does not match table {table}, and an overwrite " \
                    "replaces the table with a run's files together"  # fmt: skip
            _note_file_error(ctx, RunError(kind="schema_change", file=info.path, message=f"{info.path} {reason}",
                                           action=MISFIT_ACTION))  # fmt: skip
            self._fail_files(ctx, [info], reason)
        ctx.misfits.extend(info.path for info in misfits)
        ctx.misfit_changes.extend(c.describe() for c in split.blocking if c.describe() not in ctx.misfit_changes)

    def _without_unopened(self, ctx: _RunContext, files: list[FileInfo]) -> list[FileInfo]:
        """The files the run's own reads could not open as listed (rewritten since, gone, refused), set aside before
        the engine reads the batch: a Spark cluster reads the files itself, and loaded a rewritten file's new
        columns, which no schema check had seen, into neither the table nor the rescue column (an outside attack)."""
        failures = ctx.tracked.open_failures if ctx.tracked is not None else {}
        if not failures:
            return files
        kept = []
        for info in files:
            cause = failures.get(info.path)
            if cause is None:
                kept.append(info)
            else:
                self._quarantine(ctx, info, cause.message, cause.action)
        return kept

    @staticmethod
    def _refusal(ctx: _RunContext, summary: str) -> SchemaChangeError:
        table = ctx.ingestion.spec.destination.full_name
        count, named = len(ctx.misfits), ", ".join(ctx.misfits[:3]) + (", ..." if len(ctx.misfits) > 3 else "")
        return SchemaChangeError(
            f"{counted(count, 'new file')} {'does' if count == 1 else 'do'} not match table {table} ({named}): "
            f"{'; '.join(ctx.misfit_changes)}. {summary}",
            MISFIT_ACTION,
        )

    def _set_aside_case_variants(
        self, ctx: _RunContext, files: list[FileInfo], suspects: set[str] | None, columns: pa.Schema
    ) -> list[FileInfo]:
        """Quarantine the files with a key spelled differently from its column only by case, on an engine that
        would drop such a key's values (`Engine.drops_case_variants`); the others load. Nothing is lost: the file
        waits, named with the reason, until the key is renamed or the ingestion moves to the embedded engine.
        The `suspects` (paths; None: every file) are inferred again one by one: such batches are rare."""
        from core.engines.inference import case_variant_keys

        kept = []
        for info in files:
            if suspects is not None and info.path not in suspects:
                kept.append(info)
                continue
            found = case_variant_keys(ctx.engine.infer_schema(ctx.storage, [info], ctx.ingestion.spec.format), columns)
            if not found:
                kept.append(info)
                continue
            keys = ", ".join(f"'{key}' (column '{column}')" for key, column in found)
            self._quarantine(
                ctx,
                info,
                f"key {keys} differs from its column only by case; the {ctx.engine.name} engine reads keys by "
                "their exact spelling and would drop these values",
                "Rename the key in the producer, or move the ingestion to the embedded engine, which keeps such "
                "values in _rescued_data; the file is picked up again once it changes.",
            )
        return kept

    @staticmethod
    def _file_schemas(
        ctx: _RunContext, files: list[FileInfo], table_schema: pa.Schema, ignored: frozenset[str]
    ) -> tuple[dict[str, pa.Schema], set[str]]:
        """Each file's schema for the check against the table, inferred in groups where that reads as much of
        each file as inferring it alone: a group whose unified schema the policy takes holds no file with a change
        (each member's types are at or below the group's on the lattice), so only the files of a group with a change
        are inferred one by one, to find which to hold. One Arrow call per group instead of per file: on 1,000-file
        batches of small JSON files, 14 s of a 25 s load of 10,000 files was this check (bench_scaling).

        Also the paths of files that may spell a key differently from its column by case, for an engine that would
        drop such values (the members of a group that does, and files inferred alone that do)."""
        from core.engines.inference import case_variant_keys, check_groups
        from core.schema import classify

        spec = ctx.ingestion.spec
        careful = ctx.engine.drops_case_variants(spec.format)
        groups, alone = check_groups(files, spec.format)
        schemas: dict[str, pa.Schema] = {}
        suspects: set[str] = set()
        for group in groups:
            result = ctx.engine.infer_schema(ctx.storage, group, spec.format)
            members = [info for info in group if info.path not in result.bad_files]
            if careful and case_variant_keys(result, table_schema):
                suspects.update(info.path for info in members)
            checked = result.checked_schema
            if classify(spec.format.schema_.on_schema_change, table_schema, {"": checked}, ignored).held:
                alone.extend(members)
            else:
                schemas.update((info.path, checked) for info in members)
        if alone:
            each = ctx.engine.infer_each(ctx.storage, alone, spec.format)
            schemas.update(each)
            if careful:
                suspects.update(path for path, got in each.items() if case_variant_keys(InferResult(got), table_schema))
        return schemas, suspects

    def _guarded(
        self, ctx: _RunContext, files: list[FileInfo], infer: Callable[[list[FileInfo]], T]
    ) -> tuple[list[FileInfo], T]:
        """`infer(files)`, surviving a reader that crashes on one file's content (not a BadFileError, which
        inference skips by itself), which would otherwise fail every run: the files are then tried one by one,
        those that crash are quarantined, and the rest inferred again."""
        try:
            return files, infer(files)
        except AutoloaderError:
            raise
        except Exception:
            log.info("schema inference of %s file(s) crashed; trying them one by one", len(files), exc_info=True)
        readable = []
        for info in files:
            try:
                infer([info])
            except AutoloaderError:
                raise
            except Exception as exc:
                bad = unreadable_file(info.path, exc)
                self._quarantine(ctx, info, bad.message, bad.action)
                continue
            readable.append(info)
        return readable, infer(readable)

    def _hold(
        self,
        ctx: _RunContext,
        files: list[FileInfo],
        split: Classification,
        table_schema: pa.Schema,
        schemas: dict[str, pa.Schema],
    ) -> None:
        """Pause policy: keep files with an unreviewed schema change out of the table and ask for a decision."""
        from core.formats import nulls_to_table_types, unify_schemas
        from core.formats.types import schema_from_json, schema_to_json
        from core.schema import classify, decide

        ingestion = ctx.ingestion
        counts = ctx.engine.count_records(ctx.storage, files, ingestion.spec.format)
        entries = [
            LedgerEntry(
                f.path,
                f.size,
                f.modified,
                f.etag,
                FileStatus.HELD,
                records=counts.get(f.path, 0),
                error="held for schema review",
            )
            for f in files
        ]
        self.store.upsert_files(ingestion.id, ctx.run_id, entries)
        held = [schemas[f.path] for f in files]
        earlier = self.store.pending_schema_columns(ingestion.id)
        if earlier is not None:  # files held before wait in the same review: the proposal is for them all
            held.insert(0, schema_from_json(earlier))
        incoming = nulls_to_table_types(unify_schemas(held), table_schema)
        proposed = decide("auto_merge", table_schema, incoming).target
        settings = ingestion.spec.format.schema_
        ignored = frozenset(settings.ignored_columns)
        blocking = classify(settings.on_schema_change, table_schema, {"": incoming}, ignored).blocking
        self.store.record_pending_schema(
            ingestion.id,
            schema_to_json(proposed),
            [c.as_dict() for c in [*split.blocking, *blocking]],
            [
                {
                    "path": f.path,
                    "records": counts.get(f.path, 0),
                    "changes": [c.describe() for c in split.held[f.path]],
                }
                for f in files
            ],
        )
        self.store.set_ingestion_status(ingestion.id, IngestionStatus.NEEDS_REVIEW)
        ctx.held_files += len(files)
        ctx.notes.append(
            f"{counted(len(files), 'file')} held for schema review ({'; '.join(c.describe() for c in split.blocking)})"
        )

    def _load_batch_despite_conflicts(self, ctx: _RunContext, files: list[FileInfo], seq: int, mode: str) -> None:
        """Load the batch; written again when another writer's commit got in first in a way both cannot stand
        (ConcurrentCommit: nothing was committed, the batch was dropped from the ledger), planned again against the
        table as it now is, without the files this attempt already set aside. Found with two ingestions creating
        one table at once: the one whose commit came second failed on the other's new column."""
        for attempt in range(1, COMMIT_CONFLICT_ATTEMPTS + 1):
            try:
                self._load_batch(ctx, files, seq, mode)
                break
            except ConcurrentCommit as exc:
                if attempt == COMMIT_CONFLICT_ATTEMPTS:
                    raise ConcurrentCommit(
                        f"{exc.message} Batch {seq} lost to other writers' commits {attempt} times in a row.",
                        "Nothing to do: the run is retried by itself. If it repeats, give the table's writers "
                        "schedules that do not overlap.",
                        detail=exc.detail,
                    ) from exc
                log.info("batch %s of %s written again: %s", seq, ctx.ingestion.name, exc.message)
                files = self._not_set_aside(ctx, files)
                if not files:
                    break
        if attempt > 1:
            ctx.notes.append(f"batch {seq} was written again: another writer's commit to the table got in first")

    def _not_set_aside(self, ctx: _RunContext, files: list[FileInfo]) -> list[FileInfo]:
        """The batch's files the ledger has no final word on (new, or a changed file being reloaded): those an
        attempt quarantined, failed or held are not loaded again in this run."""
        known = self.store.known_files(ctx.ingestion.id)
        return [f for f in files if f.path not in known or f.path in ctx.reloads]

    def _load_batch(self, ctx: _RunContext, files: list[FileInfo], seq: int, mode: str) -> None:
        from core.formats.csv_reader import one_column_hint
        from core.formats.names import renamed_note
        from core.formats.types import schema_to_json
        from core.schema import adds_inside_structs, decide

        spec = ctx.ingestion.spec
        table_schema = ctx.engine.table_schema(spec.destination)
        self._set_windows(ctx, files)
        files, incoming = self._incoming_schema(ctx, files, table_schema)
        files = self._without_unopened(ctx, files)
        if not files:
            return
        nested = table_schema is not None and adds_inside_structs(table_schema, incoming)
        nested = nested and ctx.engine.adds_nested_fields(spec.destination)  # asks the cluster only when needed
        decision = decide(spec.format.schema_.on_schema_change, table_schema, incoming, nested)
        if decision.action == "fail":
            raise SchemaChangeError(
                f"The new files' schema differs from table {spec.destination.full_name}: {decision.message}.",
                "Review the change: switch the schema policy to pause, auto_merge or rescue, or fix the producer.",
            )
        if decision.widen:
            ctx.engine.widen_columns(spec.destination, decision.widen)
        while True:
            entries = [self._pending_entry(ctx, f) for f in files]
            self.store.add_pending_batch(ctx.ingestion.id, ctx.run_id, seq, entries)
            crash_point("after_pending")
            self._delete_replaced_rows(ctx, files)
            request = BatchRequest(
                app_id=ctx.ingestion.app_id,
                batch_seq=seq,
                run_id=ctx.run_id,
                files=[self._read_view(ctx, f) for f in files],
                storage=ctx.storage,
                format=spec.format,
                destination=spec.destination,
                schema=decision.target,
                evolve=decision.action == "evolve",
                ignored_columns=frozenset(spec.format.schema_.ignored_columns),
                incoming=incoming,
                mode=mode,
                ingested_at=ctx.ingested_at,
                max_bad_record_ratio=spec.quality.max_bad_record_ratio,
                on_file_done=self._progress_callback(ctx),
                replace=ctx.refreshing,
            )
            request.before_commit = partial(self._before_commit, ctx, list(files), request.outcomes)
            try:
                result = ctx.engine.load_batch(request)
            except BadFileError as exc:
                # A file failed half-way: nothing was committed. Set it aside and retry the rest.
                self.store.drop_pending_batch(ctx.ingestion.id, seq, ctx.run_id)
                bad = next((f for f in files if f.path == exc.field), None)
                if bad is None:
                    raise
                self._quarantine(ctx, bad, exc.message, exc.action)
                files = [f for f in files if f is not bad]
                if not files:
                    return
                continue
            except TooManyBadRecords as exc:
                # Nothing was committed: set aside the files that pushed the batch over, load the rest.
                self.store.drop_pending_batch(ctx.ingestion.id, seq, ctx.run_id)
                offenders = set(bad_record_offenders(exc.files, spec.quality.max_bad_record_ratio))
                if not offenders or offenders.isdisjoint(f.path for f in files):
                    self._fail_files(ctx, files, exc.message)
                    raise
                for info in files:
                    if info.path in offenders:
                        bad_count, read = exc.files[info.path]
                        self._quarantine(
                            ctx,
                            info,
                            f"{bad_count} of {read} records are malformed, over the limit of "
                            f"{spec.quality.max_bad_record_ratio:.0%} (quality.max_bad_record_ratio); "
                            "nothing of this file was loaded.",
                            "Fix the file at the source (it is retried when it changes), or raise "
                            "quality.max_bad_record_ratio and reprocess it.",
                        )
                files = [f for f in files if f.path not in offenders]
                if not files:
                    return
                continue
            except BaseException as exc:
                if not self._committed_despite(ctx, seq, exc):
                    raise
                result = BatchResult(outcomes=dict(request.outcomes), already_committed=True)
            break
        crash_point("after_commit")
        if result.already_committed:
            if spec.destination.write_mode == "overwrite":
                ctx.engine.settle_overwrite(spec.destination, ctx.ingestion.app_id, seq)
            result.outcomes = self._committed_outcomes(ctx, files, result.outcomes)
        self._complete(ctx, files, seq, result.outcomes)
        crash_point("after_ledger")
        if not result.written:
            return
        if decision.action == "evolve" and (renamed := renamed_note(incoming)) and renamed not in ctx.notes:
            ctx.notes.append(renamed)
        created = table_schema is None or result.created_table
        if created and (hint := one_column_hint(decision.target, spec.format)):
            ctx.notes.append(f"table {spec.destination.full_name} was created with one column: {hint}")
        ctx.notes.extend(n for n in decision.notes if n not in ctx.notes)
        # The ingestion's first load starts its schema history, also into a table it created in a run killed
        # before loading (that run's batch is then fenced: this is not the table's first batch) or another's table.
        first_load = not ctx.loaded_before and not ctx.wrote_data and not ctx.refreshing
        if created or first_load or (decision.action == "evolve" and decision.changes):
            reason = "table created" if created else "first load into the table" if first_load else decision.message
            self.store.record_schema_version(ctx.ingestion.id, schema_to_json(decision.target), reason)
        if result.engine_job_id:
            self.store.set_engine_job_id(ctx.run_id, result.engine_job_id)
        ctx.metrics.bytes_read += result.bytes_read
        ctx.metrics.bytes_written += result.bytes_written
        ctx.metrics.batches_committed += 1
        ctx.wrote_data = True
        self._store_progress(ctx, ctx.files_done)

    @staticmethod
    def _committed_outcomes(
        ctx: _RunContext, files: list[FileInfo], known: dict[str, FileOutcome]
    ) -> dict[str, FileOutcome]:
        """The outcomes of a batch found committed: as the engine decided them where it got that far (a file it set
        aside stays set aside), else counted in the table by `_source_file`."""
        missing = [f.path for f in files if f.path not in known]
        counts = ctx.engine.count_rows_from(ctx.ingestion.spec.destination, missing, ctx.run_id) if missing else {}
        return {f.path: known.get(f.path) or FileOutcome(records=counts.get(f.path, 0)) for f in files}

    def _committed_despite(self, ctx: _RunContext, seq: int, exc: BaseException) -> bool:
        """A write can fail after its commit became durable: the answer to the commit was lost on the network, or
        the store went down before the table was read back. Dropping the batch then loads its files twice, so the
        table is asked. True: the batch is in the table (kept, with a note). False: it is not (dropped, the files go
        back to new). If the table cannot be asked, or the process is stopping, the batch stays pending and the next
        run's `_reconcile` settles it, as after a crash."""
        if not isinstance(exc, Exception):
            return False
        destination, app_id = ctx.ingestion.spec.destination, ctx.ingestion.app_id
        try:
            committed = ctx.engine.committed_version(destination, app_id) or 0
            lacks = committed < seq or ctx.engine.is_fence(destination, app_id, seq)  # a fence holds no rows
        except Exception as probe:  # any failure to ask leaves the batch for the next run
            log.warning(
                "batch %s of %s left pending: the table could not be asked (%s)", seq, ctx.ingestion.name, probe
            )
            return False
        if lacks:
            self.store.drop_pending_batch(ctx.ingestion.id, seq, ctx.run_id)
            return False
        log.warning("batch %s of %s was committed although the write failed: %r", seq, ctx.ingestion.name, exc)
        ctx.notes.append(f"batch {seq} reached the table although the write reported an error; it was kept once")
        return True

    def _set_windows(self, ctx: _RunContext, files: list[FileInfo]) -> None:
        """Under reload_changed_files a line-based file is read up to its listed size only (the bytes the ledger
        records and hashes), and an appended file from where its loaded version ended."""
        fmt = ctx.ingestion.spec.format
        if ctx.tracked is None or not ctx.ingestion.spec.source.reload_changed_files or not is_line_based(fmt):
            return
        for info in files:
            reload = ctx.reloads.get(info.path)
            if reload is not None and reload.tail_from is not None:
                ctx.tracked.windows[info.path] = Window(reload.tail_from, info.size, reload.header, reload.seed)
            else:
                ctx.tracked.windows[info.path] = Window(0, info.size)

    @staticmethod
    def _read_view(ctx: _RunContext, info: FileInfo) -> FileInfo:
        """The file as the engine reads it: an appended file's size is that of its new bytes (and header)."""
        reload = ctx.reloads.get(info.path)
        if reload is None or reload.tail_from is None:
            return info
        return FileInfo(info.path, len(reload.header) + info.size - reload.tail_from, info.modified, info.etag)

    @staticmethod
    def _pending_entry(ctx: _RunContext, info: FileInfo) -> LedgerEntry:
        """The intent for one file; a reload keeps the loaded version's size and etag so that an uncommitted
        batch puts the file back as it was (MetadataStore.drop_pending_batch)."""
        reload = ctx.reloads.get(info.path)
        return LedgerEntry(
            info.path,
            info.size,
            info.modified,
            info.etag,
            FileStatus.PENDING,
            previous_size=reload.previous_size if reload else None,
            previous_etag=reload.previous_etag if reload else None,
        )

    @staticmethod
    def _delete_replaced_rows(ctx: _RunContext, files: list[FileInfo]) -> None:
        """Before a batch that reloads changed files in full, delete their earlier rows.

        This delete is a Delta commit of its own, before the batch's: not atomic with it. A crash in between
        leaves the rows deleted and the batch uncommitted; reconciliation then drops the batch, which puts the
        file's ledger row back to the loaded version, so the next run sees the change again, deletes (nothing
        left) and loads the file: no duplicates, and no loss once that run ends."""
        replaced = [f.path for f in files if (r := ctx.reloads.get(f.path)) is not None and r.tail_from is None]
        delete_rows_from = getattr(ctx.engine, "delete_rows_from", None)  # present: see _check_can_reload
        if replaced and delete_rows_from is not None:
            delete_rows_from(ctx.ingestion.spec.destination, replaced)

    def _fail_files(self, ctx: _RunContext, files: list[FileInfo], reason: str) -> None:
        failed = [LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.FAILED, error=reason) for f in files]
        self.store.upsert_files(ctx.ingestion.id, ctx.run_id, failed)

    @staticmethod
    def _content_hashes(ctx: _RunContext, files: list[FileInfo]) -> dict[str, str]:
        """sha256 of each loaded line-based file's bytes up to its listed size as the load read them
        (`TrackedStorage.loaded_hashes`), under reload_changed_files: what tells an append-only growth later. A file
        the run did not read whole through its window has none, and is replaced whole if it changes."""
        if ctx.tracked is None or not ctx.ingestion.spec.source.reload_changed_files:
            return {}
        hashes = ctx.tracked.loaded_hashes
        return {info.path: hashes[info.path] for info in files if info.path in hashes}

    def _complete(self, ctx: _RunContext, files: list[FileInfo], seq: int, outcomes: dict[str, FileOutcome]) -> None:
        loaded = [f for f in files if not outcomes.get(f.path, FileOutcome()).quarantine_reason]
        digests = self._content_hashes(ctx, loaded)
        results: dict[str, FileResult] = {}
        # First (unless done before the commit): a crash before complete_batch must not let reconciliation mark them
        # loaded.
        self._record_set_aside(ctx, files, outcomes)
        for info in files:
            outcome = outcomes.get(info.path, FileOutcome())
            if outcome.quarantine_reason:
                continue
            reload = ctx.reloads.get(info.path)
            earlier = reload.previous_records if reload is not None and reload.tail_from is not None else 0
            results[info.path] = FileResult(
                FileStatus.LOADED,
                earlier + outcome.records,
                outcome.bad_records,
                content_hash=digests.get(info.path),
            )
            ctx.metrics.files_processed += 1
            ctx.metrics.records_ingested += outcome.records
            ctx.metrics.bad_records += outcome.bad_records
            if outcome.bad_records:
                ctx.errors.append(
                    malformed_error(info.path, outcome.bad_records, ctx.ingestion.spec.format.options.mode)
                )
        self.store.complete_batch(ctx.ingestion.id, seq, results, ctx.run_id)
        ctx.files_settled += len(files)
        ctx.files_done = ctx.files_settled

    def _before_commit(self, ctx: _RunContext, files: list[FileInfo], outcomes: dict[str, FileOutcome]) -> None:
        """The engines call this right before the table commit: the run must still be this server's (a run paused
        past the stale window and settled by another server committed its batch when it woke, over the batch the
        other server's retry had recorded under the same number: files lost and others loaded twice); then the
        files set aside are recorded."""
        self.store.check_run_live(ctx.run_id)
        self._record_set_aside(ctx, files, outcomes)

    def _record_set_aside(self, ctx: _RunContext, files: list[FileInfo], outcomes: dict[str, FileOutcome]) -> None:
        """Before the commit: the files the engine set aside, in the ledger out of the pending batch and noted on
        the run. A run killed after the commit left them pending, and the next run's `_reconcile` recorded them
        loaded (never retried, even once fixed); a commit that then fails leaves them set aside, and said."""
        aside = []
        for info in files:
            outcome = outcomes.get(info.path, FileOutcome())
            if outcome.quarantine_reason and info.path not in ctx.recorded_aside:
                status = self._set_aside(ctx, info.path, outcome.quarantine_reason, outcome.action)
                aside.append(self._aside_entry(ctx, info, status, outcome.quarantine_reason))
        if aside:
            self.store.upsert_files(ctx.ingestion.id, ctx.run_id, aside)
            ctx.recorded_aside.update(entry.path for entry in aside)

    def _quarantine(self, ctx: _RunContext, info: FileInfo, reason: str, action: str) -> None:
        status = self._set_aside(ctx, info.path, reason, action)
        self.store.upsert_files(ctx.ingestion.id, ctx.run_id, [self._aside_entry(ctx, info, status, reason)])

    @staticmethod
    def _aside_entry(ctx: _RunContext, info: FileInfo, status: FileStatus, reason: str) -> LedgerEntry:
        """The ledger row of a file set aside. An appended file's earlier rows are still in the table, so its
        row keeps that version (the next attempt is a reload); a replaced file's rows were deleted before the
        batch, so its row is that of a file never loaded."""
        reload = ctx.reloads.get(info.path)
        kept = reload if reload is not None and reload.tail_from is not None else None
        return LedgerEntry(
            info.path,
            info.size,
            info.modified,
            info.etag,
            status,
            error=reason,
            records=kept.previous_records if kept else 0,
            previous_size=kept.previous_size if kept else None,
            previous_etag=kept.previous_etag if kept else None,
        )

    def _set_aside(self, ctx: _RunContext, path: str, reason: str, action: str) -> FileStatus:
        """Note a file the batch could not read and return its ledger status: gone since the listing, rewritten
        since (SourceChanged) or not readable (permissions) → `failed`, tried again whenever it is listed; bad
        content, or an object the store refuses to serve as it is (S3 SSE-C) → `quarantined`, tried again once it
        changes."""
        cause = ctx.tracked.open_failures.get(path) if ctx.tracked is not None else None
        if cause is None or isinstance(cause, FileRefused):
            self._note_quarantine(ctx, path, reason, action)
            return FileStatus.QUARANTINED
        if isinstance(cause, SourceNotFound):
            ctx.vanished += 1
            kind = "file_vanished"
        elif isinstance(cause, SourceChanged):
            ctx.rewritten += 1
            kind = "file_rewritten"
        else:
            ctx.unreadable += 1
            kind = "file_unreadable"
        _note_file_error(ctx, RunError(kind=kind, file=path, message=reason, action=action))
        return FileStatus.FAILED

    def _note_quarantine(self, ctx: _RunContext, path: str, reason: str, action: str) -> None:
        ctx.metrics.files_quarantined += 1
        _note_file_error(ctx, RunError(kind="quarantined", file=path, message=reason, action=action))

    def _store_progress(self, ctx: _RunContext, files_done: int) -> None:
        self.store.update_run_progress(ctx.run_id, files_done, ctx.files_total, ctx.metrics)
        self._announce(ctx.ingestion.id)

    def _announce(self, ingestion_id: int | None) -> None:
        if self.on_progress is None or ingestion_id is None:
            return
        try:
            self.on_progress(ingestion_id)
        except Exception:  # a listener's failure is not the run's
            log.exception("progress listener failed for ingestion %s", ingestion_id)

    def _progress_callback(self, ctx: _RunContext) -> Callable[[FileInfo], None]:
        last = [time.monotonic()]

        def on_file_done(_: FileInfo) -> None:
            ctx.files_done += 1
            now = time.monotonic()
            if now - last[0] >= self.progress_interval:
                last[0] = now
                self._store_progress(ctx, ctx.files_done)

        return on_file_done

    # --- run slot and liveness ---------------------------------------------------------------------
    def _claim(self, ingestion_id: int, run_id: int) -> bool:
        if self.store.claim_run_slot(ingestion_id, run_id):
            return True
        active = self.store.active_run(ingestion_id)
        if active is None:
            return self.store.claim_run_slot(ingestion_id, run_id)
        reason = why_dead(active, self.stale_after, datetime.now(UTC))
        if reason is None:
            return False
        if not self.store.claim_run_slot(ingestion_id, run_id, expected=active.run_id):
            return False
        error = interrupted(reason, f"Nothing to do: run {run_id} reconciles the table and the file ledger.")
        self.store.finish_run(active.run_id, RunStatus.FAILED, RunMetrics(), [error], f"Interrupted: {reason}.")
        return True

    def _heartbeat(self, run_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                self.store.heartbeat(run_id)
            except Exception as exc:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for run %s failed: %s", run_id, str(exc).strip().split("\n")[0][:300])


MISFIT_ACTION = (
    "Fix the producer and replace the file, or switch the schema policy to pause, auto_merge or rescue; the file is "
    "tried again at every run."
)


def _note_file_error(ctx: _RunContext, error: RunError) -> None:
    """List a file's error on the run, up to FILE_ERRORS_LISTED of its kind."""
    ctx.listed_errors[error.kind] += 1
    if ctx.listed_errors[error.kind] <= FILE_ERRORS_LISTED:
        ctx.errors.append(error)
