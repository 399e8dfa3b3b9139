"""Ingestion detail `/ingestions/{id}`: live progress, 7-day metrics, volume chart, cost, configuration,
run history with retry and per-run files, table maintenance, and the file ledger (PRODUCT.md §10)."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import app, run, ui

from app.pages.context import may_change, page_frame
from components.alert_list import alert_list
from components.badges import SOURCE_LABELS, health_badge, run_badge, tag
from components.charts import bar_chart
from components.dialogs import named_dialog
from components.engine_move_dialog import EMBEDDED, EMBEDDED_LABEL, choose_engine
from components.feedback import notify_error, notify_ok
from components.formatting import clock, human_bytes, human_count, human_duration
from components.frame import page_heading
from components.full_refresh_dialog import confirm_full_refresh, offer_refresh_run
from components.ingestion_card import activate_url, format_label, schedule_tag
from components.maintenance_box import maintenance_box
from components.run_now_offer import offer_run_now
from components.run_table import empty_checks_text, ledger_table, run_table
from components.schema_alert import schema_alert
from components.schema_history import schema_history
from components.stat_card import stat_card
from components.styles import FLAT, OUTLINE
from core.access import Principal
from core.cost import approx_dollars, format_dollars
from core.domain import with_file
from core.errors import AutoloaderError
from core.schedule import describe
from core.views import DetailData, RunRecord
from core.wording import counted

REFRESH_SECONDS = 1.0
FILE_STATUSES = {"": "All statuses", "loaded": "Loaded", "pending": "Pending", "failed": "Failed"} | {
    "quarantined": "Quarantined",
    "skipped": "Skipped",
    "held": "Held for schema review",
    "changed": "Changed after loading",
}
LEDGER_PAGE = 200


def ledger_range_text(offset: int, shown: int, total: int) -> str:
    """Which files of the ledger the table shows, e.g. "Files 201 to 400 of 450"."""
    if total <= shown:
        return counted(total, "file")
    return f"Files {offset + 1:,} to {offset + shown:,} of {total:,}"


class DetailView:
    def __init__(self, ingestion_id: int, who: Principal) -> None:
        self.who = who
        self.services = app.state.services
        self.ingestion_id = ingestion_id
        self.live = False
        self.file_status = ""
        self.file_search = ""
        self.ledger_offset = 0
        self.body = ui.column().classes("w-full gap-5")
        self._ledger_section()
        ui.timer(REFRESH_SECONDS, self._tick)
        self._listen_to_runs()

    def _listen_to_runs(self) -> None:
        """Reload as soon as a run of this ingestion starts, stores progress or ends in this process (the poll stays
        for runs of other replicas), until the browser tab is gone."""
        news = self.services.news
        listener = news.on_loop(asyncio.get_running_loop(), self.reload)
        ui.context.client.on_delete(news.subscribe(self.ingestion_id, listener))

    async def _tick(self) -> None:
        if self.live:
            await self.reload()

    async def reload(self) -> bool:
        try:
            data: DetailData | None = await run.io_bound(self.services.views.detail, self.who, self.ingestion_id)
            maintenance = await run.io_bound(self.services.views.maintenance, self.who, self.ingestion_id)
        except AutoloaderError as exc:
            self.body.clear()
            with self.body:
                ui.label(exc.message).classes("text-lg text-red-700")
                ui.link("Back to the dashboard", "/")
            self.ledger.set_visibility(False)
            return False
        if data is None or maintenance is None:
            return False
        was_live, self.live = self.live, data.active_run is not None or maintenance.running
        self.body.clear()
        with self.body:
            self._header(data)
            if data.pending is not None:
                schema_alert(data.pending)
            self._progress(data)
            self._alerts(data)
            self._metrics(data)
            alert_list(data.alerts, f"/ingestions/{self.ingestion_id}")
            self._configuration(data)
            self._history(data)
            may = may_change(self.who, data.summary.created_by)
            maintenance_box(maintenance, self.compact_now if may else None)
            schema_history(data.versions, self.ingestion_id)
        if was_live and not self.live:
            await self.reload_ledger()
        return True

    # --- sections -------------------------------------------------------------------------------------------------
    def _header(self, data: DetailData) -> None:
        summary = data.summary
        with ui.row().classes("w-full items-center justify-between"):
            with ui.row().classes("items-center gap-3"):
                ui.link("←", "/").classes("text-2xl no-underline text-slate-600").props(
                    'aria-label="Back to ingestions"'
                )
                page_heading(summary.name).classes("text-3xl font-bold text-slate-800")
                health_badge(summary.health)
                tag(SOURCE_LABELS.get(summary.spec.source.type, summary.spec.source.type))
                tag(schedule_tag(summary))
            if not may_change(self.who, summary.created_by):
                self.status = summary.status
                return
            with ui.row().classes("gap-2"):
                ui.button("Run Now", icon="play_arrow", on_click=self.run_now).props(OUTLINE).mark("run-now")
                ui.button("Full refresh", icon="restart_alt", on_click=self.full_refresh).props(OUTLINE).mark(
                    "full-refresh"
                )
                ui.button("Edit", icon="edit", on_click=lambda: ui.navigate.to(f"/ingestions/{summary.id}/edit")).props(
                    OUTLINE
                )
                if summary.status == "draft":
                    ui.button(
                        "Activate", icon="rocket_launch", on_click=lambda: ui.navigate.to(activate_url(summary))
                    ).props("outline color=primary no-caps").mark("activate")
                else:
                    paused = summary.status == "paused"
                    ui.button(
                        "Resume" if paused else "Pause",
                        icon="play_circle" if paused else "pause",
                        on_click=self.toggle_pause,
                    ).props(OUTLINE)
        self.status = summary.status

    def _progress(self, data: DetailData) -> None:
        active = data.active_run
        if active is None:
            return
        done, total = active.files_done, active.files_total
        with ui.column().classes("w-full p-4 rounded-lg bg-indigo-50 border border-indigo-200 gap-2").mark("progress"):
            with ui.row().classes("items-center gap-2"):
                ui.spinner(size="sm")
                ui.label(
                    f"{active.label} {active.status}: {done:,} / {counted(total, 'file')}"
                    if total
                    else f"{active.label} {active.status}: discovering files…"
                ).classes("text-indigo-900 font-medium")
            ui.linear_progress(value=done / total if total else 0, show_value=False).props("color=indigo")

    def _alerts(self, data: DetailData) -> None:
        failed = next((r for r in data.runs if r.status not in ("queued", "running")), None)
        if failed is None or failed.status not in ("failed", "partial"):
            return
        with ui.row().classes("w-full p-4 rounded-lg bg-red-50 border border-red-200 items-center justify-between"):
            # the text takes the room left of Retry and breaks long paths; on a phone Retry wraps below it
            with ui.column().classes("gap-0 flex-1 min-w-[14rem] [overflow-wrap:anywhere]"):
                ui.label(f"Last run {failed.label.removeprefix('Run ')} {failed.status}").classes(
                    "font-semibold text-red-900"
                )
                shown = [with_file(e.get("file"), e.get("message", "")) for e in failed.errors[:3]]
                if failed.message not in shown:  # a failed run's message is its error's: said once, with the action
                    ui.label(failed.message).classes("text-sm text-red-800")
                for message, error in zip(shown, failed.errors, strict=False):
                    ui.label(f"{message} → {error.get('action', '')}").classes("text-xs text-red-800")
            ui.button("Retry", icon="replay", on_click=lambda: self.retry(failed.id or 0)).props(OUTLINE)

    def _metrics(self, data: DetailData) -> None:
        week = data.week
        with ui.row().classes("w-full gap-4"):
            stat_card("Files (7 days)", f"{week.files:,}", marker="stat-files")
            stat_card("Records (7 days)", human_count(week.records), marker="stat-records")
            stat_card("Average duration", human_duration(week.average_duration_seconds), marker="stat-duration")
            failed_class = "text-red-600" if week.failed else "text-green-700"
            stat_card("Failed runs (7 days)", str(week.failed), counted(week.runs, "run"), failed_class, "stat-failed")
        with ui.row().classes("w-full gap-4"):  # the chart and the cost share a line when both get their minimum
            with ui.card().classes("flex-[2] min-w-[18rem] p-4 shadow-sm rounded-xl"):
                ui.label("Daily volume (records)").classes("font-semibold text-slate-700")
                bar_chart(
                    [d.day.strftime("%a %d") for d in week.days],
                    [d.records for d in week.days],
                    height="h-48",
                    name="records",
                ).mark("volume-chart")
            with ui.card().classes("flex-1 min-w-[16rem] p-4 shadow-sm rounded-xl gap-1").mark("cost"):
                ui.label("Monthly cost").classes("font-semibold text-slate-700")
                ui.label(f"Estimated {approx_dollars(data.estimate.total)}/month").classes("text-lg font-bold")
                ui.label(
                    f"compute {format_dollars(data.estimate.compute)} · storage {format_dollars(data.estimate.storage)}"
                    f" · discovery {format_dollars(data.estimate.discovery)}"
                ).classes("text-xs text-slate-500")
                ui.label(f"Actual (last 30 days) {format_dollars(data.actual.total)}").classes("text-lg font-bold")
                ui.label(
                    f"{counted(data.actual.runs, 'run')} · {data.actual.compute_hours:.2f} compute h · "
                    f"{data.actual.gb_written:.3f} GB written"
                ).classes("text-xs text-slate-500")

    def _configuration(self, data: DetailData) -> None:
        spec = data.summary.spec
        rows = [
            ("Source", f"{spec.source.path}" + (f" ({spec.source.file_pattern})" if spec.source.file_pattern else "")),
            ("Format", format_label(data.summary)),
            ("On schema change", spec.format.schema_.on_schema_change),
            ("Target table", spec.destination.full_name),
            ("Write mode", spec.destination.write_mode),
            ("Merge keys", ", ".join(spec.destination.merge_keys) or "—"),
            ("Partitioned by", ", ".join(spec.destination.partition_columns) or "—"),
            ("Schedule", describe(spec.schedule)),
            ("Next run", clock(data.summary.next_run)),
            ("Backfill", spec.schedule.backfill.mode),
            ("Minimum rows per run", str(spec.quality.row_count_min or "—")),
            *self._place_rows(data),
        ]
        expansion = ui.expansion("Configuration", icon="settings").classes("w-full bg-white rounded-xl shadow-sm")
        with expansion:
            with ui.grid(columns=2).classes("w-full gap-x-8 gap-y-1 p-2"):
                for caption, value in rows:
                    ui.label(caption).classes("text-sm text-slate-500")
                    ui.label(value).classes("text-sm text-slate-800 break-all")
            if may_change(self.who, data.summary.created_by) and data.summary.status != "draft":
                ui.button("Move to another engine…", icon="swap_horiz", on_click=self.move_engine).props(FLAT).mark(
                    "move-engine"
                )

    @staticmethod
    def _place_rows(data: DetailData) -> list[tuple[str, str]]:
        place = data.place
        if place is None:
            return []
        return [
            ("Engine", place.engine),
            ("Table format", place.table_format),
            ("Table location", place.location or "Placed by the cluster's catalog (a managed table)"),
        ]

    def _history(self, data: DetailData) -> None:
        with ui.card().classes("w-full p-4 shadow-sm rounded-xl"):
            ui.label("Run history (30 days)").classes("font-semibold text-slate-700")
            checks = data.summary.empty_checks
            if checks is not None:
                ui.label(empty_checks_text(checks)).classes("text-sm text-slate-600").mark("empty-checks")
            if not data.runs:
                ui.label("No runs yet. Click Run Now to load the files.").classes("text-sm text-slate-500")
                return
            table = run_table(data.runs)
            table.on("retry", lambda e: self.retry(int(e.args["id"])))
            table.on("details", lambda e: self.show_run(int(e.args["id"]), data.runs))

    def _ledger_section(self) -> None:
        with ui.card().classes("w-full p-4 shadow-sm rounded-xl") as self.ledger:
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("File ledger").classes("font-semibold text-slate-700")
                self.ledger_count = ui.label().classes("text-sm text-slate-500")
            with ui.row().classes("w-full gap-3"):
                ui.select(FILE_STATUSES, value="", on_change=self._on_file_status).props("outlined dense").classes(
                    "w-44"
                ).mark("ledger-status")
                ui.input(placeholder="Search path", on_change=self._on_file_search).props(
                    "outlined dense clearable debounce=300"
                ).classes("flex-1 min-w-[12rem]").mark("ledger-search")
            self.ledger_area = ui.column().classes("w-full")
            with ui.row().classes("w-full items-center justify-end gap-2"):
                self.ledger_previous = (
                    ui.button("Previous", icon="chevron_left", on_click=lambda: self._ledger_page(-1))
                    .props("flat dense no-caps")
                    .mark("ledger-previous")
                )
                self.ledger_next = (
                    ui.button("Next", icon="chevron_right", on_click=lambda: self._ledger_page(1))
                    .props("flat dense no-caps icon-right=chevron_right")
                    .mark("ledger-next")
                )

    async def _on_file_status(self, event: Any) -> None:
        self.file_status = event.value or ""
        self.ledger_offset = 0
        await self.reload_ledger()

    async def _on_file_search(self, event: Any) -> None:
        self.file_search = event.value or ""
        self.ledger_offset = 0
        await self.reload_ledger()

    async def _ledger_page(self, step: int) -> None:
        self.ledger_offset = max(0, self.ledger_offset + step * LEDGER_PAGE)
        await self.reload_ledger()

    async def reload_ledger(self) -> None:
        page = await run.io_bound(
            self.services.views.files,
            self.who,
            self.ingestion_id,
            self.file_status or None,
            self.file_search or None,
            LEDGER_PAGE,
            self.ledger_offset,
        )
        if page is None:
            return
        if page.total and self.ledger_offset >= page.total:  # the ledger shrank (a filter, a forget): last page
            self.ledger_offset = (page.total - 1) // LEDGER_PAGE * LEDGER_PAGE
            await self.reload_ledger()
            return
        self.ledger_count.set_text(ledger_range_text(self.ledger_offset, len(page.items), page.total))
        self.ledger_previous.set_enabled(self.ledger_offset > 0)
        self.ledger_next.set_enabled(self.ledger_offset + len(page.items) < page.total)
        for button in (self.ledger_previous, self.ledger_next):
            button.set_visibility(page.total > LEDGER_PAGE)
        self.ledger_area.clear()
        with self.ledger_area:
            ledger_table(page.items)

    # --- actions --------------------------------------------------------------------------------------------------
    async def run_now(self) -> None:
        await self._start(self.services.runs.trigger, self.ingestion_id, "manual", self.who)

    async def retry(self, run_id: int) -> None:
        await self._start(self.services.runs.retry, self.ingestion_id, run_id, self.who)

    async def _start(self, action: Any, *args: Any) -> None:
        try:
            run_id = await run.io_bound(action, *args)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        label = await run.io_bound(self.services.views.run_label, self.who, self.ingestion_id, int(run_id or 0))
        notify_ok(f"{label or f'Run {run_id}'} started.")
        self.live = True
        await self.reload()

    async def full_refresh(self) -> None:
        """Say what the table holds and that it will be replaced; once confirmed, mark the refresh and offer to run."""
        page = ui.context.client.content
        try:
            preview = await run.io_bound(self.services.refresh.preview, self.ingestion_id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        if preview is None:  # the page went away meanwhile
            return
        with page:
            if not await confirm_full_refresh(preview.table, preview.message, preview.pending):
                return
        try:
            await run.io_bound(self.services.refresh.request, self.ingestion_id, False, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        with page:
            if await offer_refresh_run():
                await self.run_now()
                return
        notify_ok("Full refresh requested: the next run rebuilds the table.")

    async def compact_now(self) -> None:
        try:
            maintenance_id = await run.io_bound(self.services.maintenance.start, self.ingestion_id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        notify_ok(f"Table maintenance {maintenance_id} started: compaction, then vacuum.")
        self.live = True
        await self.reload()

    async def move_engine(self) -> None:
        """Pick the engine (the embedded one or a cluster) that continues this ingestion's table."""
        page = ui.context.client.content
        summary = await run.io_bound(self.services.views.ingestion, self.who, self.ingestion_id)
        clusters = await run.io_bound(self.services.views.clusters, self.who)
        if summary is None or clusters is None:  # the page went away meanwhile
            return
        engines = {EMBEDDED: EMBEDDED_LABEL} | {c.id: f"Cluster {c.name} ({c.table_format})" for c in clusters}
        with page:
            chosen = await choose_engine(summary.spec.destination.full_name, summary.spec.cluster_id, engines)
        if chosen is None:
            return
        try:
            await run.io_bound(self.services.engine_move.move, self.ingestion_id, chosen or None, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        with page:
            notify_ok(f"Moved: the next run continues {summary.spec.destination.full_name} on {engines[chosen]}.")
        await self.reload()

    async def toggle_pause(self) -> None:
        resuming = self.status == "paused"
        page = ui.context.client.content  # the clicked button is gone once the body re-renders
        change = self.services.ingestions.resume if resuming else self.services.ingestions.pause
        try:
            updated = await run.io_bound(change, self.ingestion_id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        await self.reload()
        if resuming and updated is not None:
            with page:
                summary = await run.io_bound(self.services.views.ingestion, self.who, self.ingestion_id)
                if await offer_run_now(updated.name, summary.next_run if summary else None):
                    await self.run_now()

    async def show_run(self, run_id: int, runs: list[RunRecord]) -> None:
        record = next((r for r in runs if r.id == run_id), None)
        page = await run.io_bound(self.services.views.run_files, self.who, self.ingestion_id, run_id)
        files = page.items if page else []
        title = record.label if record is not None else f"Run {run_id}"
        with named_dialog(title) as dialog, ui.card().classes("w-[900px] max-w-full p-5 gap-3"):
            ui.label(title).classes("text-lg font-semibold")
            api_path = f"/api/v1/ingestions/{self.ingestion_id}/runs/{run_id}"  # the API names a run by its id
            ui.label(f"In the API: run id {run_id} ({api_path})").classes("text-xs text-slate-600").mark("run-api-id")
            if record is not None:
                with ui.row().classes("items-center gap-2"):
                    run_badge(record.status)
                    ui.label(record.message).classes("text-sm")
                    ui.label(
                        f"read {human_bytes(float(record.metrics.get('bytes_read', 0)))} · written "
                        f"{human_bytes(float(record.metrics.get('bytes_written', 0)))}"
                    ).classes("text-sm text-slate-500")
                for error in record.errors:
                    message = with_file(error.get("file"), error.get("message", ""))
                    ui.label(f"{error.get('kind', '')}: {message} → {error.get('action', '')}").classes(
                        "text-sm text-red-700"
                    )
            ui.label(f"{counted(len(files), 'file')} in this run").classes("text-sm font-semibold")
            ledger_table(files)
            ui.button("Close", on_click=dialog.close).props(FLAT)
        dialog.open()


async def detail_page(ingestion_id: int) -> None:
    with page_frame("Ingestion") as who:
        view = DetailView(ingestion_id, who)
        if await view.reload():
            await view.reload_ledger()
