"""`GET /api/v1/health`: 200 with every check ok, 503 `degraded` naming the failed check and why. The database
outage itself is in test_db_outage.py (a PostgreSQL cluster of its own, stopped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from app.bootstrap import build


def _health(services: Any) -> Any:
    app = FastAPI()
    mount_api(app, services)
    with TestClient(app, raise_server_exceptions=False) as client:
        return client.get("/api/v1/health")


def test_health_names_each_check(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database", "scheduler", "warehouse"}
    assert all(check["status"] == "ok" and check["detail"] for check in body["checks"].values())


def test_a_stopped_scheduler_is_degraded(settings) -> None:  # type: ignore[no-untyped-def]
    services = build(settings)
    services.start()
    try:
        services.scheduler.shutdown()
        response = _health(services)
    finally:
        services.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["checks"]["scheduler"]["status"] == "failed"
    assert "stopped" in body["checks"]["scheduler"]["detail"]
    assert body["checks"]["database"]["status"] == "ok"


def test_a_warehouse_that_cannot_be_a_folder_is_degraded(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse's parent folder should be")
    settings.warehouse = str(blocker / "warehouse")
    services = build(settings)
    try:
        response = _health(services)
    finally:
        services.close()
    assert response.status_code == 503
    warehouse = response.json()["checks"]["warehouse"]
    assert warehouse["status"] == "failed" and "AUTOLOADER_WAREHOUSE" in warehouse["detail"]
