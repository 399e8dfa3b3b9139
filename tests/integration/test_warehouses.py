"""Object-store warehouses for the embedded engine (issue #16 item 4), on the emulators: the tables in an S3 bucket
(SeaweedFS), and a GCS bucket on fake-gcs-server refused at the server's start and by the health check, because
delta-rs cannot write there (it speaks GCS's XML API, which fake-gcs-server does not serve; see
docs/operator-guide.md, Warehouse). The Azure warehouse is in test_cloud_sources.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from app.bootstrap import build
from app.health import check_warehouse
from app.warehouse import PROBE_FOLDER, require_writable_warehouse
from core.domain import RunStatus
from core.errors import ConfigError
from tests.helpers import spec, write_json_files
from tests.services import ACCESS_KEY, SECRET_KEY, FakeGCS, SeaweedFS, free_port

REPO = Path(__file__).resolve().parents[2]


def _s3_options(server: SeaweedFS, secret: str = SECRET_KEY) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def _gcs_options(server: FakeGCS) -> dict[str, str]:
    return {"google_base_url": server.endpoint_url, "google_skip_signature": "true", "allow_http": "true"}


def _keys(server: SeaweedFS, bucket: str) -> list[str]:
    return [item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_an_ingestion_loads_into_an_s3_warehouse_and_drops_its_table(
    settings: Any, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    from deltalake import DeltaTable

    bucket = seaweedfs.new_bucket("wh")
    warehouse, options = f"s3://{bucket}/warehouse", _s3_options(seaweedfs)
    require_writable_warehouse(warehouse, options)  # the server's start: a probe table written, then deleted
    assert _keys(seaweedfs, bucket) == []
    services = build(settings.model_copy(update={"warehouse": warehouse, "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 3, 1000)
        owned = {"table_properties": {"team.name": "data platform"}}  # taken by a table created first (embedded.py)
        ingestion = services.ingestions.create(spec(str(landing), table="s3_wh", destination=owned), activate=True)
        uri = services.embedded.table_uri(ingestion.spec.destination)
        assert uri == f"{warehouse}/main/raw/s3_wh"
        first = services.runs.run_now(ingestion.name)
        assert (first.status, first.metrics.records_ingested) == (RunStatus.SUCCESS, 3000), first
        write_json_files(landing, 2, 1000, start_id=3000, prefix="later")
        second = services.runs.run_now(ingestion.name)
        assert (second.metrics.files_processed, second.metrics.records_ingested) == (2, 2000)
        assert DeltaTable(uri, storage_options=options).metadata().configuration == {"team.name": "data platform"}
        table = DeltaTable(uri, storage_options=options).to_pyarrow_table()
        assert table.num_rows == 5000 and pc.count_distinct(table.column("id")).as_py() == 5000
        assert check_warehouse(warehouse, options).ok
        keys = _keys(seaweedfs, bucket)
        assert any(key.startswith("warehouse/main/raw/s3_wh/_delta_log/") for key in keys)
        assert not any(PROBE_FOLDER in key for key in keys)
        seaweedfs.client().put_object(Bucket=bucket, Key="warehouse/main/raw/s3_wh_old/keep.txt", Body=b"x")
        services.ingestions.delete(ingestion.id, drop_table=True)
    finally:
        services.close()
    assert _keys(seaweedfs, bucket) == ["warehouse/main/raw/s3_wh_old/keep.txt"]


def test_an_s3_warehouse_with_a_wrong_secret_is_refused_at_start(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket("wh")
    with pytest.raises(ConfigError) as info:
        require_writable_warehouse(f"s3://{bucket}/warehouse", _s3_options(seaweedfs, secret="not-the-secret"))
    assert f"s3://{bucket}/warehouse" in info.value.message and "403" in info.value.message
    assert "not-the-secret" not in info.value.message
    assert "AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS" in info.value.action


def test_a_gcs_warehouse_on_fake_gcs_server_stops_the_server_start(fake_gcs: FakeGCS, tmp_path: Path) -> None:
    """`autoloader serve` itself: it exits 2 with the reason before it listens (before the check, it served and the
    run timed out). Out of pytest's environment, or NiceGUI would take it for a test of its own."""
    warehouse = f"gs://{fake_gcs.new_bucket('wh')}/warehouse"
    outside_pytest = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    env = {
        **outside_pytest,
        "AUTOLOADER_DATA_DIR": str(tmp_path / "data"),
        "AUTOLOADER_LOCAL_ROOTS": str(tmp_path / "landing"),
        "AUTOLOADER_DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_PORT": str(free_port()),
        "AUTOLOADER_WAREHOUSE": warehouse,
        "AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS": json.dumps(_gcs_options(fake_gcs)),
    }
    started = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2, started.stderr[-2000:]
    assert f"The warehouse {warehouse} cannot hold tables" in started.stderr
    assert "XML API" in started.stderr and "404" in started.stderr
    assert "what to do: Fix AUTOLOADER_WAREHOUSE" in started.stderr


def test_a_gcs_warehouse_on_fake_gcs_server_fails_the_health_check(settings: Any, fake_gcs: FakeGCS) -> None:
    """A server already running (the start's probe passed) whose warehouse stops answering: /health says so."""
    warehouse = f"gs://{fake_gcs.new_bucket('wh')}/warehouse"
    update = {"warehouse": warehouse, "warehouse_storage_options": _gcs_options(fake_gcs)}
    services = build(settings.model_copy(update=update))
    try:
        app = FastAPI()
        mount_api(app, services)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/api/v1/health")
    finally:
        services.close()
    assert response.status_code == 503
    check = response.json()["checks"]["warehouse"]
    assert check["status"] == "failed" and warehouse in check["detail"]
    assert "XML API" in check["detail"] and "AUTOLOADER_WAREHOUSE" in check["detail"]


def test_a_gcs_warehouse_endpoint_on_a_refused_address_stops_the_start(settings: Any) -> None:
    """google_base_url is where GCS requests go, as AWS_ENDPOINT_URL is for S3: the egress rule applies to it."""
    options = {"google_base_url": "http://169.254.169.254", "google_skip_signature": "true"}
    with pytest.raises(ConfigError) as info:
        build(settings.model_copy(update={"warehouse": "gs://b/w", "warehouse_storage_options": options}))
    assert info.value.field == "AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS.google_base_url"
