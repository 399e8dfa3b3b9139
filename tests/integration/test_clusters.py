"""Cluster registry API and test connection: good cluster, dead port, wrong token."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port
from tests.spark_server import spark_server


@pytest.fixture
def database_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'meta.db'}"


def _register(api: Any, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/clusters", json={"table_format": "parquet", **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_crud_never_returns_the_token(api: Any, services: Any) -> None:
    created = _register(api, name="prod", connect_url="sc://spark.example:15002", token="s3cret", price_per_hour=2.5)
    assert created["has_token"] is True and "token" not in created and "token_encrypted" not in created
    assert "s3cret" not in api.get("/api/v1/clusters").text
    with services.store.session() as s:
        from app.db.models import Cluster

        stored = s.get(Cluster, created["id"])
        assert stored is not None and stored.token_encrypted and "s3cret" not in stored.token_encrypted
    updated = api.put(f"/api/v1/clusters/{created['id']}", json={"price_per_hour": 3.0, "token": None})
    assert updated.status_code == 200 and updated.json()["price_per_hour"] == 3.0
    assert updated.json()["has_token"] is False
    duplicate = api.post("/api/v1/clusters", json={"name": "prod", "connect_url": "sc://x:1"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["action"]
    bad = api.post("/api/v1/clusters", json={"name": "bad", "connect_url": "http://x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "connect_url"
    assert api.delete(f"/api/v1/clusters/{created['id']}").status_code == 204
    missing = api.post(f"/api/v1/clusters/{created['id']}/test")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_good_cluster(api: Any) -> None:
    server = spark_server()
    cluster = _register(api, name="local", connect_url=server.url, token=server.token)
    result = api.post(f"/api/v1/clusters/{cluster['id']}/test").json()
    assert result["ok"] and result["reachable"] and result["format_ok"], result
    assert result["spark_version"].startswith("4.")
    assert "Spark 4" in result["message"]


def test_dead_port_is_unreachable_within_seconds(api: Any) -> None:
    cluster = _register(api, name="dead", connect_url=f"sc://localhost:{free_port()}")
    started = time.monotonic()
    result = api.post(f"/api/v1/clusters/{cluster['id']}/test").json()
    assert time.monotonic() - started < 5
    assert not result["ok"] and not result["reachable"]
    assert result["error_code"] == "cluster_unreachable"
    assert "not reachable" in result["message"] and result["action"]


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_wrong_or_missing_token_is_an_auth_error(api: Any, token: str | None) -> None:
    server = spark_server()
    cluster = _register(api, name="auth", connect_url=server.url, token=token)
    started = time.monotonic()
    result = api.post(f"/api/v1/clusters/{cluster['id']}/test").json()
    assert time.monotonic() - started < 5
    assert not result["ok"]
    assert result["error_code"] == "cluster_auth_failed", result
    assert "authentication failed" in result["message"] and "token" in result["action"]


def test_ingestion_on_a_missing_cluster_is_rejected(api: Any, tmp_path: Path) -> None:
    body = {
        "name": "x",
        "cluster_id": 999,
        "source": {"type": "local", "path": str(tmp_path)},
        "format": {"type": "json"},
        "destination": {"table": "t"},
    }
    response = api.post("/api/v1/ingestions", json=body)
    assert response.status_code == 404, response.text


def test_error_details_never_carry_the_token() -> None:
    from core.engines.spark import translate

    error = translate(RuntimeError("cannot reach sc://127.0.0.1:15002/;token=s3cr3t-value;user_id=x"), "prod", "x")
    assert "s3cr3t-value" not in error.detail and "token=***" in error.detail
