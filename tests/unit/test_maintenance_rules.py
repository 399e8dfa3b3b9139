"""The pure rules of table maintenance (core/maintenance.py): the setting, when a scheduled maintenance is due, the
retention floor, and the Spark table formats that refuse maintenance with a typed error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.engines.spark.parquet import ParquetFormat
from core.engines.spark.session import ClusterTarget
from core.engines.spark.table import TableInfo, Tables
from core.errors import ConfigError, MaintenanceNotSupported
from core.maintenance import (
    SHORT_RETENTION_SETTING,
    MaintenanceConfig,
    check_retention,
    config_of,
    due_slot,
    next_due,
)
from core.ports import ActiveRun, maintenance_slot

NOW = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)


def test_defaults_and_validation() -> None:
    assert config_of({}) == MaintenanceConfig() and not MaintenanceConfig().enabled
    assert MaintenanceConfig().vacuum_retention_hours == 168
    assert MaintenanceConfig(enabled=True).describe() == "Every 24 h; vacuum keeps 168 h of history"
    assert MaintenanceConfig().describe() == "Off"
    for bad in (
        {"every_hours": 2, "cron": "0 3 * * *"},
        {"cron": "every sunday"},
        {"cron": "0 0 31 2 *"},  # never fires
        {"every_hours": 0},
        {"vacuum_retention_hours": -1},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            MaintenanceConfig.model_validate(bad)


def test_a_retention_under_7_days_needs_the_setting() -> None:
    check_retention(168, allow_short=False)
    check_retention(0, allow_short=True)
    with pytest.raises(ConfigError) as refused:
        check_retention(167, allow_short=False)
    assert refused.value.field == "vacuum_retention_hours" and SHORT_RETENTION_SETTING in refused.value.action


def test_due_slots_are_anchored_and_catch_up_once() -> None:
    every_6h = MaintenanceConfig(enabled=True, every_hours=6)
    assert due_slot(every_6h, None, NOW) == NOW.replace(hour=12, minute=0)
    assert due_slot(every_6h, NOW.replace(hour=12, minute=0), NOW) is None
    assert due_slot(MaintenanceConfig(every_hours=6), None, NOW) is None  # off
    assert due_slot(every_6h, None, NOW.replace(hour=15)) is None  # first fire seen more than 2 h late: the next one
    long_ago = NOW - timedelta(days=400)
    assert due_slot(every_6h, long_ago, NOW) == NOW.replace(hour=12, minute=0)  # only the latest missed slot
    weekly = MaintenanceConfig(enabled=True, cron="0 3 * * sun")  # Sundays 03:00 UTC; 2026-11-29 is a Sunday
    sunday = datetime(2026, 11, 29, 3, tzinfo=UTC)
    assert due_slot(weekly, sunday - timedelta(days=7), NOW) == sunday
    assert due_slot(weekly, sunday, NOW) is None
    assert next_due(weekly, NOW) == sunday + timedelta(days=7)


def test_the_slot_names_a_maintenance_apart_from_runs() -> None:
    assert ActiveRun(maintenance_slot(3), None, None).label == "table maintenance 3"
    assert ActiveRun(12, None, None, number=4).label == "run #4"  # as the console numbers it
    assert ActiveRun(12, None, None).label == "run 12"


def test_plain_parquet_tables_refuse_maintenance_with_an_action() -> None:
    parquet = ParquetFormat(Tables(ClusterTarget("c", "sc://localhost:1", table_format="parquet")))
    info = TableInfo("`spark_catalog`.`raw`.`events`", "parquet", "/tmp/events", None)
    with pytest.raises(MaintenanceNotSupported) as refused:
        parquet.compact(None, info)
    assert "delta" in refused.value.message and refused.value.action and refused.value.http_status == 409
    with pytest.raises(MaintenanceNotSupported):
        parquet.vacuum(None, info, 168, False)
