"""S3 sources on the Spark engine (#13 item 4): the cluster reads the files itself, through hadoop-aws (s3a://),
from the tests' SeaweedFS server, with the source's endpoint and access key passed to its session per bucket
(`Storage.cluster_options`). Incremental loads into a Delta table and into parquet, every row once, the schema
inferred from S3 and the files counted, a wrong key named as such.

The shared local Spark Connect server of the tests loads the hadoop-aws jars (app/spark_jars.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.domain import RunStatus
from core.storage import open_storage
from tests.helpers import spec
from tests.services import SeaweedFS

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'meta.db'}"


def _cluster(services: Any, table_format: str) -> int:
    from tests.spark_server import register_cluster

    return register_cluster(services, f"s3-{table_format}", table_format)


def _lines(first: int, count: int) -> bytes:
    return "".join(json.dumps({"id": first + i, "city": f"c{first + i}"}) + "\n" for i in range(count)).encode()


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_s3_files_load_incrementally_through_the_cluster(
    services: Any, seaweedfs: SeaweedFS, table_format: str
) -> None:
    bucket = seaweedfs.new_bucket("spark")
    seaweedfs.put_many(bucket, {"in/a.json": _lines(0, 5), "in/b.json": _lines(5, 5)})
    body = spec("/unused", table=f"s3_{table_format}_{uuid.uuid4().hex[:6]}").model_dump(by_alias=True)
    body["source"] = seaweedfs.source(bucket, "in/").model_dump(by_alias=True)
    body["cluster_id"] = _cluster(services, table_format)
    from core.config import IngestionSpec

    ingestion = services.ingestions.create(IngestionSpec.model_validate(body), activate=True)
    first = services.runs.run_now(ingestion.name)
    assert first.status == RunStatus.SUCCESS, first.message
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (2, 10)

    # A key Spark would read as a glob pattern of a.json and b.json (core/engines/spark/common.py: spark_path).
    seaweedfs.put_many(bucket, {"in/[ab].json": _lines(10, 3)})
    second = services.runs.run_now(ingestion.name)
    assert (second.metrics.files_processed, second.metrics.records_ingested) == (1, 3), second.message
    table = services.engines.for_ingestion(ingestion).read_table(ingestion.spec.destination)
    assert sorted(table.column("id").to_pylist()) == list(range(13))
    names = {f"s3://{bucket}/in/{n}.json" for n in ("a", "b", "[ab]")}
    assert set(table.column("_source_file").to_pylist()) == names


def test_the_cluster_gets_the_bucket_scoped_settings_and_no_other(seaweedfs: SeaweedFS, services: Any) -> None:
    source = seaweedfs.source("some-bucket", "in/")
    options = open_storage(source, services.guards).cluster_options()
    scope = "fs.s3a.bucket.some-bucket."
    assert options == {
        scope + "endpoint": seaweedfs.endpoint_url,
        scope + "path.style.access": "true",
        scope + "connection.ssl.enabled": "false",
        scope + "endpoint.region": seaweedfs.region,
        scope + "access.key": seaweedfs.access_key,
        scope + "secret.key": seaweedfs.secret_key,
        scope + "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }
    ambient = seaweedfs.source("some-bucket", "in/", credentials={"type": "ambient"})
    assert not any("key" in k for k in open_storage(ambient, services.guards).cluster_options())
