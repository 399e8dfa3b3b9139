"""What the Destination and Schedule steps show about the whole draft: when it runs, its cost, a summary."""

from __future__ import annotations

from nicegui import ui
from pydantic import ValidationError

from app.db.models import ClusterPublic
from app.pages.wizard.actions import table_location
from app.pages.wizard.alerts import batches_text, changed_settings
from app.pages.wizard.destination import WRITE_MODES
from app.pages.wizard.draft import SpecDraft, date_text
from app.pages.wizard.fields import WizardState
from app.pages.wizard.partitions import describe as describe_partitions
from app.pages.wizard.reader_options import options_text
from app.pages.wizard.table_properties import properties_text
from components.cost_box import cost_box
from components.formatting import clock
from core.config import DestinationConfig, ScheduleConfig
from core.cost import PRICE_PER_COMPUTE_HOUR, estimate_monthly_cost, runs_per_month
from core.preview import PreviewResult
from core.schedule import describe, next_fire_times
from core.schema import LINEAGE_COLUMNS
from core.wording import counted

DEFAULT_CATALOG = DestinationConfig.model_fields["catalog"].default


def current_schedule(draft: SpecDraft) -> ScheduleConfig | None:
    """The draft's schedule, or None while it is incomplete."""
    try:
        return ScheduleConfig.model_validate(draft.get("schedule"))
    except ValidationError:
        return None


def backfill_choices(probe: PreviewResult | None) -> dict[str, str]:
    count = f" ({counted(probe.files, 'file')} detected)" if probe else ""
    return {"new_only": "Process only new files", "all": f"Include existing files{count}", "since": "Since a date"}


def render_schedule_preview(area: ui.column, schedule: ScheduleConfig | None) -> None:
    area.clear()
    with area:
        if schedule is None:
            ui.label("Complete the schedule to see when it runs.")
            return
        ui.label(describe(schedule)).classes("font-medium text-slate-800")
        fires = next_fire_times(schedule, 5)
        if fires:
            ui.label("Next runs: " + " · ".join(f"{f:%a %d %b %H:%M} ({clock(f)})" for f in fires)).classes("text-xs")


def render_cost(area: ui.column, state: WizardState, schedule: ScheduleConfig | None) -> None:
    area.clear()
    if schedule is None:
        return
    probe = state.probe
    files = probe.files if probe else 0
    data_gb = probe.total_bytes / 1e9 if probe else 0.0
    runs = max(runs_per_month(schedule), 1.0)
    cluster = state.cluster()
    estimate = estimate_monthly_cost(
        schedule,
        state.draft.get("source.type"),
        files_per_run=files / runs,
        gb_per_run=data_gb / runs,
        files_in_source=files,
        price_per_compute_hour=cluster.price_per_hour if cluster else PRICE_PER_COMPUTE_HOUR,
    )
    with area:
        cost_box(estimate, describe(schedule))
        ui.label("Files and GB per run assume the files now in the source arrived over the last month.").classes(
            "text-xs text-slate-500"
        )


def destination_text(draft: SpecDraft, cluster: ClusterPublic | None) -> str:
    """What the run writes: the embedded engine's table folder, or the name in the cluster's catalog (whose own
    catalog stands in for the default one, as core/engines/spark/table.py resolves it)."""
    try:
        destination = DestinationConfig.model_validate(draft.get("destination"))
    except ValidationError:
        return "incomplete (name the table)"
    if cluster is None:
        return f"Delta table at {table_location(destination)}"
    catalog = cluster.catalog if destination.catalog == DEFAULT_CATALOG else destination.catalog
    return f"{cluster.table_format} table {catalog}.{destination.database}.{destination.table} on {cluster.name}"


def merge_text(draft: SpecDraft) -> str:
    keys, order_by = ", ".join(draft.get("destination.merge_keys")), draft.get("destination.merge_order_by")
    latest = f"highest {order_by} wins" if order_by else "the row read last wins"
    return f"on {keys or '—'}; among rows with the same key, {latest}"


def quality_settings(draft: SpecDraft) -> list[str]:
    """The Data Quality section's alert settings, as the summary says them (the section above Alerts & limits)."""
    found = []
    if (rows := draft.get("quality.row_count_min")) is not None:
        found.append(f"alert under {counted(rows, 'row')} per run")
    if recipients := draft.get("quality.alert_recipients"):
        found.append(f"e-mail {', '.join(recipients)}")
    return found


def render_summary(area: ui.column, state: WizardState, title: str) -> None:
    area.clear()
    draft = state.draft
    schedule = current_schedule(draft)
    pattern = draft.get("source.file_pattern")
    write_mode = draft.get("destination.write_mode")
    backfill_mode = draft.get("schedule.backfill.mode")
    backfill = {
        "new_only": "New files only",
        "all": "All existing files",
        "since": f"Since {date_text(draft.get('schedule.backfill.since'))}",
    }
    cluster = state.cluster()
    properties = draft.get("destination.table_properties")
    rows = [
        ("Source", f"{draft.get('source.path')}{' (' + pattern + ')' if pattern else ''}"),
        ("Format", f"{draft.get('format.type').upper()} ({draft.get('format.schema.inference')}-schema)"),
        ("Destination", f"{destination_text(draft, cluster)} ({WRITE_MODES.get(write_mode, write_mode)})"),
        *([("Merge", merge_text(draft))] if write_mode == "merge" else []),
        ("Partitioned by", ", ".join(draft.get("destination.partition_columns")) or "—"),
        *([("Table properties", properties_text(properties))] if properties else []),
        ("Lineage columns", ", ".join(LINEAGE_COLUMNS) if draft.get("destination.lineage_columns") else "off"),
        ("Engine", f"Spark cluster {cluster.name}" if cluster else "Embedded"),
        ("Schedule", describe(schedule) if schedule else "incomplete"),
        ("Backfill", backfill.get(backfill_mode, backfill_mode)),
        (
            "Alerts & limits",
            "; ".join(quality_settings(draft) + changed_settings(draft)) or f"defaults ({batches_text(draft)})",
        ),
    ]
    options, folders = options_text(draft), describe_partitions(draft.get("source.partition_columns"))
    rows[2:2] = [("Reader options", options)] if options else []  # after Format
    rows[1:1] = [("Partition folders", folders)] if folders else []  # after Source
    with area:
        ui.label(title).classes("font-semibold mb-1")
        for caption, value in rows:
            with ui.row().classes("gap-1 text-sm"):
                ui.label(f"{caption}:").classes("font-semibold")
                ui.label(value)
