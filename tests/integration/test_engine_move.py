"""One table, two engines (#13 item 3): an ingestion moves from the embedded engine to a Spark cluster and back, and
its Delta table is continued by each: same file ledger, same application id, every file's rows once.

Runs on the tests' shared local Spark Connect server (tests/spark_server.py), which loads Delta's jars; the table
is read back with delta-rs, which also checks the `txn` version both engines wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from core.domain import RunStatus
from core.errors import ConfigError, Conflict
from tests.conftest import admin_headers
from tests.helpers import spec


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """The move is about the table and the ledger: SQLite is enough (the store's methods are the common ones)."""
    return f"sqlite:///{state_dir / 'meta.db'}"


def _cluster(services: Any, table_format: str) -> int:
    from tests.spark_server import register_cluster

    return register_cluster(services, f"local-{table_format}", table_format)


def _file(landing: Path, name: str, first_id: int, rows: int = 3) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("".join(json.dumps({"id": first_id + i, "v": name}) + "\n" for i in range(rows)))


def _loaded(services: Any, ingestion: Any) -> tuple[list[int], int | None]:
    table = DeltaTable(services.embedded.table_uri(ingestion.spec.destination))
    return sorted(table.to_pyarrow_table().column("id").to_pylist()), table.transaction_version(ingestion.app_id)


@pytest.mark.slow
def test_embedded_table_is_continued_by_a_cluster_and_back(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    _file(landing, "a.json", 0)
    _file(landing, "b.json", 3)
    ing = services.ingestions.create(spec(str(landing), table="moved"), activate=True)
    assert services.runs.run_now(ing.name).metrics.files_processed == 2
    assert _loaded(services, ing) == ([0, 1, 2, 3, 4, 5], 1)

    cluster = _cluster(services, "delta")
    on_spark = services.engine_move.move(ing.id, cluster)
    uri = services.embedded.table_uri(ing.spec.destination)
    assert (on_spark.spec.cluster_id, on_spark.spec.destination.location) == (cluster, uri)
    _file(landing, "c.json", 6)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert outcome.metrics.files_processed == 1  # the ledger moved with it: a and b are not loaded again
    assert _loaded(services, ing) == (list(range(9)), 2)  # the cluster's commit carries the next txn version
    assert services.runs.run_now(ing.name).metrics.files_processed == 0

    back = services.engine_move.move(ing.id, None)
    assert (back.spec.cluster_id, back.spec.destination.location) == (None, None)
    _file(landing, "d.json", 9)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.files_processed == 1, outcome.message
    assert _loaded(services, ing) == (list(range(12)), 3)


@pytest.mark.slow
def test_moved_before_its_first_run_the_cluster_creates_the_table_where_the_embedded_engine_continues_it(
    services: Any, tmp_path: Path
) -> None:
    landing = tmp_path / "in"
    _file(landing, "a.json", 0)
    ing = services.ingestions.create(spec(str(landing), table="born_on_spark"), activate=True)
    services.engine_move.move(ing.id, _cluster(services, "delta"))
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.files_processed == 1, outcome.message
    assert _loaded(services, ing) == ([0, 1, 2], 1)  # in the embedded engine's folder, with its marker

    services.engine_move.move(ing.id, None)  # a table at the embedded engine's location may come back
    _file(landing, "b.json", 3)
    assert services.runs.run_now(ing.name).metrics.files_processed == 1
    assert _loaded(services, ing) == ([0, 1, 2, 3, 4, 5], 2)


@pytest.mark.slow
def test_moves_that_cannot_continue_the_table_are_refused_with_the_reason(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    _file(landing, "a.json", 0)
    embedded = services.ingestions.create(spec(str(landing), table="stays"), activate=True)
    services.runs.run_now(embedded.name)
    parquet = _cluster(services, "parquet")
    with pytest.raises(Conflict, match="writes parquet tables") as refused:
        services.engine_move.move(embedded.id, parquet)
    assert "delta" in refused.value.action
    with pytest.raises(Conflict, match="already runs on the embedded engine"):
        services.engine_move.move(embedded.id, None)

    on_cluster = services.ingestions.create(
        spec(str(landing), name="spark-born", table="spark_born", cluster_id=parquet), activate=True
    )
    assert services.runs.run_now(on_cluster.name).metrics.files_processed == 1
    with pytest.raises(Conflict, match="created by the cluster") as refused:
        services.engine_move.move(on_cluster.id, None)
    assert "new ingestion" in refused.value.action
    assert services.store.get_ingestion(on_cluster.id).spec.cluster_id == parquet  # unchanged


def test_a_location_cannot_be_set_by_hand(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    with pytest.raises(ConfigError, match=r"destination\.location"):
        services.ingestions.create(spec(str(landing), destination={"table": "t", "location": "/etc"}))
    ing = services.ingestions.create(spec(str(landing), table="t"))
    changed = ing.spec.model_copy(
        update={"destination": ing.spec.destination.model_copy(update={"location": str(tmp_path)})}
    )
    with pytest.raises(ConfigError, match="cannot be set or changed by hand"):
        services.ingestions.update(ing.id, changed)

    from app.db.models import ClusterCreate

    # A registry entry is enough: moving reads the cluster's table format and does not connect.
    cluster = services.clusters.create(
        ClusterCreate(name="d", connect_url="sc://localhost:15997", table_format="delta")
    )
    moved = services.engine_move.move(ing.id, cluster.id)
    assert moved.spec.destination.location is not None
    without = moved.spec.model_copy(
        update={"destination": moved.spec.destination.model_copy(update={"location": None}), "name": "renamed"}
    )
    kept = services.ingestions.update(ing.id, without)  # a client that does not send the field keeps it
    assert (kept.name, kept.spec.destination.location) == ("renamed", moved.spec.destination.location)


def test_api_moves_an_ingestion_and_says_why_not(services: Any, tmp_path: Path) -> None:
    app = FastAPI()
    mount_api(app, services)
    client = TestClient(app)
    headers = admin_headers(services)
    landing = tmp_path / "in"
    _file(landing, "a.json", 0)
    ing = services.ingestions.create(spec(str(landing), table="api_moved"), activate=True)
    missing = client.post(f"/api/v1/ingestions/{ing.id}/engine", json={"cluster_id": 999}, headers=headers)
    assert missing.status_code == 404, missing.text
    same = client.post(f"/api/v1/ingestions/{ing.id}/engine", json={"cluster_id": None}, headers=headers)
    assert same.status_code == 409 and "already runs" in same.json()["error"]["message"], same.text


@pytest.mark.slow
def test_a_fence_either_engine_commits_is_told_by_the_other(services: Any, tmp_path: Path) -> None:
    """A fence (Engine.fence_batch) is an empty Delta commit under the batch's transaction id with a message both
    engines write and read: a batch fenced by one is not taken for rows by the other after a move."""
    landing = tmp_path / "in"
    _file(landing, "a.json", 0)
    ing = services.ingestions.create(spec(str(landing), table="fenced"), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    services.embedded.fence_batch(ing.spec.destination, ing.app_id, 2)

    on_spark = services.engine_move.move(ing.id, _cluster(services, "delta"))
    spark, destination = services.engines.for_ingestion(on_spark), on_spark.spec.destination
    assert spark.committed_version(destination, ing.app_id) == 2
    assert spark.is_fence(destination, ing.app_id, 2) and not spark.is_fence(destination, ing.app_id, 1)
    spark.fence_batch(destination, ing.app_id, 3)
    assert services.embedded.is_fence(ing.spec.destination, ing.app_id, 3)

    _file(landing, "b.json", 3)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.files_processed == 1, outcome.message
    assert _loaded(services, ing) == (list(range(6)), 4)
