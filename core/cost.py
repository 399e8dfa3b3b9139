"""Monthly cost estimate of an ingestion (PRODUCT.md §9): compute + storage + discovery, with the inputs shown.

A pure function of the schedule, the volume per run and prices. Prices are parameters; the defaults below are
list prices of a small VM and of S3 Standard, to be overridden by settings once the settings carry prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from core.config import ScheduleConfig
from core.errors import ConfigError

PRICE_PER_COMPUTE_HOUR = 0.10
"""$ per hour of the machine running the embedded engine (a small cloud VM)."""
PRICE_PER_GB_MONTH = 0.023
"""$ per GB-month of table storage (S3 Standard)."""
PRICE_PER_1000_LIST_CALLS = 0.005
"""$ per 1,000 LIST requests (S3); local folders list for free."""
EMBEDDED_THROUGHPUT_GB_PER_HOUR = 144.0
"""Measured here: 40 MB of small JSON files read and committed in ~1 s (TECH-NOTES)."""
RUN_OVERHEAD_SECONDS = 2.0
"""Start, listing and commit of a run that loads nothing."""
FILES_PER_LIST_CALL = 1000
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.4
FREE_LISTING_SOURCES = ("local",)


@dataclass(frozen=True, slots=True)
class CostEstimate:
    runs_per_month: float
    files_per_run: float
    gb_per_run: float
    files_in_source: int
    throughput_gb_per_hour: float
    price_per_compute_hour: float
    price_per_gb_month: float
    price_per_1000_list_calls: float
    compute_hours: float
    stored_gb: float
    list_calls: float
    compute: float
    storage: float
    discovery: float

    @property
    def total(self) -> float:
        return self.compute + self.storage + self.discovery

    @property
    def minutes_per_run(self) -> float:
        return self.compute_hours * 60 / self.runs_per_month if self.runs_per_month else 0.0


def runs_per_month(schedule: ScheduleConfig, now: datetime | None = None) -> float:
    """Runs a month from the schedule; a manual ingestion is counted as one run a day."""
    if schedule.mode == "manual":
        return DAYS_PER_MONTH
    if schedule.mode == "continuous":
        return DAYS_PER_MONTH * 86400 / schedule.interval_seconds
    if schedule.frequency == "hourly":
        return HOURS_PER_MONTH
    if schedule.frequency == "daily":
        return DAYS_PER_MONTH
    if schedule.frequency == "weekly":
        return DAYS_PER_MONTH / 7
    return _cron_runs_per_month(schedule, now)


def _cron_runs_per_month(schedule: ScheduleConfig, now: datetime | None) -> float:
    from core.schedule import next_fire_times

    start = now or datetime.now(UTC)
    fires = next_fire_times(schedule, 200, after=start)
    if len(fires) < 2:
        return float(len(fires))
    span_days = (fires[-1] - start).total_seconds() / 86400
    return len(fires) / span_days * DAYS_PER_MONTH if span_days > 0 else 0.0


def estimate_monthly_cost(
    schedule: ScheduleConfig,
    source_type: str,
    *,
    files_per_run: float,
    gb_per_run: float,
    files_in_source: int,
    throughput_gb_per_hour: float = EMBEDDED_THROUGHPUT_GB_PER_HOUR,
    price_per_compute_hour: float = PRICE_PER_COMPUTE_HOUR,
    price_per_gb_month: float = PRICE_PER_GB_MONTH,
    price_per_1000_list_calls: float = PRICE_PER_1000_LIST_CALLS,
    now: datetime | None = None,
) -> CostEstimate:
    """Compute: hours to read the data plus a fixed overhead per run (always on when continuous).
    Storage: the table after a month of runs. Discovery: every run lists the whole source prefix."""
    if throughput_gb_per_hour <= 0:
        raise ConfigError("Engine throughput must be positive.", "Use the measured GB per hour of the engine.")
    runs = runs_per_month(schedule, now)
    if schedule.mode == "continuous":
        compute_hours = HOURS_PER_MONTH
    else:
        compute_hours = runs * (gb_per_run / throughput_gb_per_hour + RUN_OVERHEAD_SECONDS / 3600)
    stored_gb = gb_per_run * runs
    list_calls = runs * max(1, math.ceil(files_in_source / FILES_PER_LIST_CALL))
    list_price = 0.0 if source_type in FREE_LISTING_SOURCES else price_per_1000_list_calls
    return CostEstimate(
        runs_per_month=runs,
        files_per_run=files_per_run,
        gb_per_run=gb_per_run,
        files_in_source=files_in_source,
        throughput_gb_per_hour=throughput_gb_per_hour,
        price_per_compute_hour=price_per_compute_hour,
        price_per_gb_month=price_per_gb_month,
        price_per_1000_list_calls=list_price,
        compute_hours=compute_hours,
        stored_gb=stored_gb,
        list_calls=list_calls,
        compute=compute_hours * price_per_compute_hour,
        storage=stored_gb * price_per_gb_month,
        discovery=list_calls / 1000 * list_price,
    )


def approx_dollars(amount: float) -> str:
    """'~$58' for an estimate; tiny amounts stay '<$0.01' (no '~<')."""
    text = format_dollars(amount)
    return text if text.startswith(("<", "$0")) and amount < 0.01 else f"~{text}"


def format_dollars(amount: float) -> str:
    if amount < 0.01:
        return "<$0.01" if amount > 0 else "$0"
    if amount < 10:
        return f"${amount:,.2f}"
    return f"${amount:,.0f}"
