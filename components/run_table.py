"""Run history and file ledger tables."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nicegui import ui

from components.formatting import clock, human_bytes, human_duration
from core.views import EmptyChecks, FileRecord, RunRecord

RUN_COLUMNS = [
    {"name": "number", "label": "Run", "field": "number", "align": "left"},
    {"name": "trigger", "label": "Trigger", "field": "trigger", "align": "left"},
    {"name": "started", "label": "Start", "field": "started", "align": "left"},
    {"name": "duration", "label": "Duration", "field": "duration", "align": "right"},
    {"name": "files", "label": "Files", "field": "files", "align": "right"},
    {"name": "records", "label": "Records", "field": "records", "align": "right"},
    {"name": "bytes", "label": "Bytes read", "field": "bytes", "align": "right"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "errors", "label": "Errors", "field": "errors", "align": "left"},
    {"name": "actions", "label": "", "field": "id", "align": "right"},
]
RUN_STATUS_SLOT = """
<q-td :props="props">
  <q-badge :color="{success: 'positive', partial: 'warning', failed: 'negative', running: 'primary',
                    queued: 'grey-6', cancelled: 'grey-7'}[props.value] || 'grey-6'" :label="props.value" />
</q-td>
"""
RUN_ACTIONS_SLOT = """
<q-td :props="props">
  <q-btn v-if="['failed', 'partial', 'cancelled'].includes(props.row.status)" size="sm" flat no-caps
         color="primary" label="Retry" @click="() => $parent.$emit('retry', props.row)" />
  <q-btn size="sm" flat no-caps label="Files & errors" @click="() => $parent.$emit('details', props.row)" />
</q-td>
"""
# long messages and paths wrap inside their cell (anywhere: a path is one word), so the table fits its card and
# the actions column stays on screen; what still does not fit (a phone) scrolls inside the table, not the page
WRAPPING_CELL = """
<q-td :props="props" style="white-space: normal; overflow-wrap: anywhere; min-width: 12rem">{{ props.value }}</q-td>
"""
LEDGER_COLUMNS = [
    {"name": "path", "label": "Path", "field": "path", "align": "left"},
    {"name": "size", "label": "Size", "field": "size", "align": "right"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "records", "label": "Records", "field": "records", "align": "right"},
    {"name": "bad", "label": "Bad records", "field": "bad", "align": "right"},
    {"name": "run", "label": "Run", "field": "run", "align": "right"},
    {"name": "loaded", "label": "Loaded", "field": "loaded", "align": "left"},
    {"name": "error", "label": "Error", "field": "error", "align": "left"},
]


def run_row(run: RunRecord) -> dict[str, object]:
    metrics = run.metrics
    progress = (
        f"{run.files_done}/{run.files_total}" if run.status == "running" else f"{metrics.get('files_processed', 0):,}"
    )
    return {
        "id": run.id,
        "number": run.label.removeprefix("Run "),
        "trigger": run.trigger,
        "started": clock(run.started_at or run.created_at),
        "duration": human_duration(float(metrics["duration_seconds"])) if metrics.get("duration_seconds") else "—",
        "files": progress,
        "records": f"{int(metrics.get('records_ingested', 0)):,}",
        "bytes": human_bytes(float(metrics.get("bytes_read", 0))),
        "status": run.status,
        "errors": "; ".join(str(e.get("message", "")) for e in run.errors[:2])
        or (run.message if run.status == "failed" else notes_of(run.message)),
    }


def notes_of(message: str) -> str:
    """What a run's message says beyond its loaded summary, e.g. "2 files held for schema review.": a run that held
    every file read "success, 0 files" with nothing beside it (an outside attack)."""
    return _SUMMARY.sub("", message.strip(), count=1).strip()


_SUMMARY = re.compile(r"^(Loaded [\d,]+ records? from [\d,]+ files?\.|No new files\.)")


def run_table(runs: Sequence[RunRecord]) -> ui.table:
    table = ui.table(columns=RUN_COLUMNS, rows=[run_row(r) for r in runs], row_key="id", pagination=20)
    table.props("flat bordered dense").classes("w-full").mark("run-history")
    table.add_slot("body-cell-status", RUN_STATUS_SLOT)
    table.add_slot("body-cell-actions", RUN_ACTIONS_SLOT)
    table.add_slot("body-cell-errors", WRAPPING_CELL)
    return table


def empty_checks_text(checks: EmptyChecks) -> str:
    """ "Checked 120 times since 2026-12-01 02:00 UTC, no new files" (the last check's time after it)."""
    times = "once" if checks.count == 1 else f"{checks.count:,} times"
    return f"Checked {times} since {clock(checks.since)}, no new files (last check {clock(checks.last_checked_at)})"


def ledger_table(files: Sequence[FileRecord]) -> ui.table:
    rows = [
        {
            "path": f.path,
            "size": human_bytes(f.size),
            "status": f.status,
            "records": f"{f.records:,}",
            "bad": f.bad_records,
            "run": f"#{f.run_number}" if f.run_number is not None else (f.run_id or ""),
            "loaded": clock(f.loaded_at) if f.loaded_at else "",
            "error": f.error or "",
        }
        for f in files
    ]
    table = ui.table(columns=LEDGER_COLUMNS, rows=rows, row_key="path", pagination=25)
    table.add_slot("body-cell-path", WRAPPING_CELL)
    table.add_slot("body-cell-error", WRAPPING_CELL)
    return table.props("flat bordered dense").classes("w-full").mark("ledger")
