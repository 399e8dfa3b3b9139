"""Step 4, Schedule: the collapsible "Alerts & limits" section — the alert settings of `quality` and the batch
limits of `limits` that the Data Quality row above it does not show.

Each widget is bound to its spec field like every other wizard field, so its errors come from the spec's own
validation (app/pages/wizard/validation.py); the caption names what differs from the defaults, so a collapsed
section hides nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.draft import OPTIONAL_NUMBER, OPTIONAL_TEXT, Codec, SpecDraft
from app.pages.wizard.fields import FormFields
from core.config import LoadLimits, QualityConfig

MIB = 1024 * 1024
DEFAULT_RATIO: float = QualityConfig.model_fields["max_bad_record_ratio"].default
DEFAULT_FILES: int = LoadLimits.model_fields["max_files_per_batch"].default
DEFAULT_BYTES: int = LoadLimits.model_fields["max_bytes_per_batch"].default


def _scaled(default: float, scale: float) -> Callable[[Any], Any]:
    """Reads a number field shown in other units (a percentage, MiB); an emptied field is the default again."""

    def read(value: Any) -> Any:
        if value in (None, ""):
            return default
        number = float(value) * scale
        return number if isinstance(default, float) else round(number)

    return read


PERCENT = Codec(lambda v: round(v * 100, 4), _scaled(DEFAULT_RATIO, 0.01))
"""The bad-record ratio (0..1) as a percentage."""
MEBIBYTES = Codec(lambda v: round(v / MIB, 3), _scaled(DEFAULT_BYTES, MIB))
"""Bytes per batch, shown in MiB."""
FILES = Codec(read=_scaled(DEFAULT_FILES, 1))

HELP = {
    "quality.duration_sla_minutes": "Alert when a run takes longer than this (a run still going counts too).",
    "quality.no_files_alert_days": "Alert when no new file has arrived for this many days.",
    "quality.webhook_url": "Alerts are also POSTed as JSON to this URL (Slack, Teams or your own endpoint).",
    "quality.max_bad_record_ratio": "A batch with more malformed records than this fails, and nothing of it is "
    "written (malformed: a record that does not parse or fit the schema).",
    "limits.max_files_per_batch": "A run commits to the table in batches of at most this many files.",
    "limits.max_bytes_per_batch": "... and at most this much data; smaller batches use less memory.",
}


def changed_settings(draft: SpecDraft) -> list[str]:
    """What this section sets away from the defaults, as the caption and the summary say it."""
    quality, limits = draft.get("quality"), draft.get("limits")
    found = []
    if quality.get("duration_sla_minutes"):
        found.append(f"SLA {quality['duration_sla_minutes']} min")
    if quality.get("no_files_alert_days"):
        found.append(f"no files for {quality['no_files_alert_days']} days")
    if quality.get("webhook_url"):
        found.append(f"webhook {quality['webhook_url']}")
    if quality.get("max_bad_record_ratio") != DEFAULT_RATIO:
        found.append(f"bad records over {quality['max_bad_record_ratio']:.1%}")
    if limits.get("max_files_per_batch") != DEFAULT_FILES or limits.get("max_bytes_per_batch") != DEFAULT_BYTES:
        found.append(batches_text(draft))
    return found


def batches_text(draft: SpecDraft) -> str:
    limits = draft.get("limits")
    return f"batches of ≤ {limits['max_files_per_batch']:,} files and ≤ {limits['max_bytes_per_batch'] / MIB:,.0f} MiB"


class AlertsAndLimits:
    def __init__(self, fields: FormFields, on_change: Callable[[], None]) -> None:
        self.fields = fields
        self.on_change = on_change

    def render(self) -> None:
        self.expansion = ui.expansion("Alerts & limits", icon="notifications_active", caption=self.caption())
        self.expansion.classes("w-full border border-slate-200 rounded-lg").mark("alerts-and-limits")
        self.expansion.props('toggle-aria-label=""')
        with self.expansion, ui.grid(columns=2).classes("w-full gap-x-4"):
            self._number("Alert if a run takes longer than (minutes)", "quality.duration_sla_minutes", OPTIONAL_NUMBER)
            self._number("Alert if no new files for (days)", "quality.no_files_alert_days", OPTIONAL_NUMBER)
            with ui.column().classes("w-full gap-1 col-span-2"):
                webhook = ui.input("Webhook URL", placeholder="https://hooks.slack.com/services/...")
                self.fields.bind(
                    webhook.props("outlined").classes("w-full"),
                    "quality.webhook_url",
                    OPTIONAL_TEXT,
                    after=self._changed,
                )
                _help("quality.webhook_url")
            self._number("Max malformed records per batch (%)", "quality.max_bad_record_ratio", PERCENT, maximum=100)
            ui.element("div")
            self._number("Max files per batch", "limits.max_files_per_batch", FILES, minimum=1)
            self._number("Max data per batch (MiB)", "limits.max_bytes_per_batch", MEBIBYTES, minimum=0.001)

    def _number(self, label: str, path: str, codec: Codec, minimum: float = 0, maximum: float | None = None) -> None:
        with ui.column().classes("w-full gap-1"):
            number = ui.number(label, min=minimum, max=maximum).props("outlined").classes("w-full")
            self.fields.bind(number, path, codec, after=self._changed)
            _help(path)

    def _changed(self, *_: Any) -> None:
        self.expansion.props["caption"] = self.caption()
        self.expansion.update()
        self.on_change()

    def caption(self) -> str:
        changed = changed_settings(self.fields.draft)
        return "Changed: " + "; ".join(changed) if changed else "No SLA, no webhook; default batch limits"


def _help(path: str) -> None:
    ui.label(HELP[path]).classes("text-xs text-slate-500")
