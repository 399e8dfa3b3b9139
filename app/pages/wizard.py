"""Wizard `/ingestions/new` and `/ingestions/{id}/edit`: Source, Format, Destination, Schedule, then the preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from zoneinfo import available_timezones

from nicegui import app, run, ui

from app.db.models import ClusterPublic
from components.cost_box import cost_box
from components.feedback import notify_error
from components.formatting import clock, human_bytes, relative_time
from components.frame import frame
from components.preview_view import PreviewActions, render_preview
from components.styles import FLAT, FOOTER, OUTLINE, PANEL, PRIMARY
from components.wizard_form import (
    CLUSTER_FORMAT_LABELS,
    FORMAT_LABELS,
    STEP_PARTS,
    STEPS,
    WizardForm,
    build_spec,
    engine_problems,
    form_from_spec,
    probe_spec,
    validate_parts,
    validate_step,
)
from core.config import IngestionSpec, ScheduleConfig
from core.cost import PRICE_PER_COMPUTE_HOUR, estimate_monthly_cost, runs_per_month
from core.domain import Ingestion, IngestionStatus
from core.errors import AutoloaderError
from core.preview import PreviewResult
from core.schedule import describe, next_fire_times

SOURCE_CARDS = (
    ("s3", "cloud", "AWS S3", "Amazon Simple Storage", True),
    ("azure_blob", "cloud_queue", "Azure Blob", "Azure Blob Storage", False),
    ("gcs", "cloud_circle", "Google Cloud", "GCS Buckets", False),
    ("sftp", "lan", "SFTP", "Secure File Transfer", False),
    ("local", "folder", "Local Path", "File System Path", True),
)
SCHEMA_POLICIES = {
    "auto_merge": "Add new columns automatically (schema evolution)",
    "rescue": "Keep the table schema; new fields go to _rescued_data",
    "fail": "Fail the run and name the new columns",
    "pause": "Pause for review (until the review screen lands, behaves like auto-merge)",
}
WRITE_MODES = {
    "append": "Append (add new data)",
    "create": "Create new table (must not exist)",
    "overwrite": "Overwrite (each run replaces the table)",
    "merge": "Merge / upsert on key columns",
}
WEEKDAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday"} | {
    "sat": "Saturday",
    "sun": "Sunday",
}
LOCK_REASON = (
    "Source, format and destination are locked once an ingestion has been activated. "
    "To change them, create a new ingestion."
)


class Wizard:
    def __init__(self, form: WizardForm, editing: Ingestion | None, clusters: list[ClusterPublic]) -> None:
        self.services = app.state.services
        self.form = form
        self.editing = editing
        self.locked = editing is not None and editing.status != IngestionStatus.DRAFT
        self.stored_secret = editing.spec.source.credentials.secret_access_key if editing else None
        self.clusters = clusters
        self.probe: PreviewResult | None = None
        self.errors: dict[str, ui.label] = {}
        self.shown_when: list[tuple[ui.element, Callable[[], bool]]] = []
        self.lockable: list[Any] = []
        self.moved_to: str | None = None
        """The step the wizard itself moved to; its change event is not a user's click on the progress bar."""

    # --- layout ---------------------------------------------------------------------------------------------------
    def render(self) -> None:
        title = f"Edit '{self.editing.name}'" if self.editing else "New Data Ingestion"
        with ui.column().classes("w-full gap-0 rounded-xl shadow bg-white overflow-hidden") as self.editor:
            with ui.column().classes("w-full p-6 gap-1 text-white bg-gradient-to-r from-indigo-500 to-purple-600"):
                ui.label(title).classes("text-2xl font-bold")
                ui.label("Set up automated data ingestion from cloud storage to your data lake").classes("opacity-90")
            with (
                ui.stepper(on_value_change=self._on_step_change)
                .props("header-nav flat animated")
                .classes("w-full") as self.stepper
            ):
                with ui.step("Source", icon="storage"):
                    self._source_step()
                with ui.step("Format", icon="description"):
                    self._format_step()
                with ui.step("Destination", icon="table_chart"):
                    self._destination_step()
                with ui.step("Schedule", icon="schedule"):
                    self._schedule_step()
            self._navigation()
        self.preview_area = ui.column().classes("w-full")
        self.preview_area.set_visibility(False)
        self._sync()
        if self.locked:
            for element in self.lockable:
                element.disable()

    def _navigation(self) -> None:
        with ui.row().classes(FOOTER):
            self.back_button = ui.button("Back", icon="arrow_back", on_click=self.back).props(OUTLINE)
            with ui.row().classes("items-center gap-3"):
                ui.button("Save as Draft", on_click=self.save_draft).props(FLAT).mark("save-draft")
                self.next_button = ui.button("Next", on_click=self.next).props(PRIMARY)
                self.next_button.mark("next")
        self._update_navigation()

    def _section(self, title: str, icon: str) -> None:
        with ui.row().classes("items-center gap-2 mt-2"):
            ui.icon(icon).classes("text-xl text-slate-700")
            ui.label(title).classes("text-lg font-semibold text-slate-800")

    def _lock_banner(self) -> None:
        if self.locked:
            with ui.row().classes("w-full p-3 rounded bg-amber-50 border border-amber-200 items-center"):
                ui.icon("lock").classes("text-amber-700")
                ui.label(LOCK_REASON).classes("text-sm text-amber-900")

    # --- inputs bound to the form ---------------------------------------------------------------------------------
    def _error_slot(self, path: str) -> None:
        label = ui.label().classes("text-xs text-red-600 -mt-2").mark(f"error-{path}")
        label.set_visibility(False)
        self.errors[path] = label

    def _bound(
        self, element: Any, attr: str, path: str | None = None, *, lockable: bool = False, after: Any = None
    ) -> Any:
        def changed(event: Any) -> None:
            setattr(self.form, attr, event.value)
            if path:
                self._clear_error(path)
            self._sync()
            if after:
                after()

        element.value = getattr(self.form, attr)
        element.on_value_change(changed)
        if path:
            element.mark(path).props(f"data-testid={path}")
            self._error_slot(path)
        if lockable:
            self.lockable.append(element)
        return element

    def _input(self, label: str, attr: str, path: str, *, lockable: bool = True, **kwargs: Any) -> ui.input:
        element = ui.input(label, **kwargs).props("outlined").classes("w-full")
        return self._bound(element, attr, path, lockable=lockable)

    def _when(self, element: ui.element, predicate: Callable[[], bool]) -> ui.element:
        self.shown_when.append((element, predicate))
        return element

    def _sync(self) -> None:
        for element, predicate in self.shown_when:
            element.set_visibility(predicate())

    # --- step 1: source -------------------------------------------------------------------------------------------
    def _source_step(self) -> None:
        self._lock_banner()
        self._input("Ingestion name *", "name", "name", lockable=False, placeholder="e.g. orders_raw")
        self._section("Select Data Source", "dns")
        with ui.grid(columns=3).classes("w-full gap-3"):
            self.source_cards = {
                kind: self._source_card(kind, icon, title, subtitle, enabled)
                for kind, icon, title, subtitle, enabled in SOURCE_CARDS
            }
        self._paint_source_cards()
        ui.label("Connection Details").classes("text-lg font-semibold text-slate-800 mt-2")
        path = self._input("Bucket/Path *", "path", "source.path")
        path.props("hint='The folder (e.g. /data/landing/orders) or S3 location (s3://bucket/prefix/)'")
        self._input(
            "File Pattern (optional)", "file_pattern", "source.file_pattern", placeholder="*.json or logs-2024-*.json"
        ).props("hint='Filter files by pattern (** for sub-folders). Leave empty to process all files'")
        with self._when(ui.column().classes("w-full gap-3"), lambda: self.form.source_type == "s3"):
            self._bound(
                ui.radio({"ambient": "Ambient identity (IAM role, environment)", "access_key": "Access keys"}).props(
                    "inline"
                ),
                "auth",
                lockable=False,
            )
            with self._when(ui.row().classes("w-full no-wrap gap-3"), lambda: self.form.auth == "access_key"):
                with ui.column().classes("flex-1"):
                    self._input("Access Key ID", "access_key_id", "source.credentials.access_key_id", lockable=False)
                with ui.column().classes("flex-1"):
                    placeholder = "unchanged (stored encrypted)" if self.form.keep_secret else ""
                    self._input(
                        "Secret Access Key",
                        "secret_access_key",
                        "source.credentials.secret_access_key",
                        lockable=False,
                        password=True,
                        password_toggle_button=False,
                        placeholder=placeholder,
                    )
            with ui.row().classes("w-full no-wrap gap-3"):
                with ui.column().classes("flex-1"):
                    self._input("Region", "region", "source.region", placeholder="us-east-1")
                with ui.column().classes("flex-1"):
                    self._input("Endpoint URL (S3-compatible)", "endpoint_url", "source.endpoint_url")
        with ui.row().classes("w-full items-center gap-4"):
            ui.button("Test Connection", icon="network_check", on_click=self.test_connection).props(
                "outline no-caps"
            ).mark("test-connection")
            self.connection_spinner = ui.spinner(size="sm")
            self.connection_spinner.set_visibility(False)
        self.connection_result = ui.label().classes("w-full p-3 rounded text-sm").mark("connection-result")
        self.connection_result.set_visibility(False)

    def _source_card(self, kind: str, icon: str, title: str, subtitle: str, enabled: bool) -> ui.card:
        card = ui.card().classes("items-center p-4 gap-1 cursor-pointer border-2").mark(f"source-{kind}")
        with card:
            ui.icon(icon).classes("text-3xl")
            ui.label(title).classes("font-semibold")
            ui.label(subtitle if enabled else "Coming soon").classes("text-xs text-slate-500")
        if enabled:
            card.on("click", lambda: self._choose_source(kind))
        else:
            card.classes("opacity-50 cursor-not-allowed")
        return card

    def _choose_source(self, kind: str) -> None:
        if self.locked:
            return
        self.form.source_type = kind
        self.probe = None
        self._paint_source_cards()
        self._sync()

    def _paint_source_cards(self) -> None:
        for kind, card in self.source_cards.items():
            selected = kind == self.form.source_type
            card.classes(
                add="border-indigo-500 bg-indigo-50" if selected else "border-slate-200",
                remove="border-slate-200" if selected else "border-indigo-500 bg-indigo-50",
            )

    async def test_connection(self) -> None:
        problems = validate_parts(self.form, ("source",))
        self._show_errors(problems)
        if problems:
            return
        await self._probe()
        self.connection_result.set_visibility(True)

    async def _probe(self) -> bool:
        problems = engine_problems(self.form)
        if problems:
            self.probe = None
            self.connection_result.set_text(f"✕ {problems['format.type']}")
            self.connection_result.classes(add="bg-red-50 text-red-800", remove="bg-green-50 text-green-800")
            self._show_errors(problems)
            return False
        self.connection_spinner.set_visibility(True)
        try:
            result = await run.io_bound(self.services.test_configuration, probe_spec(self.form))
        except AutoloaderError as exc:
            self.probe = None
            self.connection_result.set_text(f"✕ {exc.message} {exc.action}".strip())
            self.connection_result.classes(add="bg-red-50 text-red-800", remove="bg-green-50 text-green-800")
            return False
        finally:
            self.connection_spinner.set_visibility(False)
        if result is None:
            return False
        self.probe = result
        self.connection_result.set_text(
            f"✓ Connection successful — {result.files:,}{'+' if result.files_truncated else ''} files, "
            f"{human_bytes(result.total_bytes)}"
        )
        self.connection_result.classes(add="bg-green-50 text-green-800", remove="bg-red-50 text-red-800")
        self._refresh_schema_views()
        return True

    # --- step 2: format -------------------------------------------------------------------------------------------
    def _format_step(self) -> None:
        self._lock_banner()
        self._section("File Format & Schema", "description")
        reprobe = self._reprobe_soon
        self.format_select = ui.select(self._format_options(), label="File Format *")
        self._bound(
            self.format_select.props("outlined").classes("w-full"),
            "format_type",
            "format.type",
            lockable=True,
            after=reprobe,
        )
        ui.label("Schema Detection").classes("text-sm text-slate-600")
        mode = ui.radio({"auto": "Auto-detect schema", "manual": "Provide schema manually"}).props("inline")
        self._bound(mode, "schema_mode", "format.schema.inference", lockable=True)
        with self._when(ui.column().classes("w-full"), lambda: self.form.schema_mode == "manual"):
            text = ui.textarea("Schema (JSON)", placeholder='[{"name": "id", "type": "bigint", "nullable": true}]')
            self._bound(text.props("outlined").classes("w-full font-mono"), "schema_json", "format.schema.schema_json")
            self.lockable.append(text)
        self._bound(ui.checkbox("Infer column types"), "infer_types", lockable=True, after=reprobe)
        ui.label("Keeps strings when off; numbers, booleans and timestamps are detected when on.").classes(
            "text-xs text-slate-500 -mt-3"
        )
        policy = ui.select(SCHEMA_POLICIES, label="When new columns appear").props("outlined").classes("w-full")
        self._bound(policy, "on_schema_change", "format.schema.on_schema_change", lockable=True)
        ui.label("Format-Specific Options").classes("text-lg font-semibold text-slate-800 mt-2")
        with self._when(ui.column().classes("w-full"), lambda: self.form.format_type == "json"):
            lines = ui.radio({False: "Single-line (1 record per line)", True: "Multi-line (documents or arrays)"})
            self._bound(lines.props("inline"), "multiline", lockable=True, after=reprobe)
        with self._when(ui.row().classes("w-full items-center gap-4"), lambda: self.form.format_type == "csv"):
            self._bound(ui.checkbox("First row is a header"), "header", lockable=True, after=reprobe)
            with ui.column().classes("w-32"):
                self._input("Delimiter", "delimiter", "format.options.delimiter").on("blur", reprobe)
            with ui.column().classes("w-32"):
                self._input("Quote", "quote", "format.options.quote").on("blur", reprobe)
        with self._when(ui.column().classes("w-full"), lambda: self.form.format_type == "xml"):
            self._input("Row tag (the element of one record)", "row_tag", "format.options.row_tag", placeholder="row")
        compression = ui.select(
            {"auto": "Detect from the file", "none": "None", "gzip": "gzip", "bz2": "bzip2", "zstd": "zstd"},
            label="Compression",
        )
        self._bound(compression.props("outlined").classes("w-full"), "compression", "format.options.compression")
        self.lockable.append(compression)
        with ui.column().classes(f"{PANEL} gap-1"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Schema Preview").classes("font-semibold")
                ui.button("Refresh", icon="refresh", on_click=self._reprobe).props("flat dense no-caps").mark(
                    "refresh-schema"
                )
            self.schema_preview = ui.column().classes("gap-0").mark("schema-preview")
        self._render_schema_preview()

    def _format_options(self) -> dict[str, str]:
        """The embedded engine's formats; with a cluster also ORC, XML, text, Avro (a chosen one stays listed so
        that switching back to the embedded engine shows the error next to the field, not a blank select)."""
        options = dict(FORMAT_LABELS)
        for key, label in CLUSTER_FORMAT_LABELS.items():
            if self.form.cluster_id is not None:
                options[key] = label
            elif key == self.form.format_type:
                options[key] = f"{label} (needs a Spark cluster)"
        return options

    def _reprobe_soon(self) -> None:
        self.probe = None
        self._render_schema_preview()

    async def _reprobe(self) -> None:
        if validate_parts(self.form, ("source",)):
            ui.notify("Fill in the source first: the preview reads sample files from it.", type="warning")
            return
        ok = await self._probe()
        if not ok:
            self.schema_preview.clear()
            with self.schema_preview:
                ui.label(self.connection_result.text).classes("text-sm text-red-700")

    def _render_schema_preview(self) -> None:
        self.schema_preview.clear()
        with self.schema_preview:
            if self.probe is None:
                ui.label("Press Refresh to infer the schema from sample files.").classes("text-sm text-slate-500")
                return
            columns = self.probe.schema
            ui.label(f"Detected {len(columns)} columns from {len(self.probe.sample_files)} sample files:").classes(
                "text-sm"
            )
            for column in columns:
                ui.label(f"• {column['name']} ({column['type']})").classes("text-sm font-mono")
            for path, reason in self.probe.bad_files.items():
                ui.label(f"⚠ {path}: {reason}").classes("text-xs text-amber-700")

    def _refresh_schema_views(self) -> None:
        self._render_schema_preview()
        options = self._columns()
        for select in (self.merge_select, self.partition_select, self.zorder_select):
            select.set_options(options, value=[v for v in (select.value or []) if v in options or not options])
        self._render_summaries()

    def _columns(self) -> list[str]:
        known = [c["name"] for c in self.probe.schema] if self.probe else []
        chosen = self.form.merge_keys + self.form.partition_columns + self.form.z_order_columns
        return known + [c for c in dict.fromkeys(chosen) if c not in known]

    # --- step 3: destination --------------------------------------------------------------------------------------
    def _destination_step(self) -> None:
        self._lock_banner()
        self._section("Target Table", "table_chart")
        self._input("Catalog", "catalog", "destination.catalog").on_value_change(self._render_full_name)
        self._input("Database / Schema", "database", "destination.database").on_value_change(self._render_full_name)
        self._input("Table Name *", "table", "destination.table").on_value_change(self._render_full_name)
        self.full_name = ui.label().classes("text-xs text-slate-500 -mt-2").mark("full-table-name")
        self._render_full_name()
        mode = ui.select(WRITE_MODES, label="Write Mode").props("outlined").classes("w-full")
        self._bound(mode, "write_mode", "destination.write_mode", lockable=True)
        with self._when(ui.column().classes("w-full"), lambda: self.form.write_mode == "merge"):
            self.merge_select = self._column_select("Merge key columns *", "merge_keys", "destination.merge_keys")
        ui.label("Optimization Options").classes("text-lg font-semibold text-slate-800 mt-2")
        self.partition_select = self._column_select(
            "Partition columns", "partition_columns", "destination.partition_columns"
        )
        self.zorder_select = self._column_select("Z-order columns", "z_order_columns", "destination.z_order_columns")
        ui.label("Engine").classes("text-sm text-slate-600")
        engines = {0: "Embedded (Arrow + delta-rs)"} | {
            c.id: f"{c.name} — Spark cluster ({c.table_format}, ${c.price_per_hour:.2f}/h)" for c in self.clusters
        }
        if self.form.cluster_id is not None and self.form.cluster_id not in engines:
            engines[self.form.cluster_id] = f"Cluster {self.form.cluster_id}"
        engine = ui.radio(engines, value=self.form.cluster_id or 0, on_change=self._engine_changed)
        engine.mark("engine").props("data-testid=engine")
        self.lockable.append(engine)
        self._error_slot("cluster_id")
        if not self.clusters:
            ui.link("Register a Spark cluster to run on Spark", "/clusters").classes("text-xs")
        self.destination_summary = ui.column().classes(f"{PANEL} gap-0")

    def _engine_changed(self, event: Any) -> None:
        self.form.cluster_id = event.value or None
        self.format_select.set_options(self._format_options(), value=self.form.format_type)
        problems = engine_problems(self.form)
        if problems:
            problems["cluster_id"] = problems["format.type"] + " (see the Format step)"
            self._show_errors(problems)
        else:
            self._clear_error("cluster_id")
            self._clear_error("format.type")
        self._render_summaries()

    def _cluster(self) -> ClusterPublic | None:
        return next((c for c in self.clusters if c.id == self.form.cluster_id), None)

    def _column_select(self, label: str, attr: str, path: str) -> ui.select:
        select = ui.select(self._columns(), label=label, multiple=True, new_value_mode="add-unique")
        select.props("outlined use-chips hint='Columns come from the schema preview; you can type a name'")
        return self._bound(select.classes("w-full"), attr, path, lockable=True, after=self._render_summaries)

    def _render_full_name(self, *_: Any) -> None:
        self.full_name.set_text(f"Full table name: {self.form.full_table_name}")

    # --- step 4: schedule -----------------------------------------------------------------------------------------
    def _schedule_step(self) -> None:
        self._section("Processing Schedule", "event")
        refresh = self._render_summaries
        mode = ui.radio(
            {"scheduled": "Scheduled (recommended for batch data)", "continuous": "Continuous", "manual": "Manual"}
        ).props("inline")
        self._bound(mode, "schedule_mode", "schedule.mode", after=refresh)
        with self._when(ui.row().classes("w-full no-wrap gap-3"), lambda: self.form.schedule_mode == "scheduled"):
            frequency = ui.select(
                {"hourly": "Hourly", "daily": "Daily", "weekly": "Weekly", "custom": "Custom (cron)"}, label="Frequency"
            )
            self._bound(frequency.props("outlined").classes("flex-1"), "frequency", "schedule.frequency", after=refresh)
            with self._when(ui.column().classes("flex-1"), lambda: self.form.frequency == "hourly"):
                minute = ui.number("At minute", min=0, max=59, precision=0).props("outlined").classes("w-full")
                self._bound(minute, "minute", "schedule.minute", after=refresh)
            with self._when(ui.column().classes("flex-1"), lambda: self.form.frequency == "weekly"):
                day = ui.select(WEEKDAYS, label="Day").props("outlined").classes("w-full")
                self._bound(day, "weekday", "schedule.weekday", after=refresh)
            with self._when(ui.column().classes("flex-1"), lambda: self.form.frequency in ("daily", "weekly")):
                at = ui.input("Time (HH:MM)").props("outlined type=time").classes("w-full")
                self._bound(at, "time", "schedule.time", after=refresh)
            with self._when(ui.column().classes("flex-1"), lambda: self.form.frequency == "custom"):
                cron = ui.input("Cron expression", placeholder="0 2 * * *").props("outlined").classes("w-full")
                self._bound(cron, "cron_expression", "schedule.cron_expression", after=refresh)
        with self._when(ui.column().classes("w-full"), lambda: self.form.schedule_mode == "continuous"):
            every = ui.number("Check for new files every (seconds)", min=5, precision=0).props("outlined")
            self._bound(every.classes("w-full"), "interval_seconds", "schedule.interval_seconds", after=refresh)
        with self._when(ui.column().classes("w-full"), lambda: self.form.schedule_mode != "manual"):
            zones = sorted(available_timezones())
            zone = ui.select(zones, label="Time zone", with_input=True).props("outlined").classes("w-full")
            self._bound(zone, "timezone", "schedule.timezone", after=refresh)
        self.schedule_preview = ui.column().classes("w-full gap-0 text-sm text-slate-600").mark("schedule-preview")
        ui.label("Backfill Options").classes("text-sm text-slate-600 mt-2")
        self.backfill = ui.radio({}).props("inline")
        self._bound(self.backfill, "backfill_mode", "schedule.backfill.mode", after=refresh)
        with self._when(ui.column().classes("w-full"), lambda: self.form.backfill_mode == "since"):
            since = ui.input("Files modified since (YYYY-MM-DD)").props("outlined type=date").classes("w-full")
            self._bound(since, "backfill_since", "schedule.backfill.since", after=refresh)
        self._section("Data Quality (optional)", "verified")
        with ui.row().classes("w-full no-wrap gap-3"):
            rows = ui.number("Alert if fewer rows per run than", min=0, precision=0).props("outlined")
            self._bound(rows.classes("flex-1"), "row_count_min", "quality.row_count_min", after=refresh)
            recipients = ui.input("Alert recipients (comma-separated e-mails)").props("outlined").classes("flex-1")
            self._bound(recipients, "alert_recipients", "quality.alert_recipients")
        self.cost_area = ui.column().classes("w-full")
        self.summary = ui.column().classes(f"{PANEL} gap-0").mark("config-summary")

    def _schedule(self) -> ScheduleConfig | None:
        try:
            return ScheduleConfig.model_validate(self.form.schedule_body())
        except ValueError:
            return None

    def _render_summaries(self) -> None:
        self._render_backfill_options()
        self._render_schedule_preview()
        self._render_cost()
        self._render_summary(self.summary, "Complete Configuration Summary")
        self._render_summary(self.destination_summary, "Summary")

    def _render_backfill_options(self) -> None:
        count = f" ({self.probe.files:,} files detected)" if self.probe else ""
        self.backfill.set_options(
            {"new_only": "Process only new files", "all": f"Include existing files{count}", "since": "Since a date"},
            value=self.form.backfill_mode,
        )

    def _render_schedule_preview(self) -> None:
        self.schedule_preview.clear()
        schedule = self._schedule()
        with self.schedule_preview:
            if schedule is None:
                ui.label("Complete the schedule to see when it runs.")
                return
            ui.label(describe(schedule)).classes("font-medium text-slate-800")
            fires = next_fire_times(schedule, 5)
            if fires:
                ui.label("Next runs: " + " · ".join(f"{f:%a %d %b %H:%M} ({clock(f)})" for f in fires)).classes(
                    "text-xs"
                )

    def _render_cost(self) -> None:
        self.cost_area.clear()
        schedule = self._schedule()
        if schedule is None:
            return
        files = self.probe.files if self.probe else 0
        data_gb = self.probe.total_bytes / 1e9 if self.probe else 0.0
        runs = max(runs_per_month(schedule), 1.0)
        cluster = self._cluster()
        estimate = estimate_monthly_cost(
            schedule,
            self.form.source_type,
            files_per_run=files / runs,
            gb_per_run=data_gb / runs,
            files_in_source=files,
            price_per_compute_hour=cluster.price_per_hour if cluster else PRICE_PER_COMPUTE_HOUR,
        )
        with self.cost_area:
            cost_box(estimate, describe(schedule))
            ui.label("Files and GB per run assume the files now in the source arrived over the last month.").classes(
                "text-xs text-slate-500"
            )

    def _render_summary(self, area: ui.column, title: str) -> None:
        area.clear()
        form = self.form
        schedule = self._schedule()
        backfill = {"new_only": "New files only", "all": "All existing files", "since": f"Since {form.backfill_since}"}
        rows = [
            ("Source", f"{form.path}{' (' + form.file_pattern + ')' if form.file_pattern else ''}"),
            ("Format", f"{form.format_type.upper()} ({form.schema_mode}-schema)"),
            ("Destination", f"{form.full_table_name} ({WRITE_MODES.get(form.write_mode, form.write_mode)})"),
            ("Partitioned by", ", ".join(form.partition_columns) or "—"),
            ("Engine", f"Spark cluster {cluster.name}" if (cluster := self._cluster()) else "Embedded"),
            ("Schedule", describe(schedule) if schedule else "incomplete"),
            ("Backfill", backfill.get(form.backfill_mode, form.backfill_mode)),
        ]
        with area:
            ui.label(title).classes("font-semibold mb-1")
            for caption, value in rows:
                with ui.row().classes("gap-1 text-sm"):
                    ui.label(f"{caption}:").classes("font-semibold")
                    ui.label(value)

    # --- navigation and validation --------------------------------------------------------------------------------
    def _current(self) -> int:
        value = self.stepper.value
        return STEPS.index(value if isinstance(value, str) else STEPS[0])

    def _update_navigation(self) -> None:
        index = self._current()
        self.back_button.set_enabled(index > 0)
        last = index == len(STEPS) - 1
        self.next_button.set_text("Test & Preview" if last else "Next")
        self.next_button.props(f"icon-right={'science' if last else 'arrow_forward'}")

    async def _on_step_change(self, event: Any) -> None:
        if event.value == self.moved_to:
            self.moved_to = None
            return
        target = STEPS.index(event.value)
        previous = STEPS.index(event.previous_value) if event.previous_value in STEPS else 0
        if target > previous:
            for step in STEPS[previous:target]:
                problems = validate_step(self.form, step)
                if problems:
                    self._go(step)
                    self._show_errors(problems)
                    return
        await self._entered(STEPS[target])

    def _go(self, step: str) -> None:
        if self.stepper.value != step:
            self.moved_to = step
            self.stepper.set_value(step)
        self._update_navigation()

    async def _entered(self, step: str) -> None:
        self._update_navigation()
        if step in ("Format", "Destination") and self.probe is None and not validate_parts(self.form, ("source",)):
            await self._reprobe()
        if step in ("Destination", "Schedule"):
            self._render_summaries()

    async def back(self) -> None:
        index = self._current()
        if index > 0:
            self._go(STEPS[index - 1])
            await self._entered(STEPS[index - 1])

    async def next(self) -> None:
        step = STEPS[self._current()]
        problems = validate_step(self.form, step)
        self._show_errors(problems)
        if problems:
            return
        if step == STEPS[-1]:
            await self.test_and_preview()
            return
        following = STEPS[self._current() + 1]
        self._go(following)
        await self._entered(following)

    def _clear_error(self, path: str) -> None:
        if path in self.errors:
            self.errors[path].set_visibility(False)

    def _show_errors(self, problems: dict[str, str]) -> None:
        for label in self.errors.values():
            label.set_visibility(False)
        for path, message in problems.items():
            slot = self._slot_for(path)
            if slot is None:
                ui.notify(f"{path}: {message}", type="negative")
                continue
            slot.set_text(message)
            slot.set_visibility(True)

    def _slot_for(self, path: str) -> ui.label | None:
        parts = path.split(".")
        while parts:
            if ".".join(parts) in self.errors:
                return self.errors[".".join(parts)]
            parts.pop()
        return None

    def _all_problems(self) -> tuple[str | None, dict[str, str]]:
        for step in STEPS:
            problems = validate_parts(self.form, STEP_PARTS[step])
            if problems:
                return step, problems
        return None, {}

    def _spec_or_errors(self) -> IngestionSpec | None:
        step, problems = self._all_problems()
        if step is not None:
            self._go(step)
            self._show_errors(problems)
            ui.notify(f"Fix the highlighted fields on the {step} step first.", type="warning")
            return None
        return build_spec(self.form, self.stored_secret)

    # --- saving ---------------------------------------------------------------------------------------------------
    async def save_draft(self) -> None:
        spec = self._spec_or_errors()
        if spec is None:
            return
        try:
            if self.editing:
                await run.io_bound(self.services.update_ingestion, self.editing.id, spec, "console")
            else:
                await run.io_bound(self.services.create_ingestion, spec, False, "console")
        except AutoloaderError as exc:
            self._show_service_error(exc)
            return
        done = "saved" if self.editing and self.locked else "saved as a draft"
        ui.navigate.to("/?" + urlencode({"notice": f"'{spec.name}' {done}."}))

    def _show_service_error(self, exc: AutoloaderError) -> None:
        slot = self._slot_for(exc.field) if exc.field else None
        if slot is not None:
            slot.set_text(f"{exc.message} {exc.action}".strip())
            slot.set_visibility(True)
        notify_error(exc)

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
            result = await run.io_bound(self.services.test_configuration, spec)
        except AutoloaderError as exc:
            self.back_to_edit()
            self.connection_result.set_text(f"✕ {exc.message} {exc.action}".strip())
            self.connection_result.set_visibility(True)
            notify_error(exc)
            return
        if result is None:
            return
        self.probe = result
        self.preview_area.clear()
        with self.preview_area:
            actions = PreviewActions(self.back_to_edit, self.save_draft, self.create)
            render_preview(spec, result, actions, activated=self.locked)

    def back_to_edit(self) -> None:
        self.preview_area.set_visibility(False)
        self.editor.set_visibility(True)

    async def create(self) -> None:
        spec = self._spec_or_errors()
        if spec is None:
            return
        try:
            if self.editing:
                await run.io_bound(self.services.update_ingestion, self.editing.id, spec, "console")
                if self.editing.status == IngestionStatus.DRAFT:
                    await run.io_bound(self.services.activate, self.editing.id, "console")
            else:
                await run.io_bound(self.services.create_ingestion, spec, True, "console")
        except AutoloaderError as exc:
            self.back_to_edit()
            self._show_service_error(exc)
            return
        ui.navigate.to("/?" + urlencode({"notice": f"'{spec.name}' is active. {first_run_text(spec)}"}))


def first_run_text(spec: IngestionSpec) -> str:
    if spec.schedule.mode == "manual":
        return "It runs when you click Run Now."
    upcoming = next_fire_times(spec.schedule, 1)
    if not upcoming:
        return "No upcoming run."
    return f"First run {relative_time(upcoming[0])} ({clock(upcoming[0])})."


async def new_ingestion_page() -> None:
    with frame("New Ingestion", width="max-w-4xl"):
        clusters = await run.io_bound(app.state.services.clusters.list) or []
        Wizard(WizardForm(), None, clusters).render()


async def edit_ingestion_page(ingestion_id: int) -> None:
    services = app.state.services
    with frame("Edit Ingestion", width="max-w-4xl"):
        try:
            ingestion: Ingestion | None = await run.io_bound(services.store.get_ingestion, ingestion_id)
        except AutoloaderError as exc:
            ui.label(exc.message).classes("text-lg text-red-700")
            ui.link("Back to the dashboard", "/")
            return
        if ingestion is None:
            return
        clusters = await run.io_bound(services.clusters.list) or []
        Wizard(form_from_spec(ingestion.spec), ingestion, clusters).render()
