"""Runs on request: start one now (API, console, CLI), retry a failed one, reprocess a selection of files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.repository import SqlStore
from app.runner import Runner
from core.access import SYSTEM, Principal, require_owner
from core.domain import Ingestion, IngestionStatus, RunOutcome, RunStatus
from core.errors import ConfigError, Conflict, RunInProgress, SourceNotFound
from core.pipeline import owner_is_dead
from core.storage.base import Storage

_FORGET_CHUNK = 5_000  # paths per statement (SQLite caps bound parameters)
RETRYABLE = (RunStatus.FAILED.value, RunStatus.PARTIAL.value, RunStatus.CANCELLED.value)


class RunService:
    def __init__(self, store: SqlStore, runner: Runner, stale_after: timedelta):
        self.store = store
        self.runner = runner
        self.stale_after = stale_after

    def check_runnable(self, ingestion: Ingestion) -> None:
        if ingestion.status == IngestionStatus.PAUSED:
            raise Conflict(f"'{ingestion.name}' is paused.", "Resume it first (POST …/resume), then run it.")
        if ingestion.status == IngestionStatus.DRAFT:
            raise Conflict(f"'{ingestion.name}' is a draft.", "Activate it first (POST …/activate), then run it.")
        active = self.store.active_run(ingestion.id)
        if active is not None and not owner_is_dead(active, self.stale_after, datetime.now(UTC)):
            raise RunInProgress(
                f"{active.label.capitalize()} of '{ingestion.name}' is still in progress.",
                "Wait for it to finish; its progress is on the run record.",
            )

    def _runnable(self, who: Principal, ingestion_id: int) -> Ingestion:
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "run ingestions")
        self.check_runnable(ingestion)
        return ingestion

    def trigger(self, ingestion_id: int, trigger: str = "manual", who: Principal = SYSTEM) -> int:
        """Queue a run in the background and return its id at once."""
        self._runnable(who, ingestion_id)
        run_id = self.store.create_run(ingestion_id, trigger)
        self.store.audit("run", "ingestion", ingestion_id, who.actor, who.tenant_id, run_id=run_id, trigger=trigger)
        self.runner.submit(ingestion_id, run_id)
        return run_id

    def run_now(self, id_or_name: str, trigger: str = "cli", who: Principal = SYSTEM) -> RunOutcome:
        """Run in this thread until the run ends (the CLI: an id, or a name within the tenant)."""
        ingestion = self.store.find_ingestion(id_or_name, who.tenant_id)
        require_owner(who, ingestion.created_by, "run ingestions")
        self.check_runnable(ingestion)
        run_id = self.store.create_run(ingestion.id, trigger)
        self.store.audit("run", "ingestion", ingestion.id, "cli", who.tenant_id, run_id=run_id, trigger=trigger)
        return self.runner.run_inline(ingestion.id, run_id)

    def retry(self, ingestion_id: int, run_id: int, who: Principal = SYSTEM) -> int:
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "run ingestions")  # before the run's status says it exists
        run = self.store.get_run(ingestion_id, run_id)
        if run.status not in RETRYABLE:
            raise Conflict(f"Run {run_id} is {run.status}; only failed runs can be retried.", "Pick a failed run.")
        return self.trigger(ingestion_id, "retry", who)

    def reprocess(
        self,
        ingestion_id: int,
        paths: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        who: Principal = SYSTEM,
    ) -> tuple[int, int]:
        """Load a selection of files again (by path or modification range): returns (files, run id).

        Only files still at the source are forgotten: a file that left it keeps its ledger row (its rows are
        still in the table), so it cannot load a second time if it comes back. Naming such a file is refused."""
        if paths is None and since is None and until is None:
            raise ConfigError(
                "Reprocessing needs a selection.", "Give file paths, or a modified since/until range.", field="paths"
            )
        ingestion = self._runnable(who, ingestion_id)
        storage = self.runner.pipeline.storage_for(ingestion.spec.source)
        if paths is not None:
            gone = [path for path in paths if not _at_source(storage, path)]
            if gone:
                shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
                raise Conflict(
                    f"Cannot reprocess {shown}: no longer at the source {ingestion.spec.source.path}. "
                    "Nothing was changed.",
                    "Put the file back at the source first, or leave it out of the selection; its rows stay in the "
                    "table either way.",
                )
        else:
            present = [
                f.path
                for f in storage.list_files(ingestion.spec.source.file_pattern)
                if (since is None or f.modified >= since) and (until is None or f.modified < until)
            ]
            paths = present
        count = sum(
            self.store.forget_files(ingestion_id, paths[i : i + _FORGET_CHUNK], since, until)
            for i in range(0, len(paths), _FORGET_CHUNK)
        )
        self.store.audit(
            "reprocess",
            "ingestion",
            ingestion_id,
            who.actor,
            who.tenant_id,
            files=count,
            paths=paths,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
        )
        return count, self.trigger(ingestion_id, "backfill", who)


def _at_source(storage: Storage, path: str) -> bool:
    """Whether the source still holds this file (opening it is the one check every backend answers the same)."""
    try:
        with storage.open(path):
            return True
    except SourceNotFound:
        return False
