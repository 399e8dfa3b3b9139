"""The spec the wizard edits, and how its fields are shown in widgets.

The wizard never rebuilds a spec from its widgets. It edits `SpecDraft`, a copy of the stored spec's data (for a
new ingestion, of a default spec); a widget writes its field only when the user changes it, so every field the
wizard does not show — or shows but the user leaves alone — is saved exactly as it was stored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from core.config import FormatConfig, IngestionSpec

NEW_INGESTION: dict[str, Any] = {
    "name": "new",
    "source": {"type": "local", "path": "/"},
    "format": {"type": "json"},
    "destination": {"table": "new"},
    "schedule": {"mode": "scheduled", "frequency": "daily", "time": "02:00", "interval_seconds": 60},
}
"""The default spec of a new ingestion; name, path and table are emptied for the user to fill in."""
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "frequency": "daily",
    "minute": 0,
    "time": "02:00",
    "weekday": "mon",
    "cron_expression": "0 2 * * *",
}
"""What a schedule field starts at when the user picks a frequency that needs it and the spec has none."""


class SpecDraft:
    """A mutable copy of an `IngestionSpec`'s data, addressed by the contract's field paths ("source.path").

    Values may be invalid while the user types; `spec()` validates the whole copy into a new spec."""

    def __init__(self, spec: IngestionSpec) -> None:
        self.data: dict[str, Any] = spec.model_dump(by_alias=True)

    @classmethod
    def new(cls) -> SpecDraft:
        draft = cls(IngestionSpec.model_validate(NEW_INGESTION))
        for path in ("name", "source.path", "destination.table"):
            draft.set(path, "")
        return draft

    def get(self, path: str) -> Any:
        value: Any = self.data
        for key in path.split("."):
            value = value[key]
        return value

    def set(self, path: str, value: Any) -> None:
        *parents, last = path.split(".")
        container = self.data
        for key in parents:
            container = container[key]
        container[last] = value

    def spec(self) -> IngestionSpec:
        """The edited spec (raises ValidationError; validate the steps first to show errors per field)."""
        return IngestionSpec.model_validate(copy.deepcopy(self.data))

    def probe_spec(self) -> IngestionSpec:
        """A spec for testing the source (and the format) before the later steps are filled in."""
        data = copy.deepcopy(self.data)
        data["name"] = data["name"] or "connection-test"
        data["destination"] = {"table": "connection_test"}
        data["schedule"] = {}
        data["quality"] = {}
        try:
            FormatConfig.model_validate(data["format"])
        except ValidationError:
            data["format"] = {"type": data["format"]["type"]}
        return IngestionSpec.model_validate(data)

    def fill_schedule(self) -> list[str]:
        """Give a scheduled trigger the fields its frequency needs that the spec leaves empty; returns their paths."""
        if self.get("schedule.mode") != "scheduled":
            return []
        needed = {"hourly": ["minute"], "daily": ["time"], "weekly": ["time", "weekday"], "custom": ["cron_expression"]}
        frequency = self.get("schedule.frequency") or SCHEDULE_DEFAULTS["frequency"]
        filled = []
        for name in ["frequency", *needed.get(frequency, [])]:
            if self.get(f"schedule.{name}") is None:
                self.set(f"schedule.{name}", SCHEDULE_DEFAULTS[name])
                filled.append(f"schedule.{name}")
        return filled

    @property
    def full_table_name(self) -> str:
        catalog, database, table = (self.get(f"destination.{part}") for part in ("catalog", "database", "table"))
        return f"{catalog or 'main'}.{database or 'default'}.{table or '<table>'}"


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Codec:
    """How a widget shows a spec value (`show`) and what it writes back when the user changes it (`read`)."""

    show: Callable[[Any], Any] = _same
    read: Callable[[Any], Any] = _same


def _json_or_text(text: str | None) -> Any:
    """Parsed JSON, or the text itself when it is not JSON (validation then names the field)."""
    text = text or ""
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return text


def _json_shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2) if value else ""


def _addresses(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").replace(";", ",").split(",") if item.strip()]


def date_text(value: datetime | date | str | None) -> str:
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return value or ""


SAME = Codec()
TEXT = Codec(lambda v: v or "", lambda v: (v or "").strip())
OPTIONAL_TEXT = Codec(lambda v: v or "", lambda v: (v or "").strip() or None)
RAW_TEXT = Codec(lambda v: v or "", lambda v: v or "")
OPTIONAL_RAW = Codec(lambda v: v or "", lambda v: v or None)
"""A single character where a space counts (an escape, a comment mark): empty is None, nothing is stripped."""
WHOLE_NUMBER = Codec(read=lambda v: int(v or 0))
OPTIONAL_NUMBER = Codec(read=lambda v: None if v in (None, "") else int(v))
COLUMNS = Codec(lambda v: list(v or []), lambda v: list(v or []))
ADDRESSES = Codec(lambda v: ", ".join(v or []), _addresses)
JSON_TEXT = Codec(_json_shown, _json_or_text)
DATE = Codec(date_text, lambda v: v or None)
TIMEZONE = Codec(read=lambda v: v or "UTC")
ENGINE = Codec(lambda v: v or 0, lambda v: v or None)
"""The engine radio: 0 is the embedded engine (cluster_id None)."""


def secret_codec(stored: str | None) -> Codec:
    """A secret is never sent to the browser; an empty field keeps the stored one."""
    return Codec(lambda _: "", lambda v: v or stored)
