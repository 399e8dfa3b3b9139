"""Incremental listing on S3 with the metadata DB on PostgreSQL whose default collation is a linguistic one (ICU
en-US, as with any en_US.UTF-8 cluster): the ledger lookup `path > listed_through` ran in the database's collation,
which puts "B" after "a", while S3 (and Python) order paths by bytes. Found by an attack helper (session 17)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from deltalake import DeltaTable
from sqlalchemy import create_engine, text

from app.bootstrap import build
from tests.conftest import PG_ADMIN_URL
from tests.helpers import spec
from tests.services import SeaweedFS

pytestmark = pytest.mark.s3


@pytest.fixture
def database_url() -> Iterator[str]:
    """Overrides conftest's: a database of its own whose default collation is ICU en-US."""
    name = f"collation_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
                )
            )
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL 15+ with ICU at {PG_ADMIN_URL}: {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_incremental_listing_on_a_linguistic_postgres_loads_each_file_once(settings: Any, seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket("coll")
    client = seaweedfs.client()
    client.put_object(Bucket=bucket, Key="landing/B.json", Body=b'{"id": 1}\n')
    client.put_object(Bucket=bucket, Key="landing/a.json", Body=b'{"id": 2}\n')
    time.sleep(4)
    client.put_object(Bucket=bucket, Key="landing/C.json", Body=b'{"id": 3}\n')  # still too young for run 1
    svc = build(settings)
    try:
        source = seaweedfs.source(bucket, "landing/", incremental_listing=True, min_file_age_seconds=3)
        ing = svc.ingestions.create(
            spec("/unused", table="coll", source=source.model_dump(mode="json", exclude_none=True)), activate=True
        )
        first = svc.runs.run_now(ing.name)
        time.sleep(4)
        second = svc.runs.run_now(ing.name)
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination)).to_pyarrow_table()
    finally:
        svc.close()
    assert first.metrics.files_processed == 2, first.message
    assert second.metrics.files_processed == 1, second.message  # C.json only; B.json sorted after 'a' in en-US
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3]
