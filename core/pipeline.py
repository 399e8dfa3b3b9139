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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from core.config import IngestionSpec, SourceConfig
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
from core.engines.base import BatchRequest, Engine, FileOutcome
from core.errors import AutoloaderError, BadFileError, SchemaChangeError, TooManyBadRecords
from core.faults import crash_point
from core.formats import nulls_to_string, unify_schemas
from core.formats.names import renamed_note
from core.formats.types import schema_to_json
from core.live_runs import LIVE_RUNS
from core.ports import ActiveRun, MetadataStore
from core.schema import Classification, classify, data_fields, decide, without
from core.storage.base import FileInfo, Storage

log = logging.getLogger(__name__)

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
    if active.owner:
        host, _, pid = active.owner.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid():
                return active.run_id not in LIVE_RUNS
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except PermissionError:  # alive, under another user: its heartbeat decides
                pass
    if active.heartbeat_at is None:
        return True
    beat = active.heartbeat_at if active.heartbeat_at.tzinfo else active.heartbeat_at.replace(tzinfo=UTC)
    return now - beat > stale_after


def should_load(seen: KnownFile | None, info: FileInfo, reload_changed: bool) -> bool:
    """The ledger rule: new and failed files load; a changed file (new etag) reloads only when asked,
    except a quarantined one, which is retried once the producer has replaced it."""
    if seen is None or seen.status == FileStatus.FAILED:
        return True
    if seen.status in (FileStatus.PENDING, FileStatus.SKIPPED) or seen.etag == info.etag:
        return False
    return seen.status == FileStatus.QUARANTINED or reload_changed


def select_new_files(listing: Iterator[FileInfo], known: dict[str, KnownFile], spec: IngestionSpec) -> list[FileInfo]:
    """The files this run should load, oldest first."""
    since = spec.schedule.backfill.since if spec.schedule.backfill.mode == "since" else None
    reload_changed = spec.source.reload_changed_files
    selected = [
        info
        for info in listing
        if should_load(known.get(info.path), info, reload_changed)
        and not (since is not None and info.path not in known and info.modified < since)
    ]
    selected.sort(key=lambda f: (f.modified, f.path))
    return selected


def skipped_note(skipped: dict[str, str], shown: int = 3) -> str:
    """The run message's note on files the listing left out on purpose (they are not in the ledger)."""
    items = sorted(skipped.items())
    parts = [f"{path} skipped: {reason}" for path, reason in items[:shown]]
    if len(items) > shown:
        parts.append(f"and {len(items) - shown} more skipped")
    return "; ".join(parts)


def sampled_note(paths: list[str], sample_bytes: int) -> str:
    """The run message's note on files whose schema was inferred from their beginning only."""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3:,} more" if len(paths) > 3 else "")
    size = f"{sample_bytes // (1024 * 1024)} MiB" if sample_bytes >= 1024 * 1024 else f"{sample_bytes // 1024} KiB"
    return (
        f"schema inferred from the first {size} of {len(paths):,} larger file(s) ({shown}); "
        "later values that do not fit go to _rescued_data"
    )


def malformed_error(path: str, count: int, mode: str) -> RunError:
    """The run error for a file's malformed records: kept in _rescued_data, or dropped under dropmalformed."""
    if mode == "dropmalformed":
        return RunError(
            kind="malformed_records",
            file=path,
            message=f"{count} malformed record(s) dropped (mode dropmalformed).",
            action="Set the format's mode to permissive to keep them in _rescued_data, or fix the producer.",
        )
    return RunError(
        kind="malformed_records",
        file=path,
        message=f"{count} malformed record(s) kept in _rescued_data.",
        action="Query the table's _rescued_data column for this file to see the raw text.",
    )


def plan_batches(files: list[FileInfo], spec: IngestionSpec) -> list[list[FileInfo]]:
    """Cut the files into batches bounded by file count and bytes; overwrite runs are one batch."""
    if spec.destination.write_mode == "overwrite":
        return [files] if files else []
    batches: list[list[FileInfo]] = []
    current: list[FileInfo] = []
    size = 0
    for info in files:
        if current and (
            len(current) >= spec.limits.max_files_per_batch or size + info.size > spec.limits.max_bytes_per_batch
        ):
            batches.append(current)
            current, size = [], 0
        current.append(info)
        size += info.size
    if current:
        batches.append(current)
    return batches


@dataclass(slots=True)
class _RunContext:
    ingestion: Ingestion
    run_id: int
    started: float
    ingested_at: datetime
    engine: Engine = field(init=False)  # set once built: building them can fail, and that failure is recorded
    storage: Storage = field(init=False)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    errors: list[RunError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_total: int = 0
    files_done: int = 0
    files_settled: int = 0
    held_files: int = 0
    wrote_data: bool = False


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
    ):
        self.store = store
        self.engine_for = engine_for
        self.storage_for = storage_for
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = stale_after
        self.progress_interval = progress_interval
        self.owner = process_owner()

    # --- entry point ----------------------------------------------------------------------------
    def execute(self, ingestion_id: int, run_id: int) -> RunOutcome:
        """Run one queued run to its end. Never raises for run-level failures: they end up in the record."""
        # Live in this process before its row names this process as owner, until its end is written (or the DB
        # stayed down past the run's retry budget): see `owner_is_dead`.
        LIVE_RUNS.add(run_id)
        try:
            ingestion = self.store.get_ingestion(ingestion_id)
            # Owner and heartbeat are on the run before it takes the slot: a run seen in the slot is never
            # mistaken for one left behind by a dead process.
            self.store.mark_run_started(run_id, self.owner)
            if not self._claim(ingestion_id, run_id):
                active = self.store.active_run(ingestion_id)
                message = f"Skipped: run {active.run_id if active else '?'} of this ingestion is still in progress."
                self.store.finish_run(run_id, RunStatus.SKIPPED, RunMetrics(), [], message)
                return RunOutcome(run_id, RunStatus.SKIPPED, RunMetrics(), message=message)
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

    def _execute_claimed(self, ingestion: Ingestion, run_id: int) -> RunOutcome:
        transient = False
        started = time.monotonic()
        ctx = _RunContext(ingestion=ingestion, run_id=run_id, started=started, ingested_at=datetime.now(UTC))
        try:
            ctx.engine = self.engine_for(ingestion)
            ctx.storage = self.storage_for(ingestion.spec.source)
            status, message = self._run(ctx)
        except AutoloaderError as exc:
            status, message, transient = RunStatus.FAILED, exc.message, exc.transient
            ctx.errors.append(
                RunError(kind=exc.code, message=exc.message, action=exc.action, file=None, detail=exc.detail)
            )
        except Exception as exc:  # an internal fault must still end the run record
            log.exception("run %s of ingestion %s crashed", run_id, ingestion.id)
            status, message = RunStatus.FAILED, f"Internal error: {exc}"
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
        next_seq = self._reconcile(ctx)
        known = self.store.known_files(ctx.ingestion.id)
        new_files = select_new_files(ctx.storage.list_files(spec.source.file_pattern), known, spec)
        if ctx.storage.skipped:
            ctx.notes.append(skipped_note(ctx.storage.skipped))
        ctx.files_total = len(new_files)
        if not new_files:
            return RunStatus.SUCCESS, "No new files."
        self.store.update_run_progress(ctx.run_id, 0, ctx.files_total, ctx.metrics)
        for index, batch in enumerate(plan_batches(new_files, spec)):
            mode = spec.destination.write_mode
            if mode == "overwrite" and index > 0:
                mode = "append"
            self._load_batch(ctx, batch, next_seq, mode)
            next_seq += 1
        if ctx.wrote_data:
            ctx.engine.after_run(spec.destination)
        loaded = ctx.metrics.files_processed
        summary = f"Loaded {ctx.metrics.records_ingested:,} records from {loaded:,} files."
        if ctx.held_files:
            summary += f" {ctx.held_files} file(s) held for schema review."
        if ctx.metrics.files_quarantined:
            return RunStatus.PARTIAL, f"{summary} {ctx.metrics.files_quarantined} file(s) quarantined."
        return RunStatus.SUCCESS, summary

    def _reconcile(self, ctx: _RunContext) -> int:
        """Settle batches left `pending` by a dead run; return the next batch sequence to use."""
        ingestion, destination = ctx.ingestion, ctx.ingestion.spec.destination
        committed = ctx.engine.committed_version(destination, ingestion.app_id) or 0
        for seq, entries in sorted(self.store.pending_batches(ingestion.id).items()):
            if seq <= committed:
                if destination.write_mode == "overwrite":
                    ctx.engine.settle_overwrite(destination, ingestion.app_id, seq)
                counts = ctx.engine.count_rows_from(destination, [e.path for e in entries])
                results = {e.path: FileResult(FileStatus.LOADED, records=counts.get(e.path, 0)) for e in entries}
                self.store.complete_batch(ingestion.id, seq, results)
                ctx.notes.append(f"recovered batch {seq} ({len(entries)} files) committed by an interrupted run")
            else:
                self.store.drop_pending_batch(ingestion.id, seq)
                ctx.notes.append(f"re-queued {len(entries)} files of an interrupted run's uncommitted batch {seq}")
        return max(committed, self.store.max_batch_seq(ingestion.id)) + 1

    def _incoming_schema(
        self, ctx: _RunContext, files: list[FileInfo], table_schema: pa.Schema | None
    ) -> tuple[list[FileInfo], pa.Schema]:
        """The files to load now and their schema. Against an existing table every file is checked
        (not just a sample), so files with a change the policy does not take are held or fail the run."""
        spec = ctx.ingestion.spec
        settings = spec.format.schema_
        ignored = frozenset(settings.ignored_columns)
        if table_schema is None or settings.on_schema_change == "rescue" or settings.inference == "manual":
            inferred = ctx.engine.infer_schema(ctx.storage, files, spec.format)
            if inferred.sampled:
                ctx.notes.append(sampled_note(inferred.sampled, inferred.sample_bytes))
            return files, without(inferred.schema, ignored)
        schemas = ctx.engine.infer_each(ctx.storage, files, spec.format)
        split = classify(settings.on_schema_change, table_schema, schemas, ignored)
        if split.held and settings.on_schema_change == "fail":
            raise SchemaChangeError(
                f"{len(split.held)} new file(s) do not match table {spec.destination.full_name}: "
                + "; ".join(c.describe() for c in split.blocking),
                "Review the change: switch the schema policy to pause, auto_merge or rescue, or fix the producer.",
            )
        if split.held:
            self._hold(ctx, [f for f in files if f.path in split.held], split, table_schema, schemas)
        loadable = [f for f in files if f.path not in split.held]
        known = [without(schemas[f.path], ignored) for f in loadable if f.path in schemas]
        return loadable, nulls_to_string(unify_schemas(known)) if known else pa.schema(data_fields(table_schema))

    def _hold(
        self,
        ctx: _RunContext,
        files: list[FileInfo],
        split: Classification,
        table_schema: pa.Schema,
        schemas: dict[str, pa.Schema],
    ) -> None:
        """Pause policy: keep files with an unreviewed schema change out of the table and ask for a decision."""
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
        proposed = decide("auto_merge", table_schema, unify_schemas(schemas[f.path] for f in files)).target
        self.store.record_pending_schema(
            ingestion.id,
            schema_to_json(proposed),
            [c.as_dict() for c in split.blocking],
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
            f"{len(files)} file(s) held for schema review ({'; '.join(c.describe() for c in split.blocking)})"
        )

    def _load_batch(self, ctx: _RunContext, files: list[FileInfo], seq: int, mode: str) -> None:
        spec = ctx.ingestion.spec
        table_schema = ctx.engine.table_schema(spec.destination)
        files, incoming = self._incoming_schema(ctx, files, table_schema)
        if not files:
            return
        decision = decide(spec.format.schema_.on_schema_change, table_schema, incoming)
        if decision.action == "fail":
            raise SchemaChangeError(
                f"The new files' schema differs from table {spec.destination.full_name}: {decision.message}.",
                "Review the change: switch the schema policy to pause, auto_merge or rescue, or fix the producer.",
            )
        if decision.widen:
            ctx.engine.widen_columns(spec.destination, decision.widen)
        if decision.action == "evolve" and (renamed := renamed_note(incoming)) and renamed not in ctx.notes:
            ctx.notes.append(renamed)
        ctx.notes.extend(n for n in decision.notes if n not in ctx.notes)
        while True:
            entries = [LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.PENDING) for f in files]
            self.store.add_pending_batch(ctx.ingestion.id, ctx.run_id, seq, entries)
            crash_point("after_pending")
            request = BatchRequest(
                app_id=ctx.ingestion.app_id,
                batch_seq=seq,
                run_id=ctx.run_id,
                files=files,
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
            )
            try:
                result = ctx.engine.load_batch(request)
            except BadFileError as exc:
                # A file failed half-way: nothing was committed. Quarantine it and retry the rest.
                self.store.drop_pending_batch(ctx.ingestion.id, seq)
                bad = next((f for f in files if f.path == exc.field), None)
                if bad is None:
                    raise
                self._quarantine(ctx, bad, exc.message, exc.action)
                files = [f for f in files if f is not bad]
                if not files:
                    return
                continue
            except TooManyBadRecords as exc:
                self.store.drop_pending_batch(ctx.ingestion.id, seq)
                failed = [
                    LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.FAILED, error=exc.message) for f in files
                ]
                self.store.upsert_files(ctx.ingestion.id, ctx.run_id, failed)
                raise
            except BaseException:
                self.store.drop_pending_batch(ctx.ingestion.id, seq)
                raise
            break
        crash_point("after_commit")
        if result.already_committed:
            counts = ctx.engine.count_rows_from(spec.destination, [f.path for f in files])
            result.outcomes = {f.path: FileOutcome(records=counts.get(f.path, 0)) for f in files}
        self._complete(ctx, files, seq, result.outcomes)
        crash_point("after_ledger")
        if decision.action == "evolve" and (table_schema is None or decision.changes):
            reason = "table created" if table_schema is None else decision.message
            self.store.record_schema_version(ctx.ingestion.id, schema_to_json(decision.target), reason)
        if result.engine_job_id:
            self.store.set_engine_job_id(ctx.run_id, result.engine_job_id)
        ctx.metrics.bytes_read += result.bytes_read
        ctx.metrics.bytes_written += result.bytes_written
        ctx.metrics.batches_committed += 1
        ctx.wrote_data = True
        self.store.update_run_progress(ctx.run_id, ctx.files_done, ctx.files_total, ctx.metrics)

    def _complete(self, ctx: _RunContext, files: list[FileInfo], seq: int, outcomes: dict[str, FileOutcome]) -> None:
        results: dict[str, FileResult] = {}
        for info in files:
            outcome = outcomes.get(info.path, FileOutcome())
            if outcome.quarantine_reason:
                results[info.path] = FileResult(FileStatus.QUARANTINED, error=outcome.quarantine_reason)
                self._note_quarantine(ctx, info.path, outcome.quarantine_reason, outcome.action)
                continue
            results[info.path] = FileResult(FileStatus.LOADED, outcome.records, outcome.bad_records)
            ctx.metrics.files_processed += 1
            ctx.metrics.records_ingested += outcome.records
            ctx.metrics.bad_records += outcome.bad_records
            if outcome.bad_records:
                ctx.errors.append(
                    malformed_error(info.path, outcome.bad_records, ctx.ingestion.spec.format.options.mode)
                )
        self.store.complete_batch(ctx.ingestion.id, seq, results)
        ctx.files_settled += len(files)
        ctx.files_done = ctx.files_settled

    def _quarantine(self, ctx: _RunContext, info: FileInfo, reason: str, action: str) -> None:
        entry = LedgerEntry(info.path, info.size, info.modified, info.etag, FileStatus.QUARANTINED, error=reason)
        self.store.upsert_files(ctx.ingestion.id, ctx.run_id, [entry])
        self._note_quarantine(ctx, info.path, reason, action)

    def _note_quarantine(self, ctx: _RunContext, path: str, reason: str, action: str) -> None:
        ctx.metrics.files_quarantined += 1
        ctx.errors.append(RunError(kind="quarantined", file=path, message=reason, action=action))

    def _progress_callback(self, ctx: _RunContext) -> Callable[[FileInfo], None]:
        last = [time.monotonic()]

        def on_file_done(_: FileInfo) -> None:
            ctx.files_done += 1
            now = time.monotonic()
            if now - last[0] >= self.progress_interval:
                last[0] = now
                self.store.update_run_progress(ctx.run_id, ctx.files_done, ctx.files_total, ctx.metrics)

        return on_file_done

    # --- run slot and liveness ---------------------------------------------------------------------
    def _claim(self, ingestion_id: int, run_id: int) -> bool:
        if self.store.claim_run_slot(ingestion_id, run_id):
            return True
        active = self.store.active_run(ingestion_id)
        if active is None:
            return self.store.claim_run_slot(ingestion_id, run_id)
        if not owner_is_dead(active, self.stale_after, datetime.now(UTC)):
            return False
        if not self.store.claim_run_slot(ingestion_id, run_id, expected=active.run_id):
            return False
        self.store.finish_run(
            active.run_id,
            RunStatus.FAILED,
            RunMetrics(),
            [
                RunError(
                    kind="interrupted",
                    message="The process running this run stopped before it finished (killed or crashed).",
                    action=f"Nothing to do: run {run_id} reconciled the table and the file ledger.",
                )
            ],
            "Interrupted.",
        )
        return True

    def _heartbeat(self, run_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                self.store.heartbeat(run_id)
            except Exception as exc:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for run %s failed: %s", run_id, str(exc).strip().split("\n")[0][:300])
