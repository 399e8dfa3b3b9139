"""Schema review (/ingestions/{id}/schema-review): what changed, in which files, and one click to resolve."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from nicegui import app, run, ui

from app.pages.context import page_frame
from components.feedback import error_text, notify_error, notify_ok
from components.frame import page_heading
from components.keyboard import mark_checked, radio_choice, radio_group
from components.schema_diff import schema_diff
from core.access import Principal
from core.errors import AutoloaderError
from core.schema_resolution import TRADE_OFFS
from core.views import IngestionSummary, SchemaReviewData, SchemaVersionRecord
from core.wording import counted

OPTIONS = {
    "auto_merge": ("Auto-Merge New Columns", ["✓ Zero downtime", "✓ No data loss", "⚠ Historical records have NULL"]),
    "backfill_default": ("Backfill with Default Value", ["✓ No NULL values", "⚠ Rewrites existing rows"]),
    "new_table": ("Create New Version Table", ["✓ Preserves the historical schema", "⚠ Queries need to union tables"]),
    "ignore": ("Ignore New Columns", ["✓ No schema change", "⚠ The new columns' data is not stored"]),
}


async def schema_review_page(ingestion_id: int) -> None:
    services = app.state.services
    with page_frame("Schema review", width="max-w-4xl") as who:
        try:
            data: SchemaReviewData | None = await run.io_bound(services.views.schema_review, who, ingestion_id)
        except AutoloaderError as exc:
            ui.label(exc.message).classes("text-lg")
            ui.link("Back to the dashboard", "/")
            return
        if data is None:
            return
        ui.page_title(f"Schema review · {data.summary.name} · Autoloader")
        if data.pending is None:
            ui.label("No schema change is waiting for review.").classes("text-lg")
            ui.link("Open the ingestion", f"/ingestions/{ingestion_id}")
            return
        Review(services, who, data.summary, data.pending, data.current).render()


class Review:
    def __init__(
        self,
        services: Any,
        who: Principal,
        ingestion: IngestionSummary,
        pending: SchemaVersionRecord,
        current: list[dict[str, Any]],
    ):
        self.services = services
        self.who = who
        self.ingestion = ingestion
        self.pending = pending
        self.current = current
        only_additions = all(c["kind"] == "added" for c in pending.changes)
        self.choice = "auto_merge" if only_additions else "new_table"
        self.defaults: dict[str, Any] = {}
        self.table_name = f"{ingestion.spec.destination.table}_v2"

    def render(self) -> None:
        self._header()
        self._what_happened()
        with ui.card().classes("w-full p-6"):
            ui.label("Schema Comparison").classes("text-lg font-bold")
            schema_diff(self.current, self.pending.columns, self.pending.changes)
        with ui.card().classes("w-full p-6 gap-3"):
            ui.label("How Should We Handle This?").classes("text-lg font-bold")
            self.options = radio_group(ui.column().classes("w-full gap-3"), "Resolution")
            self._render_options()
        with ui.row().classes("w-full justify-between"):
            ui.button("Pause Ingestion", on_click=self.pause).props("outline").classes("pause-ingestion")
            with ui.row().classes("gap-2"):
                ui.button("Review Later", on_click=lambda: self.apply("review_later")).props("outline")
                ui.button("Apply Solution →", on_click=lambda: self.apply(self.choice)).classes("apply-solution")

    def _header(self) -> None:
        detected = self.pending.created_at.strftime("%b %d, %Y at %H:%M UTC")
        with ui.row().classes("w-full items-center gap-4 p-5 rounded-lg bg-gradient-to-r from-amber-500 to-orange-600"):
            ui.label("⚠").classes("text-3xl text-white")
            with ui.column().classes("gap-0"):
                page_heading("Schema Evolution Detected").classes("text-2xl font-bold text-white")
                ui.label(f"Ingestion: {self.ingestion.name} • Detected on {detected}").classes("text-amber-50")

    def _what_happened(self) -> None:
        with ui.card().classes("w-full p-6 gap-3"):
            ui.label("What Happened?").classes("text-lg font-bold")
            with ui.column().classes("w-full bg-amber-50 border border-amber-300 rounded-lg p-4 gap-2"):
                for change in self.pending.changes:
                    ui.label(change["description"]).classes("font-semibold text-amber-900 [overflow-wrap:anywhere]")
                files = self.pending.files
                ui.label(
                    f"Found in {counted(len(files), 'recently arrived file')}. They are held — not loaded — until you "
                    "decide, so nothing is lost; files with the current schema keep loading."
                ).classes("text-amber-900 text-sm")
                with ui.column().classes("w-full bg-white rounded p-3 gap-1 font-mono text-sm held-files"):
                    for held in files[:50]:
                        name = held["path"].rsplit("/", 1)[-1]
                        ui.label(f"• {name} ({counted(held['records'], 'record')})").classes("[overflow-wrap:anywhere]")
                    if len(files) > 50:
                        ui.label(f"… and {len(files) - 50} more")

    def _render_options(self) -> None:
        self.options.clear()
        with self.options:
            for key, (title, points) in OPTIONS.items():
                selected = key == self.choice
                border = "border-2 border-indigo-500 bg-indigo-50" if selected else "border border-slate-200"
                with ui.column().classes(f"w-full rounded-lg p-4 gap-2 cursor-pointer option-{key} {border}") as box:
                    box.on("click", lambda _, k=key: self._select(k))
                    # the title row is the radio a keyboard reaches: the box also holds inputs, which a radio may not
                    header = ui.row().classes("items-center gap-2 rounded option-radio")
                    radio_choice(header, partial(self._select, key, keep_focus=True))
                    mark_checked(header, selected)
                    with header:
                        ui.icon("radio_button_checked" if selected else "radio_button_unchecked").classes(
                            "text-indigo-600"
                        ).props('aria-hidden="true"')
                        ui.label(title).classes("font-bold")
                        if key == "auto_merge" and self.choice == key:
                            ui.badge("RECOMMENDED").classes("bg-indigo-500")
                    ui.label(TRADE_OFFS[key]).classes("text-sm text-slate-600")
                    with ui.row().classes("gap-6 text-sm"):
                        for point in points:
                            color = "text-green-800" if point.startswith("✓") else "text-red-700"
                            ui.label(point).classes(color)
                    if selected:
                        self._inputs(key)
                        self.preview = ui.column().classes("w-full bg-white border rounded p-3 gap-1 plan-preview")
                        self._show_plan()

    def _inputs(self, key: str) -> None:
        if key == "backfill_default":
            for change in (c for c in self.pending.changes if c["kind"] == "added"):
                name = change["column"]
                ui.input(f"Default for {name} ({change['new_type']})", value=self.defaults.get(name, "")).on(
                    "update:model-value", lambda e, n=name: self._set_default(n, e.args)
                )
        elif key == "new_table":
            ui.input("New table name", value=self.table_name).on(
                "update:model-value", lambda e: self._set_table(e.args)
            )

    def _set_default(self, column: str, value: Any) -> None:
        self.defaults[column] = _typed(value)
        self._show_plan()

    def _set_table(self, value: Any) -> None:
        self.table_name = str(value)
        self._show_plan()

    def _select(self, key: str, keep_focus: bool = False) -> None:
        """Re-render the options; a keyboard choice keeps the focus on the chosen option (the old one is gone)."""
        if key == self.choice:
            return
        self.choice = key
        self._render_options()
        if keep_focus:
            ui.run_javascript(f"document.querySelector('.option-{key} [role=radio]')?.focus()")

    def _show_plan(self) -> None:
        self.preview.clear()
        with self.preview:
            ui.label("PREVIEW OF CHANGES").classes("text-xs font-bold text-slate-500")
            try:
                plan = self.services.schema.plan(
                    self.ingestion.id, self.pending.version, self.choice, self.defaults, self.table_name, self.who
                )
            except AutoloaderError as exc:
                ui.label(error_text(exc)).classes("text-sm text-red-600")
                return
            for statement in plan.statements:
                ui.label(statement).classes("font-mono text-xs [overflow-wrap:anywhere]")
            added = [c["column"] for c in self.pending.changes if c["kind"] == "added"]
            if added and self.choice == "auto_merge":
                ui.label(f"-- existing rows: {', '.join(added)} = NULL; new rows: values from the files").classes(
                    "font-mono text-xs text-slate-500 [overflow-wrap:anywhere]"
                )

    async def pause(self) -> None:
        try:
            await run.io_bound(self.services.ingestions.pause, self.ingestion.id, self.who)
        except AutoloaderError as exc:
            notify_error(exc)
            return
        notify_ok(f"'{self.ingestion.name}' is paused; the change stays pending.")

    async def apply(self, resolution: str) -> None:
        try:
            _, run_id = cast(
                tuple[Any, int | None],
                await run.io_bound(
                    self.services.schema.resolve,
                    self.ingestion.id,
                    self.pending.version,
                    resolution,
                    self.defaults,
                    self.table_name if resolution == "new_table" else None,
                    self.who,
                ),
            )
        except AutoloaderError as exc:
            notify_error(exc)
            return
        if run_id is None:
            notify_ok("Kept for later: the ingestion stays paused and the files stay held.")
            return
        label = await run.io_bound(self.services.views.run_label, self.who, self.ingestion.id, int(run_id))
        notify_ok(f"Applied. The held files are loading now ({label or f'Run {run_id}'}).")
        ui.navigate.to(f"/ingestions/{self.ingestion.id}")


def _typed(value: Any) -> Any:
    """Inputs arrive as text: numbers and booleans become their values."""
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text
