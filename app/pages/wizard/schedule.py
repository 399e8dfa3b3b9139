"""Step 4, Schedule: when it runs, the backfill, data quality alerts, the cost estimate and the summary."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import available_timezones

from nicegui import ui

from app.pages.wizard.alerts import AlertsAndLimits
from app.pages.wizard.draft import ADDRESSES, DATE, OPTIONAL_NUMBER, RAW_TEXT, TIMEZONE, WHOLE_NUMBER
from app.pages.wizard.fields import WizardState, section
from app.pages.wizard.summary import (
    backfill_choices,
    current_schedule,
    render_cost,
    render_schedule_preview,
    render_summary,
)
from components.styles import PANEL

MODES = {"scheduled": "Scheduled (recommended for batch data)", "continuous": "Continuous", "manual": "Manual"}
FREQUENCIES = {"hourly": "Hourly", "daily": "Daily", "weekly": "Weekly", "custom": "Custom (cron)"}
WEEKDAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday"} | {
    "sat": "Saturday",
    "sun": "Sunday",
}


class ScheduleStep:
    def __init__(self, state: WizardState, on_change: Callable[[], None]) -> None:
        """`on_change` re-renders what depends on the schedule (summaries, cost) on every step."""
        self.state = state
        self.fields = state.fields
        self.draft = state.draft
        self.on_change = on_change

    def _is(self, path: str, *values: str) -> Callable[[], bool]:
        return lambda: self.draft.get(path) in values

    def render(self) -> None:
        fields, refresh = self.fields, self.on_change
        section("Processing Schedule", "event")
        mode = ui.radio(MODES).props("inline")
        fields.bind(mode, "schedule.mode", after=self._trigger_changed)
        with fields.when(ui.row().classes("w-full no-wrap gap-3"), self._is("schedule.mode", "scheduled")):
            self._scheduled()
        with fields.when(ui.column().classes("w-full"), self._is("schedule.mode", "continuous")):
            every = ui.number("Check for new files every (seconds)", precision=0).props("outlined")
            fields.bind(every.classes("w-full"), "schedule.interval_seconds", WHOLE_NUMBER, after=refresh)
        with fields.when(ui.column().classes("w-full"), self._is("schedule.mode", "scheduled", "continuous")):
            zone = ui.select(sorted(available_timezones()), label="Time zone", with_input=True)
            fields.bind(zone.props("outlined").classes("w-full"), "schedule.timezone", TIMEZONE, after=refresh)
        self.schedule_preview = ui.column().classes("w-full gap-0 text-sm text-slate-600").mark("schedule-preview")
        ui.label("Backfill Options").classes("text-sm text-slate-600 mt-2")
        self.backfill = ui.radio(backfill_choices(None)).props("inline")
        fields.bind(self.backfill, "schedule.backfill.mode", after=refresh)
        with fields.when(ui.column().classes("w-full"), self._is("schedule.backfill.mode", "since")):
            since = ui.input("Files modified since (YYYY-MM-DD)").props("outlined type=date").classes("w-full")
            fields.bind(since, "schedule.backfill.since", DATE, after=refresh)
        section("Data Quality (optional)", "verified")
        with ui.row().classes("w-full no-wrap gap-3"):
            rows = ui.number("Alert if fewer rows per run than", precision=0).props("outlined")  # no clamp: said
            fields.bind(rows.classes("flex-1"), "quality.row_count_min", OPTIONAL_NUMBER, after=refresh)
            recipients = ui.input("Alert recipients (comma-separated e-mails)").props("outlined").classes("flex-1")
            fields.bind(recipients, "quality.alert_recipients", ADDRESSES, after=refresh)
        AlertsAndLimits(fields, refresh).render()
        self.cost_area = ui.column().classes("w-full")
        self.summary = ui.column().classes(f"{PANEL} gap-0").mark("config-summary")

    def _scheduled(self) -> None:
        fields, refresh = self.fields, self.on_change
        frequency = ui.select(FREQUENCIES, label="Frequency").props("outlined").classes("flex-1")
        fields.bind(frequency, "schedule.frequency", after=self._trigger_changed)
        with fields.when(ui.column().classes("flex-1"), self._is("schedule.frequency", "hourly")):
            minute = ui.number("At minute", precision=0).props("outlined").classes("w-full")  # 75 is said, not 59
            fields.bind(minute, "schedule.minute", WHOLE_NUMBER, after=refresh)
        with fields.when(ui.column().classes("flex-1"), self._is("schedule.frequency", "weekly")):
            day = ui.select(WEEKDAYS, label="Day").props("outlined").classes("w-full")
            fields.bind(day, "schedule.weekday", after=refresh)
        with fields.when(ui.column().classes("flex-1"), self._is("schedule.frequency", "daily", "weekly")):
            at = ui.input("Time (HH:MM)").props("outlined type=time").classes("w-full")
            fields.bind(at, "schedule.time", RAW_TEXT, after=refresh)
        with fields.when(ui.column().classes("flex-1"), self._is("schedule.frequency", "custom")):
            cron = ui.input("Cron expression", placeholder="0 2 * * *").props("outlined").classes("w-full")
            fields.bind(cron, "schedule.cron_expression", RAW_TEXT, after=refresh)

    def _trigger_changed(self) -> None:
        """A newly chosen mode or frequency starts with the values it needs (daily at 02:00, ...) where the spec
        has none; fields it does not use keep theirs."""
        self.fields.pull(*self.draft.fill_schedule())
        self.fields.sync()
        self.on_change()

    def render_summaries(self) -> None:
        schedule = current_schedule(self.draft)
        self.fields.set_options(self.backfill, backfill_choices(self.state.probe))
        render_schedule_preview(self.schedule_preview, schedule)
        render_cost(self.cost_area, self.state, schedule)
        render_summary(self.summary, self.state, "Complete Configuration Summary")
