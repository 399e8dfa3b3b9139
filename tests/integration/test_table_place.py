"""Where an ingestion's table lives, its format and its engine (issue #13 item 8): one read side, API and page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.db.models import ClusterCreate
from core.config import IngestionSpec
from core.views import EMBEDDED_ENGINE, table_place
from tests.helpers import spec, write_json_files


def test_the_api_names_location_format_and_engine_before_and_after_a_move(
    api: Any, services: Any, tmp_path: Path
) -> None:
    write_json_files(tmp_path / "in", 1, 1)
    ingestion = services.ingestions.create(spec(str(tmp_path / "in"), table="placed"), activate=True)
    before = api.get(f"/api/v1/ingestions/{ingestion.id}").json()
    uri = services.embedded.table_uri(ingestion.spec.destination)
    assert (before["table_location"], before["table_format"], before["engine"]) == (uri, "delta", EMBEDDED_ENGINE)

    # A registry entry only: moving reads the cluster's table format, it does not connect (the first run does).
    cluster = services.clusters.create(ClusterCreate(name="big", connect_url="sc://localhost:15998"))
    moved = api.post(f"/api/v1/ingestions/{ingestion.id}/engine", json={"cluster_id": cluster.id})
    assert moved.status_code == 200, moved.text
    after = api.get(f"/api/v1/ingestions/{ingestion.id}").json()
    assert (after["table_location"], after["table_format"], after["engine"]) == (uri, "delta", "Cluster big")
    assert after["table_uri"] == "", "table_uri stays the embedded engine's URI only"
    listed = next(i for i in api.get("/api/v1/ingestions").json() if i["id"] == ingestion.id)
    assert listed["engine"] == "Cluster big" and listed["table_location"] == uri


def test_a_managed_table_on_a_cluster_and_a_deleted_cluster_are_named() -> None:
    body = {
        "name": "x",
        "source": {"type": "local", "path": "/data/in"},
        "format": {"type": "json"},
        "destination": {"catalog": "main", "database": "raw", "table": "t"},
        "cluster_id": 7,
    }
    on_cluster = IngestionSpec.model_validate(body)
    place = table_place(on_cluster, "", ("big", "iceberg"))
    assert (place.location, place.table_format, place.engine) == (None, "iceberg", "Cluster big")
    gone = table_place(on_cluster, "", None)
    assert (gone.table_format, gone.engine) == ("unknown", "Cluster #7 (deleted)")
