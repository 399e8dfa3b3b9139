"""Table maintenance (PRODUCT.md §15): small-file compaction and vacuum, on a schedule per ingestion.

What is pure lives here: the per-ingestion setting, when a scheduled maintenance is due, the retention rule and the
record the read side hands out. The engines do the work (`Engine.compact`, `Engine.vacuum`); the service
(`app/services/maintenance.py`) holds the ingestion's run slot while they do, so a run and a maintenance of one
ingestion never overlap.

Why the retention floor: a vacuum deletes the files no version within the retention still needs, and files no
version mentions yet. A reader still reading an older version, or a run whose files are written but not committed
yet, needs exactly such files; 7 days is Delta's own default and far longer than any run or read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import ConfigError
from core.schedule import FIRE_HORIZON, INTERVAL_ANCHOR, crontab_trigger, end_crons, last_fire_time

SAFE_RETENTION_HOURS = 168
SHORT_RETENTION_SETTING = "AUTOLOADER_ALLOW_SHORT_VACUUM_RETENTION"
"""The server setting that allows a vacuum retention under `SAFE_RETENTION_HOURS`."""
DEFAULT_EVERY_HOURS = 24
MAX_EVERY_HOURS = 366 * 24
MAX_RETENTION_HOURS = 10 * 366 * 24
FIRST_LOOKBACK = timedelta(hours=2)
"""With no scheduled maintenance recorded yet, a fire this recent is still due (the check runs every minute)."""
MAX_LOOKBACK = timedelta(days=32)
"""After a long stop only the latest missed fire runs: looking further back would find nothing newer."""


class MaintenanceConfig(BaseModel):
    """An ingestion's maintenance setting: compact then vacuum, every `every_hours` (anchored at midnight UTC) or
    at each fire of `cron` (five fields, UTC)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    every_hours: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EVERY_HOURS,
        description=f"Hours between maintenances (default {DEFAULT_EVERY_HOURS})",
    )
    cron: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="Instead of every_hours: a cron expression in UTC, read as cron reads it, e.g. '0 3 * * sun' "
        "(a weekday number counts from 0 = Sunday, as in cron and every schedule here)",
    )
    vacuum_retention_hours: int = Field(
        default=SAFE_RETENTION_HOURS,
        ge=0,
        le=MAX_RETENTION_HOURS,
        description=f"Vacuum keeps the files of every version younger than this; under {SAFE_RETENTION_HOURS} h "
        f"only with {SHORT_RETENTION_SETTING}=true",
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> MaintenanceConfig:
        if self.every_hours is not None and self.cron is not None:
            raise ValueError("give every_hours or cron, not both")
        if self.cron is not None:
            cron_trigger(self.cron)
        return self

    def trigger(self) -> BaseTrigger:
        if self.cron is not None:
            return crontab_trigger(self.cron.strip(), UTC)
        hours = self.every_hours or DEFAULT_EVERY_HOURS
        return IntervalTrigger(hours=hours, start_date=INTERVAL_ANCHOR, timezone=UTC)

    def describe(self) -> str:
        if not self.enabled:
            return "Off"
        when = f"Cron '{self.cron}' (UTC)" if self.cron else f"Every {self.every_hours or DEFAULT_EVERY_HOURS} h"
        return f"{when}; vacuum keeps {self.vacuum_retention_hours} h of history"


def cron_trigger(expression: str) -> BaseTrigger:
    """Check a cron: refused when it is not one or never fires within 5 years (the trigger returned ends then)."""
    try:
        trigger = crontab_trigger(expression.strip(), UTC)
    except ValueError as exc:
        raise ValueError(
            f"cron '{expression}' is not valid ({exc}); use five fields, e.g. '0 3 * * sun' (Sundays 03:00 UTC)"
        ) from None
    now = datetime.now(UTC)
    end_crons(trigger, now + FIRE_HORIZON)  # bounds the search of a cron that never fires
    if trigger.get_next_fire_time(None, now) is None:
        raise ValueError(f"cron '{expression}' does not fire within 5 years; use e.g. '0 3 * * sun'")
    return trigger


def config_of(stored: dict[str, Any] | None) -> MaintenanceConfig:
    """The setting as stored on the ingestion row (an empty object: maintenance off)."""
    return MaintenanceConfig.model_validate(stored or {})


def check_retention(hours: int, allow_short: bool) -> None:
    """Refuse a vacuum retention under 7 days unless the server allows it (see the module's docstring)."""
    if hours >= SAFE_RETENTION_HOURS or allow_short:
        return
    raise ConfigError(
        f"A vacuum retention of {hours} h is shorter than {SAFE_RETENTION_HOURS} h (7 days): a reader still reading "
        "an older version of the table, or a run whose files are not committed yet, could lose files it needs. "
        "Nothing was changed.",
        f"Keep vacuum_retention_hours at {SAFE_RETENTION_HOURS} or more, or set {SHORT_RETENTION_SETTING}=true on the "
        "server if no reader or run of these tables can take that long.",
        field="vacuum_retention_hours",
    )


def due_slot(config: MaintenanceConfig, last_slot: datetime | None, now: datetime) -> datetime | None:
    """The fire a scheduled maintenance is due for, or None. Every replica computes the same slot (the trigger is
    anchored), so the slot keys the maintenance record and one replica runs it."""
    if not config.enabled:
        return None
    window = FIRST_LOOKBACK if last_slot is None else min(max(now - last_slot, FIRST_LOOKBACK), MAX_LOOKBACK)
    slot = last_fire_time(config.trigger(), now, window)
    if slot is None or (last_slot is not None and slot <= last_slot):
        return None
    return slot


def next_due(config: MaintenanceConfig, now: datetime) -> datetime | None:
    return config.trigger().get_next_fire_time(None, now) if config.enabled else None


class MaintenanceStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(slots=True)
class MaintenanceRecord:
    """One maintenance of an ingestion's table, as the read side hands it out."""

    id: int
    ingestion_id: int
    trigger: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scheduled_for: datetime | None = None
    retention_hours: int = SAFE_RETENTION_HOURS
    files_before: int | None = None
    files_after: int | None = None
    bytes_before: int | None = None
    bytes_after: int | None = None
    files_removed: int | None = None
    message: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == MaintenanceStatus.RUNNING.value


@dataclass(slots=True)
class MaintenanceView:
    """An ingestion's maintenance: its setting and its latest records (newest first)."""

    config: MaintenanceConfig
    records: list[MaintenanceRecord]
    next_due: datetime | None = None

    @property
    def last(self) -> MaintenanceRecord | None:
        return self.records[0] if self.records else None

    @property
    def running(self) -> bool:
        return any(r.running for r in self.records)
