"""`GET /metrics` after real runs through the API, on SQLite and PostgreSQL: the numbers are the runs' own, the
text is strictly Prometheus' format, and only an instance admin's token (or the public setting) reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from app.db.metrics_queries import SETTLED_AFTER, InstanceMetricsQuery
from app.services.accounts import principal_of
from core.access import Role
from core.views import InstanceMetrics
from tests.helpers import write_json_files
from tests.integration.test_api import body
from tests.prometheus_text import Samples, parse

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""Who may read does not depend on the metadata database."""


def _one_run(api: Any, services: Any, folder: Path) -> dict[str, Any]:
    write_json_files(folder, 3, 50)
    ingestion = api.post("/api/v1/ingestions", json=body(folder, activate=True)).json()
    run_id = api.post(f"/api/v1/ingestions/{ingestion['id']}/run").json()["run_id"]
    services.runner.wait(run_id)
    run: dict[str, Any] = api.get(f"/api/v1/ingestions/{ingestion['id']}/runs/{run_id}").json()
    assert run["status"] == "success", run
    return run


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_after_one_run(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _one_run(api, services, tmp_path / "in")
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse(response.text)

    assert types["autoloader_runs_total"] == "counter" and types["autoloader_run_duration_seconds"] == "histogram"
    assert _value(samples, "autoloader_runs_total", status="success") == 1
    assert _value(samples, "autoloader_runs_total", status="failed") == 0
    assert _value(samples, "autoloader_runs_in_progress", status="running") == 0
    metrics = run["metrics"]
    assert _value(samples, "autoloader_files_total") == metrics["files_processed"] == 3
    assert _value(samples, "autoloader_records_total") == metrics["records_ingested"] == 150
    assert _value(samples, "autoloader_bytes_total") == metrics["bytes_read"] > 0
    assert _value(samples, "autoloader_bytes_written_total") == metrics["bytes_written"] > 0
    assert _value(samples, "autoloader_run_duration_seconds_count") == 1
    assert _value(samples, "autoloader_run_duration_seconds_bucket", le="+Inf") == 1
    assert _value(samples, "autoloader_run_duration_seconds_sum") == metrics["duration_seconds"]
    assert _value(samples, "autoloader_run_duration_seconds_bucket", le="7200.0") == 1
    assert _value(samples, "autoloader_ingestions", status="active") == 1
    assert _value(samples, "autoloader_pending_schema_reviews") == 0
    assert "autoloader_scheduler_lag_seconds" not in types, "no scheduled run yet: no lag to report"


def test_scheduler_lag_is_the_last_scheduled_runs_late_start(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 1)
    ingestion_id = api.post("/api/v1/ingestions", json=body(tmp_path / "in", activate=True)).json()["id"]
    slot = datetime.now(UTC) - timedelta(seconds=90)  # a fire that claimed its slot 90 s late
    run_id = services.store.create_scheduled_run(ingestion_id, slot, "scheduled")
    services.store.mark_run_started(run_id, "metrics-test")
    _, samples = parse(api.get("/metrics").text)
    assert 90 <= _value(samples, "autoloader_scheduler_lag_seconds") < 150
    assert _value(samples, "autoloader_runs_in_progress", status="running") == 1


def test_scheduler_lag_follows_empty_continuous_checks(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Empty continuous checks are folded away (no run row), so the lag of the newest one is kept on its ingestion:
    before, the metric kept the last stored run's lag for as long as the checks found nothing."""
    write_json_files(tmp_path / "in", 1, 1)
    ingestion_id = api.post("/api/v1/ingestions", json=body(tmp_path / "in", activate=True)).json()["id"]
    late = services.store.create_scheduled_run(ingestion_id, datetime.now(UTC) - timedelta(seconds=600), "scheduled")
    services.store.mark_run_started(late, "metrics-test")  # a stored run that started 600 s after its slot
    check = services.store.create_scheduled_run(ingestion_id, datetime.now(UTC) - timedelta(seconds=2), "scheduled")
    services.store.mark_run_started(check, "metrics-test")
    assert services.store.fold_empty_check(check)
    assert services.store.get_run_by_id(check) is None, "the empty check left no run behind"
    _, samples = parse(api.get("/metrics").text)
    assert 0 <= _value(samples, "autoloader_scheduler_lag_seconds") < 60, "the newer empty check's lag, not 600 s"


def _run_again(api: Any, services: Any, run: dict[str, Any], folder: Path) -> dict[str, Any]:
    write_json_files(folder, 2, 10, start_id=10_000, prefix="more")
    run_id = api.post(f"/api/v1/ingestions/{run['ingestion_id']}/run").json()["run_id"]
    services.runner.wait(run_id)
    again: dict[str, Any] = api.get(f"/api/v1/ingestions/{run['ingestion_id']}/runs/{run_id}").json()
    assert again["status"] == "success" and again["metrics"]["files_processed"] == 2, again
    return again


def _same_totals(a: InstanceMetrics, b: InstanceMetrics) -> None:
    assert a.by_status.keys() == b.by_status.keys()
    for status, totals in a.by_status.items():
        other = b.by_status[status]
        assert replace(totals, seconds=0.0) == replace(other, seconds=0.0), status
        assert totals.seconds == pytest.approx(other.seconds)


def test_settled_runs_are_summed_once(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run that ended SETTLED_AFTER ago is folded into the replica's running sum once; later scrapes add only the
    runs after it, and the totals equal a full sum (a restarted replica's)."""
    first = _one_run(api, services, tmp_path / "in")
    queries = services.views.queries
    settled = datetime.now(UTC) + SETTLED_AFTER + timedelta(seconds=1)
    folded = queries.instance_metrics(now=settled)
    _same_totals(queries.instance_metrics(now=settled), folded)
    assert folded.by_status["success"].runs == 1 and folded.by_status["success"].files == 3

    second = _run_again(api, services, first, tmp_path / "in")
    after = queries.instance_metrics()
    assert after.by_status["success"].runs == 2, "the folded run once, the new one live"
    assert after.by_status["success"].files == 3 + 2
    assert after.by_status["success"].bytes_read == first["metrics"]["bytes_read"] + second["metrics"]["bytes_read"]
    _same_totals(after, InstanceMetricsQuery(queries.session).read())


@SQLITE_ONLY
def test_metrics_need_an_instance_admins_token(api, services) -> None:  # type: ignore[no-untyped-def]
    admin = services.accounts.principal_for_token(api.headers["Authorization"].split()[1])
    member = services.accounts.create_user(admin, "member@example.com", "a-long-password-1", Role.MEMBER, None)
    other_tenant = services.accounts.create_tenant(admin, "other")
    tenant_admin = services.accounts.create_user(
        admin, "admin@other.example.com", "a-long-password-2", Role.ADMIN, other_tenant.id
    )
    app = api.app
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/metrics", headers={"Authorization": "Bearer al_not-a-token"}).status_code == 401
        for user in (member, tenant_admin):
            token = services.accounts.create_token(principal_of(user), user.id, "own token")
            refused = anonymous.get("/metrics", headers={"Authorization": f"Bearer {token.token}"})
            assert refused.status_code == 403, (user.email, refused.text)
    assert api.get("/metrics").status_code == 200


@SQLITE_ONLY
def test_metrics_are_public_with_the_setting(services) -> None:  # type: ignore[no-untyped-def]
    services.settings.metrics_public = True
    app = FastAPI()
    mount_api(app, services)
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        response = anonymous.get("/metrics")
        assert response.status_code == 200, response.text
        assert _value(parse(response.text)[1], "autoloader_runs_total", status="success") == 0
        assert anonymous.get("/api/v1/ingestions").status_code == 401, "only /metrics opens"
