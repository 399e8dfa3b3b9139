"""Every run loads exactly the files that arrived since the last successful load (local folder and S3)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from core.access import SYSTEM
from core.domain import RunStatus
from tests.helpers import read_table, spec, write_json_files


def _assert_unique_ids(table, expected: int) -> None:  # type: ignore[no-untyped-def]
    ids = table.column("id")
    assert table.num_rows == expected
    assert pc.count_distinct(ids).as_py() == expected


def test_incremental_local(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "landing"
    write_json_files(landing, 3, 1000)
    ingestion = services.ingestions.create(spec(str(landing)), activate=True)
    uri = services.embedded.table_uri(ingestion.spec.destination)

    first = services.runs.run_now(str(ingestion.id))
    assert first.status == RunStatus.SUCCESS, first
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (3, 3000)
    _assert_unique_ids(read_table(uri), 3000)

    write_json_files(landing, 2, 1000, start_id=3000, prefix="later")
    second = services.runs.run_now(ingestion.name)
    assert (second.metrics.files_processed, second.metrics.records_ingested) == (2, 2000)
    table = read_table(uri)
    _assert_unique_ids(table, 5000)

    third = services.runs.run_now(ingestion.name)
    assert third.status == RunStatus.SUCCESS
    assert third.metrics.files_processed == 0
    assert read_table(uri).num_rows == 5000

    page = services.views.files(SYSTEM, ingestion.id, status="loaded")
    total, files = page.total, page.items
    assert total == 5
    assert sorted(f.records for f in files) == [1000] * 5
    lineage = set(table.column("_source_file").to_pylist())
    assert lineage == {str(p) for p in landing.glob("*.json")}
    assert set(table.column("_run_id").to_pylist()) == {first.run_id, second.run_id}


@pytest.mark.s3
def test_incremental_s3(services, seaweedfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    local = tmp_path / "gen"
    for path in write_json_files(local, 3, 1000):
        client.upload_file(str(path), bucket, f"events/{path.name}")
    source = {
        "type": "s3",
        "path": f"s3://{bucket}/events/",
        "endpoint_url": seaweedfs.endpoint_url,
        "region": seaweedfs.region,
        "file_pattern": "*.json",
        "credentials": {
            "type": "access_key",
            "access_key_id": seaweedfs.access_key,
            "secret_access_key": seaweedfs.secret_key,
        },
    }
    ingestion = services.ingestions.create(spec("/unused", table="s3_events", source=source), activate=True)
    uri = services.embedded.table_uri(ingestion.spec.destination)

    assert services.runs.run_now(ingestion.name).metrics.records_ingested == 3000
    for path in write_json_files(local / "more", 2, 1000, start_id=3000):
        client.upload_file(str(path), bucket, f"events/{path.name}")
    second = services.runs.run_now(ingestion.name)
    assert second.metrics.files_processed == 2
    _assert_unique_ids(read_table(uri), 5000)
    assert services.runs.run_now(ingestion.name).metrics.files_processed == 0
    assert read_table(uri).column("_source_file")[0].as_py().startswith(f"s3://{bucket}/events/")
