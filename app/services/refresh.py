"""Full refresh of an ingestion: its table is rebuilt from every file at the source, each loaded exactly once.

Beside reprocess (app/services/runs.py), which loads a selection again on top of the table (append adds its rows a
second time), a full refresh replaces the table's rows. The request only sets the ingestion's marker; the run that
sees it empties the file ledger and replaces the table with its first commit (core/pipeline.py
`_begin_full_refresh`, crash-safe with the Delta application transaction), so a refresh requested now and run
later, or cut off by a crash, still ends with every file in the table once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.db.repository import SqlStore
from app.services.engines import Engines
from app.services.runs import RunService
from core.access import SYSTEM, Principal, require_owner
from core.domain import Ingestion
from core.errors import Conflict, RunInProgress

TableRows = Callable[[Ingestion], "int | None"]
"""The table's row count now, where it is cheap to know (the embedded engine reads it from the Delta log)."""


@dataclass(slots=True)
class RefreshPreview:
    """What the confirmation states: what the table holds now, which a full refresh drops."""

    table: str
    files: int
    """Files loaded into the table (the ledger's `loaded` rows)."""
    records: int
    """Records loaded from those files."""
    rows: int | None
    """Rows in the table now (None where only the ledger's count is known: the Spark engine)."""
    pending: bool
    """A full refresh is already requested or under way."""

    @property
    def message(self) -> str:
        rows = f"{self.rows:,} rows" if self.rows is not None else f"{self.records:,} records"
        return (
            f"Table {self.table} holds {rows} from {self.files:,} files now. A full refresh drops them: the table is "
            "replaced by the rows of every file now at the source, each loaded exactly once."
        )


class FullRefreshService:
    def __init__(self, store: SqlStore, runs: RunService, table_rows: TableRows):
        self.store = store
        self.runs = runs
        self.table_rows = table_rows

    def preview(self, ingestion_id: int, who: Principal = SYSTEM) -> RefreshPreview:
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        files, records = self.store.loaded_totals(ingestion_id)
        return RefreshPreview(
            table=ingestion.spec.destination.full_name,
            files=files,
            records=records,
            rows=self.table_rows(ingestion),
            pending=self.store.full_refresh_marker(ingestion_id) is not None,
        )

    def request(self, ingestion_id: int, run_now: bool = True, who: Principal = SYSTEM) -> int | None:
        """Mark the ingestion for a full refresh; with `run_now` start the run that does it (its id is returned),
        else the next run does it. Refused while a run (or table maintenance) of the ingestion is in progress."""
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "run ingestions")
        if run_now:
            self.runs.check_runnable(ingestion)
        else:
            self._refuse_while_running(ingestion)
        preview = self.preview(ingestion_id, who)
        self.store.request_full_refresh(ingestion_id)
        self.store.audit(
            "full_refresh",
            "ingestion",
            ingestion_id,
            who.actor,
            who.tenant_id,
            table=preview.table,
            files_dropped=preview.files,
            rows_dropped=preview.rows if preview.rows is not None else preview.records,
            run_now=run_now,
        )
        return self.runs.trigger(ingestion_id, "manual", who) if run_now else None

    def _refuse_while_running(self, ingestion: Ingestion) -> None:
        try:
            self.runs.check_runnable(ingestion)
        except RunInProgress:
            raise
        except Conflict:  # paused or draft: the refresh waits for its next run, whenever that is
            return


def embedded_table_rows(engines: Engines) -> TableRows:
    """Rows of an embedded-engine table from its Delta log; a cluster's table is not asked (it would start a
    session for a confirmation dialog): the ledger's records stand in for it."""

    def rows(ingestion: Ingestion) -> int | None:
        if ingestion.spec.cluster_id is not None:
            return None
        return engines.embedded_for(ingestion.tenant_id).count_rows(ingestion.spec.destination)

    return rows
