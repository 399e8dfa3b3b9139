"""Dashboard `/`: totals, one card per ingestion with quick actions, search, filters and sort (PRODUCT.md §10)."""

from __future__ import annotations

from nicegui import app, run, ui

from app.pages.context import can_change, may_change, page_frame
from components.dialogs import named_dialog
from components.feedback import notify_error, notify_ok
from components.formatting import human_bytes
from components.frame import page_heading
from components.ingestion_card import CardActions, ingestion_card
from components.run_now_offer import offer_run_now
from components.stat_card import stat_card
from components.styles import PRIMARY
from core.access import Principal
from core.errors import AutoloaderError
from core.views import DashboardData, DashboardQuery, IngestionSummary
from core.wording import counted

PAGE_SIZE = 20
FIRST_PAINT_CARDS = 3
REFRESH_SECONDS = 2.0
STATUS_FILTER = {
    "": "All statuses",
    "healthy": "Healthy",
    "not run yet": "Not run yet",
    "warning": "Warning",
    "error": "Error",
    "paused": "Paused",
    "draft": "Draft",
    "needs_review": "Needs review",
}
MODE_FILTER = {"": "All modes", "scheduled": "Scheduled", "continuous": "Continuous", "manual": "Manual"}
SOURCE_FILTER = {"": "All sources", "s3": "S3", "local": "Local path"}
SORT_OPTIONS = {"name": "Name", "last_run": "Last run", "next_run": "Next run", "created": "Created"}


class Dashboard:
    def __init__(self, who: Principal) -> None:
        self.who = who
        self.services = app.state.services
        self.query = DashboardQuery(limit=PAGE_SIZE)
        self.runs_active = False
        self.stats_row = ui.row().classes("w-full gap-4")
        self._filters()
        self.cards = ui.column().classes("w-full gap-5")
        self.deferred: tuple[DashboardData, list[IngestionSummary]] | None = None
        # immediate=False: an immediate timer awaits the browser connection while the page is still being built, and
        # NiceGUI then sends an empty shell and the content over the websocket later (slower first paint)
        ui.timer(REFRESH_SECONDS, self._tick, immediate=False)

    def _filters(self) -> None:
        with ui.row().classes("w-full items-center gap-3"):
            ui.input(placeholder="Search name, path or table", on_change=self._on_search).props(
                "outlined dense clearable debounce=300"
            ).classes("flex-1 bg-white").mark("search")
            self._select(STATUS_FILTER, "status")
            self._select(MODE_FILTER, "mode")
            self._select(SOURCE_FILTER, "source_type")
            ui.select(SORT_OPTIONS, value="name", label="Sort by", on_change=self._on_sort).props(
                "outlined dense"
            ).classes("w-36 bg-white").mark("sort")

    def _select(self, options: dict[str, str], attribute: str) -> None:
        async def changed(event: object) -> None:
            setattr(self.query, attribute, getattr(event, "value", "") or None)
            await self.reload()

        ui.select(options, value="", on_change=changed).props("outlined dense").classes("w-40 bg-white").mark(
            f"filter-{attribute}"
        )

    async def _on_search(self, event: object) -> None:
        self.query.search = getattr(event, "value", "") or ""
        await self.reload()

    async def _on_sort(self, event: object) -> None:
        self.query.sort = getattr(event, "value", "name") or "name"
        await self.reload()

    async def _tick(self) -> None:
        if self.runs_active:
            await self.reload()

    async def reload(self, first_cards: int | None = None) -> None:
        try:
            data: DashboardData | None = await run.io_bound(self.services.views.dashboard, self.who, self.query)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        if data is None:
            return
        self.runs_active = data.runs_active
        self._render_stats(data)
        self._render_cards(data, first_cards)

    def _render_stats(self, data: DashboardData) -> None:
        stats = data.stats
        self.stats_row.clear()
        with self.stats_row:
            stat_card("Active Ingestions", f"{stats.active_ingestions:,}", f"↑ {stats.added_this_week} added this week")
            change = _change(stats.files_24h, stats.files_previous_24h)
            stat_card("Files Processed (24h)", f"{stats.files_24h:,}", change)
            running = f"{counted(stats.running_runs, 'run')} in progress"
            stat_card("Data Ingested (24h)", human_bytes(stats.bytes_24h), running)
            rate = "—" if stats.success_rate is None else f"{stats.success_rate:.1f}%"
            stat_card("Success Rate", rate, f"{counted(stats.finished_runs_24h, 'run')} in 24h", "text-slate-500")

    def _render_cards(self, data: DashboardData, first: int | None = None) -> None:
        """All cards, or only the `first` ones: the rest are added once the browser has connected."""
        self.cards.clear()
        self.deferred = None
        with self.cards:
            if not data.total:
                _empty_state()
                return
            if not data.cards:
                ui.label("No ingestion matches the search and filters.").classes("text-slate-500")
            shown = data.cards if first is None else data.cards[:first]
            self._add_cards(data, shown)
        if len(shown) < len(data.cards):
            self.deferred = (data, data.cards[len(shown) :])
        else:
            self._show_more_button(data)

    def _add_cards(self, data: DashboardData, overviews: list[IngestionSummary]) -> None:
        actions = CardActions(self.run_now, self.toggle_pause, self.confirm_delete)
        with self.cards:
            for overview in overviews:
                offered = actions if may_change(self.who, overview.created_by) else None
                ingestion_card(overview, data.weeks.get(overview.id), offered, data.pending.get(overview.id))

    def _show_more_button(self, data: DashboardData) -> None:
        if data.matching > len(data.cards):
            with self.cards:
                ui.button(f"Show more ({data.matching - len(data.cards):,} more)", on_click=self.show_more).props(
                    "flat no-caps"
                )

    def render_deferred(self) -> None:
        if self.deferred is None:
            return
        data, rest = self.deferred
        self.deferred = None
        self._add_cards(data, rest)
        self._show_more_button(data)

    async def show_more(self) -> None:
        self.query.limit += PAGE_SIZE
        await self.reload()

    async def run_now(self, overview: IngestionSummary) -> None:
        try:
            run_id = await run.io_bound(self.services.runs.trigger, overview.id, "manual", self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        label = await run.io_bound(self.services.views.run_label, self.who, overview.id, int(run_id or 0))
        notify_ok(f"{label or f'Run {run_id}'} of '{overview.name}' started.")
        self.runs_active = True
        await self.reload()

    async def toggle_pause(self, overview: IngestionSummary) -> None:
        resuming = overview.status == "paused"
        page = ui.context.client.content  # the clicked button is gone once the cards re-render
        change = self.services.ingestions.resume if resuming else self.services.ingestions.pause
        try:
            updated = await run.io_bound(change, overview.id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        if updated is None:
            return
        notify_ok(f"'{overview.name}' is {updated.status.value}.")
        await self.reload()
        if resuming:
            with page:
                summary = await run.io_bound(self.services.views.ingestion, self.who, overview.id)
                if await offer_run_now(overview.name, summary.next_run if summary else None):
                    await self.run_now(overview)

    async def confirm_delete(self, overview: IngestionSummary) -> None:
        with named_dialog(f"Delete '{overview.name}'?") as dialog, ui.card().classes("p-6 gap-3"):
            ui.label(f"Delete '{overview.name}'?").classes("text-lg font-semibold")
            ui.label("Its run history and file ledger are removed. This cannot be undone.").classes("text-sm")
            choice = None
            if overview.last_run is not None:  # one that never ran has loaded no table to keep or drop
                choice = ui.radio(
                    {"keep": f"Keep the table {overview.spec.destination.full_name}", "drop": "Drop the table too"},
                    value="keep",
                ).mark("delete-choice")
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat no-caps")
                ui.button("Delete", on_click=lambda: dialog.submit(True)).props("color=negative no-caps").mark(
                    "confirm-delete"
                )
        confirmed = await dialog
        dialog.delete()
        if not confirmed:
            return
        drop = choice is not None and choice.value == "drop"
        try:
            await run.io_bound(self.services.ingestions.delete, overview.id, drop, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        notify_ok(f"'{overview.name}' deleted{' with its table' if drop else ''}.")
        await self.reload()


def _change(now: int, before: int) -> str:
    if not before:
        return "none the 24 h before either" if not now else "none the 24 h before"
    delta = 100 * (now - before) / before
    return f"{'↑' if delta >= 0 else '↓'} {abs(delta):.0f}% vs yesterday"


def _empty_state() -> None:
    with ui.card().classes("w-full p-10 items-center gap-3"):
        ui.icon("move_to_inbox").classes("text-5xl text-indigo-400")
        ui.label("No ingestions yet").classes("text-xl font-semibold")
        ui.label("Point Autoloader at a folder or a bucket and load new files into a table in minutes.")
        ui.button("New Ingestion", icon="add", on_click=lambda: ui.navigate.to("/ingestions/new")).props("no-caps")


async def dashboard_page(notice: str | None = None) -> None:
    with page_frame("Data Ingestions") as who:
        if notice:
            with ui.row().classes("w-full p-4 rounded-lg bg-green-50 border border-green-300 items-center"):
                ui.icon("check_circle").classes("text-green-700")
                ui.label(notice).classes("text-green-900").mark("notice")
        with ui.row().classes("w-full items-center justify-between"):
            page_heading("Data Ingestions").classes("text-3xl font-bold text-slate-800")
            if can_change(who):
                ui.button("New Ingestion", icon="add", on_click=lambda: ui.navigate.to("/ingestions/new")).props(
                    PRIMARY
                ).mark("new-ingestion")
        dashboard = Dashboard(who)
        # first paint: the stats and the cards above the fold are in the page itself; the rest follow over the
        # websocket (building every card before answering delays the first paint by a few hundred ms)
        await dashboard.reload(first_cards=FIRST_PAINT_CARDS)
        ui.context.client.on_connect(dashboard.render_deferred)
