"""An ingestion on a Spark cluster with an Azure, GCS or SFTP source is refused when saved and at Test & Preview,
naming the source and what to do: the cluster would get neither the source's credentials nor its endpoint, and
every file was quarantined as unreadable (core/spark_sources.py). A run of one saved before fails the same way
before reading anything. No cluster runs here: the refusal comes before any call to it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.engines.spark.reading import Reader
from core.engines.spark.session import ClusterTarget
from core.errors import ConfigError
from core.storage.base import FileInfo

SOURCES = {
    "azure_blob": {
        "type": "azure_blob",
        "path": "abfss://c@acct.dfs.core.windows.net/in/",
        "credentials": {"type": "account_key", "account_key": "azure-key-value-1"},
    },
    "gcs": {"type": "gcs", "path": "gs://bucket/in/", "credentials": {"type": "ambient"}},
    "sftp": {
        "type": "sftp",
        "path": "sftp://sftp.example.com:22/in",
        "host_key_fingerprint": "SHA256:" + "A" * 43,
        "credentials": {"type": "password", "username": "u", "password": "pw-value-1"},
    },
}
LABELS = {"azure_blob": "Azure Blob / ADLS Gen2", "gcs": "Google Cloud Storage", "sftp": "SFTP"}


def _cluster(services: Any) -> int:
    from app.db.models import ClusterCreate

    cluster = ClusterCreate(name=f"c-{uuid.uuid4().hex[:8]}", connect_url="sc://localhost:15002")
    return int(services.clusters.create(cluster).id)


def _body(source: dict[str, Any], cluster_id: int | None) -> dict[str, Any]:
    return {
        "name": f"n-{uuid.uuid4().hex[:8]}",
        "source": source,
        "format": {"type": "json"},
        "destination": {"table": f"t_{uuid.uuid4().hex[:8]}"},
        "cluster_id": cluster_id,
    }


def _refused(response: Any, source_type: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert LABELS[source_type] in error["message"] and "Spark cluster cannot read" in error["message"]
    assert "embedded engine" in error["action"] and "S3" in error["action"]


@pytest.mark.parametrize("source_type", sorted(SOURCES))
def test_saving_or_previewing_a_cloud_source_on_a_cluster_is_refused(api: Any, services: Any, source_type: str) -> None:
    cluster_id = _cluster(services)
    before = len(services.store.list_ingestions())
    _refused(api.post("/api/v1/ingestions", json=_body(SOURCES[source_type], cluster_id)), source_type)
    assert len(services.store.list_ingestions()) == before
    _refused(api.post("/api/v1/ingestions/test", json=_body(SOURCES[source_type], cluster_id)), source_type)


def test_moving_a_draft_on_a_cluster_to_a_cloud_source_is_refused(api: Any, services: Any, tmp_path: Path) -> None:
    cluster_id = _cluster(services)
    body = _body({"type": "local", "path": str(tmp_path)}, cluster_id)
    created = api.post("/api/v1/ingestions", json=body)
    assert created.status_code == 201, created.text
    updated = api.put(f"/api/v1/ingestions/{created.json()['id']}", json={**body, "source": SOURCES["gcs"]})
    _refused(updated, "gcs")


def test_a_cloud_source_on_the_embedded_engine_is_still_saved(api: Any) -> None:
    created = api.post("/api/v1/ingestions", json=_body(SOURCES["azure_blob"], None))
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    "path",
    [
        "abfss://c@acct.dfs.core.windows.net/in/a.json",
        "https://acct.blob.core.windows.net/c/in/a.json",
        "gs://bucket/in/a.json",
        "sftp://host:2222/in/a.json",
    ],
)
def test_a_run_saved_before_the_check_fails_before_reading(path: str) -> None:
    """The engine's first step on a batch (schema inference, count, load) checks the paths it was given."""
    reader = Reader(ClusterTarget(name="remote", connect_url="sc://spark.example.com:15002"))
    with pytest.raises(ConfigError) as info:
        reader.check_source([FileInfo(path=path, size=1, modified=datetime.now(UTC))])
    assert "Spark cluster cannot read" in info.value.message and info.value.field == "cluster_id"
