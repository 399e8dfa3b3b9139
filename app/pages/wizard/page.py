"""Wizard `/ingestions/new` and `/ingestions/{id}/edit`: Source, Format, Destination, Schedule, then the preview."""

from __future__ import annotations

from urllib.parse import urlencode

from nicegui import ui

from app.db.models import ClusterPublic
from app.pages.context import can_change, page_frame
from app.pages.wizard import actions
from app.pages.wizard.destination import DestinationStep
from app.pages.wizard.draft import SpecDraft
from app.pages.wizard.fields import FormFields, WizardState
from app.pages.wizard.format import FormatStep
from app.pages.wizard.navigation import Navigation
from app.pages.wizard.schedule import ScheduleStep
from app.pages.wizard.source import SourceStep
from app.pages.wizard.summary import destination_text, render_summary
from app.pages.wizard.validation import engine_problems, field_problems, first_invalid_step, validate_parts
from components.feedback import error_text, notify_error
from components.formatting import clock, relative_time
from components.frame import page_heading
from components.preview_view import PreviewActions, render_preview
from core.config import IngestionSpec
from core.domain import Ingestion, IngestionStatus
from core.errors import AutoloaderError
from core.schedule import next_fire_times

LEAVE_WARNING = """<script>
window.autoloaderUnsaved = false;
document.addEventListener('input', () => { window.autoloaderUnsaved = true; }, true);
window.addEventListener('beforeunload', (event) => {
  if (window.autoloaderUnsaved) { event.preventDefault(); event.returnValue = ''; }
});
</script>"""
"""The browser asks before leaving a wizard the user typed into: Back, a reload or a header link dropped every value
without a word (an outside attack). The wizard's URL is one page, so Back cannot mean "the previous step"."""


def _leave(url: str) -> None:
    """Go to `url` once the ingestion is saved: nothing unsaved is left to ask about."""
    ui.run_javascript("window.autoloaderUnsaved = false")
    ui.navigate.to(url)


class Wizard:
    """The four steps over one draft, and what happens to the draft: save, preview, create."""

    def __init__(
        self,
        draft: SpecDraft,
        editing: Ingestion | None,
        clusters: list[ClusterPublic],
        has_loaded: bool = False,
    ) -> None:
        """`has_loaded`: the edited ingestion has loaded files, so its format is locked too (not only once
        activated)."""
        self.editing = editing
        self.has_loaded = has_loaded
        locked = editing is not None and editing.status != IngestionStatus.DRAFT
        self.fields = FormFields(draft, locked, loaded_lock=locked and has_loaded)
        self.state = WizardState(self.fields, clusters, editing_id=editing.id if editing else None)
        self.fields.check_field = lambda path: field_problems(self.state.draft, path)
        self.source = SourceStep(self.state, on_probed=self._probed)
        self.format = FormatStep(
            self.state, probe=self.source.probe, failure=lambda: self.source.connection_result.text
        )
        self.destination = DestinationStep(
            self.state, on_engine_change=self._engine_changed, on_columns_change=self.render_summaries
        )
        self.schedule = ScheduleStep(self.state, on_change=self.render_summaries)
        self.navigation = Navigation(self.fields, on_entered=self._entered, on_finish=self.test_and_preview)
        self.navigation.blocker = lambda step: self.source.connection_failure() if step == "Source" else None

    def render(self) -> None:
        title = f"Edit '{self.editing.name}'" if self.editing else "New Data Ingestion"
        ui.add_head_html(LEAVE_WARNING)
        with ui.column().classes("w-full gap-0 rounded-xl shadow bg-white overflow-hidden") as self.editor:
            with ui.column().classes("w-full p-6 gap-1 text-white bg-gradient-to-r from-indigo-500 to-purple-600"):
                page_heading(title).classes("text-2xl font-bold")
                ui.label("Set up automated data ingestion from cloud storage to your data lake").classes("opacity-90")
            with self.navigation.stepper():
                with ui.step("Source", icon="storage"):
                    self.source.render()
                with ui.step("Format", icon="description"):
                    self.format.render()
                with ui.step("Destination", icon="table_chart"):
                    self.destination.render()
                with ui.step("Schedule", icon="schedule"):
                    self.schedule.render()
            self.navigation.footer(self.save_draft)
        self.preview_area = ui.column().classes("w-full")
        self.preview_area.set_visibility(False)
        self.fields.sync()
        self.fields.lock()

    # --- what one step changes on the others ----------------------------------------------------------------------
    def _probed(self) -> bool:
        if self.format.adopt_sample_format():
            return True
        self.format.render_schema_preview()
        self.destination.refresh_columns()
        self.render_summaries()
        return False

    def _engine_changed(self) -> None:
        problems = engine_problems(self.state.draft)
        if problems:
            problems["cluster_id"] = problems["format.type"] + " (see the Format step)"
            self.fields.show_errors(problems)
        else:
            self.fields.clear_error("cluster_id")
            self.fields.clear_error("format.type")
        self.render_summaries()

    def render_summaries(self) -> None:
        self.schedule.render_summaries()
        render_summary(self.destination.summary, self.state, "Summary")

    async def _entered(self, step: str) -> None:
        self.navigation.update()
        source_ok = not validate_parts(self.state.draft, ("source",))
        if step in ("Format", "Destination") and self.state.probe is None and source_ok:
            await self.format.reprobe()
        if step in ("Destination", "Schedule"):
            self.render_summaries()

    # --- saving ---------------------------------------------------------------------------------------------------
    def _spec_or_errors(self) -> IngestionSpec | None:
        step, problems = first_invalid_step(self.state.draft)
        if step is not None:
            self.navigation.go(step)
            self.fields.show_errors(problems)
            ui.notify(f"Fix the highlighted fields on the {step} step first.", type="warning")
            return None
        return self.state.draft.spec()

    async def _store(self, spec: IngestionSpec, activate: bool) -> Ingestion | None:
        """Create or update the ingestion, activating a new one or a draft if asked (raises AutoloaderError); the
        stored ingestion, whose status the notice tells (an edited paused one stays paused)."""
        if self.editing is None:
            return await actions.create_ingestion(spec, activate)
        updated = await actions.update_ingestion(self.editing.id, spec, self.editing.revision)
        if updated is not None:  # the next save (after a failed activation, say) is made from this revision
            self.editing = updated
        if activate and self.editing.status == IngestionStatus.DRAFT:
            return await actions.activate(self.editing.id)
        return updated

    async def save_draft(self) -> None:
        spec = self._spec_or_errors()
        if spec is None:
            return
        try:
            await self._store(spec, activate=False)
        except AutoloaderError as exc:
            self.fields.show_service_error(exc)
            return
        done = "saved" if self.editing and self.fields.locked else "saved as a draft"
        _leave("/?" + urlencode({"notice": f"'{spec.name}' {done}."}))

    async def create(self) -> None:
        spec = self._spec_or_errors()
        if spec is None:
            return
        try:
            stored = await self._store(spec, activate=True)
        except AutoloaderError as exc:
            self.back_to_edit()
            self.fields.show_service_error(exc)
            return
        if stored is None:
            return
        _leave("/?" + urlencode({"notice": saved_notice(stored)}))

    async def test_and_preview(self) -> None:
        spec = self._spec_or_errors()
        if spec is None:
            return
        self.editor.set_visibility(False)
        self.preview_area.set_visibility(True)
        self.preview_area.clear()
        with self.preview_area, ui.row().classes("w-full items-center gap-3 p-6"):
            ui.spinner(size="lg")
            ui.label(f"Testing {spec.source.path}: connecting, listing, inferring the schema…")
        try:
            result = await actions.test_configuration(spec, check_table=not self.has_loaded)
        except AutoloaderError as exc:
            self.back_to_edit()
            if exc.field and exc.field.startswith("destination"):
                self.navigation.go("Destination")
                self.fields.show_service_error(exc)
                return
            self.source.show_result(f"✕ {error_text(exc)}", ok=False)
            self.source.connection_result.set_visibility(True)
            notify_error(exc)
            return
        if result is None:
            return
        self.state.probe = result
        self.preview_area.clear()
        with self.preview_area:
            buttons = PreviewActions(self.back_to_edit, self.save_draft, self.create)
            target = destination_text(self.state.draft, self.state.cluster())
            render_preview(spec, result, buttons, activated=self.fields.locked, target=target)

    def back_to_edit(self) -> None:
        self.preview_area.set_visibility(False)
        self.editor.set_visibility(True)


def saved_notice(ingestion: Ingestion) -> str:
    """What the dashboard says after Create / Save Changes: the ingestion's real status, and when it runs."""
    name = ingestion.spec.name
    if ingestion.status == IngestionStatus.ACTIVE:
        return f"'{name}' is active. {first_run_text(ingestion.spec, ingestion.id)}"
    if ingestion.status == IngestionStatus.PAUSED:
        return f"'{name}' saved. It is still paused: Resume it to run on its schedule."
    if ingestion.status == IngestionStatus.NEEDS_REVIEW:
        return f"'{name}' saved. It is waiting for a schema review: resolve it to resume loading."
    return f"'{name}' saved ({ingestion.status.value.replace('_', ' ')})."


def first_run_text(spec: IngestionSpec, ingestion_id: int | None = None) -> str:
    """When the ingestion first runs (a continuous one: at its own moment within the interval, from its id)."""
    if spec.schedule.mode == "manual":
        return "It runs when you click Run Now."
    upcoming = next_fire_times(spec.schedule, 1, ingestion_id=ingestion_id)
    if not upcoming:
        return "No upcoming run."
    return f"Next run {relative_time(upcoming[0])} ({clock(upcoming[0])})."


async def new_ingestion_page() -> None:
    with page_frame("New Ingestion", width="max-w-4xl") as who:
        if not can_change(who):
            ui.label(f"Your role ({who.role.value}) does not allow you to create ingestions.").classes("text-lg")
            ui.link("Back to the dashboard", "/")
            return
        Wizard(SpecDraft.new(), None, await actions.list_clusters()).render()


async def edit_ingestion_page(ingestion_id: int, activate: bool = False) -> None:
    """`activate`: the dashboard's Activate of a draft, which opens straight on Test & Preview (the same
    connection test and preview as the wizard's activation; the preview's Create activates it)."""
    with page_frame("Edit Ingestion", width="max-w-4xl"):
        try:
            ingestion = await actions.get_ingestion(ingestion_id)
        except AutoloaderError as exc:
            ui.label(exc.message).classes("text-lg text-red-700")
            ui.link("Back to the dashboard", "/")
            return
        if ingestion is None:
            return
        loaded = await actions.has_loaded(ingestion.id)
        wizard = Wizard(SpecDraft(ingestion.spec), ingestion, await actions.list_clusters(), loaded)
        wizard.render()
        if activate and ingestion.status == IngestionStatus.DRAFT:
            await wizard.test_and_preview()
