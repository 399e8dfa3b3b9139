"""Incremental listing on S3 with the metadata DB on PostgreSQL whose default collation is a linguistic
one (ICU en-US, as with any en_US.UTF-8 cluster): the ledger lookup `path > listed_through` runs in the database's
collation, while S3 (and Python) order paths by bytes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from deltalake import DeltaTable
from sqlalchemy import create_engine, text

from app.bootstrap import build
from app.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.helpers import spec
from tests.services import SeaweedFS

pytestmark = pytest.mark.s3


@pytest.fixture
def en_us_database() -> Iterator[str]:
    name = f"collation_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
                )
            )
    except Exception as exc:
        pytest.skip(f"no PostgreSQL with ICU at {PG_ADMIN_URL}: {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("weed-collation"))
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


def test_incremental_listing_on_a_linguistic_postgres_loads_each_file_once(
    en_us_database: str, weed: SeaweedFS, state_dir: Any
) -> None:
    settings = Settings(
        data_dir=state_dir / "data",
        database_url=en_us_database,
        secret_key="test-secret-key",
        heartbeat_seconds=0.5,
        stale_run_seconds=30,
        rate_limit_per_minute=0,
    )
    bucket = weed.new_bucket("coll")
    client = weed.client()
    client.put_object(Bucket=bucket, Key="landing/B.json", Body=b'{"id": 1}\n')
    client.put_object(Bucket=bucket, Key="landing/a.json", Body=b'{"id": 2}\n')
    time.sleep(4)
    client.put_object(Bucket=bucket, Key="landing/C.json", Body=b'{"id": 3}\n')  # still too young for run 1
    svc = build(settings)
    try:
        source = weed.source(bucket, "landing/", incremental_listing=True, min_file_age_seconds=3)
        ing = svc.ingestions.create(
            spec("/unused", table="coll", source=source.model_dump(mode="json", exclude_none=True)), activate=True
        )
        first = svc.runs.run_now(ing.name)
        print("first:", first.status, first.message)
        time.sleep(4)
        second = svc.runs.run_now(ing.name)
        print("second:", second.status, second.message)
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination)).to_pyarrow_table()
    finally:
        svc.close()
    ids = sorted(table.column("id").to_pylist())
    assert ids == [1, 2, 3], f"ids in the table: {ids}"
