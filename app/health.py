"""`GET /api/v1/health`: the metadata database, the scheduler and the warehouse, each ok or failed with why."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, text

from app.warehouse import WAREHOUSE_SETTINGS, is_object_store, list_root

DB_CHECK_TIMEOUT_MS = 3000


class SchedulerHealth(Protocol):
    def health(self) -> tuple[bool, str]: ...


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


def check_database(db: Engine) -> Check:
    try:
        with db.connect() as conn:
            if db.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {DB_CHECK_TIMEOUT_MS}"))  # this check only
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        first_line = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        return Check(False, f"{db.dialect.name} unreachable: {type(exc).__name__}: {first_line[:300]}")
    return Check(True, f"{db.dialect.name} answers")


def check_warehouse(warehouse: str, storage_options: dict[str, str] | None = None) -> Check:
    """A local warehouse must be a writable folder (or creatable); an object store must answer delta-rs's listing
    of its root (nothing is written: the server's start wrote and deleted a probe table, app/warehouse.py)."""
    if is_object_store(warehouse):
        why = list_root(warehouse, storage_options or {})
        if why is not None:
            return Check(False, f"{warehouse} unreachable: {why}. Fix {WAREHOUSE_SETTINGS}")
        return Check(True, f"{warehouse} answers")
    path = warehouse.removeprefix("file://")
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        return Check(False, f"{path} is not a writable folder: fix its permissions or AUTOLOADER_WAREHOUSE")
    return Check(True, f"{path} writable")


def check_all(
    db: Engine, scheduler: SchedulerHealth, warehouse: str, storage_options: dict[str, str] | None = None
) -> dict[str, Check]:
    ok, why = scheduler.health()
    return {
        "database": check_database(db),
        "scheduler": Check(ok, why),
        "warehouse": check_warehouse(warehouse, storage_options),
    }
