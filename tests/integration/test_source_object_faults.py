"""A source with one object the store refuses to serve (S3 SSE-C on SeaweedFS, an archived blob on Azurite), or an
S3 source path that names a file: one bad object is set aside while the others load, and a wrong path says what to
set instead of finding nothing for ever. Found by an attack helper (session 17)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from deltalake import DeltaTable

from app.bootstrap import build
from core.domain import RunStatus
from core.egress import EgressAllow
from core.errors import ConfigError
from core.guards import Guards, LocalRoots
from core.storage import open_storage
from tests.helpers import spec
from tests.services import Azurite, SeaweedFS

pytestmark = pytest.mark.s3

LOOPBACK = Guards(LocalRoots([]), EgressAllow.parse(["127.0.0.1/32"]))


def _body(i: int) -> bytes:
    return (json.dumps({"id": i, "v": f"r{i}"}) + "\n").encode()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_object_s3_refuses_to_serve_is_set_aside_and_the_others_load(settings: Any, seaweedfs: SeaweedFS) -> None:
    """An object stored with a customer key (SSE-C): a plain GET gets 400 InvalidArgument. Before, the whole run
    failed on it, and so did every later run."""
    bucket = seaweedfs.new_bucket("ssec")
    client = seaweedfs.client()
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"landing/part-{i}.json", Body=_body(i))
    seaweedfs.put_with_customer_key(bucket, "landing/part-9-encrypted.json", _body(9))
    svc = build(settings)
    try:
        source = seaweedfs.source(bucket, "landing/").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(spec("/unused", table="ssec", source=source), activate=True)
        first, second = svc.runs.run_now(ing.name), svc.runs.run_now(ing.name)
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination)).to_pyarrow_table()
    finally:
        svc.close()
    assert first.status == RunStatus.PARTIAL, first.message
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2]
    (quarantined,) = first.errors
    assert quarantined.kind == "quarantined" and quarantined.file == f"s3://{bucket}/landing/part-9-encrypted.json"
    assert "InvalidArgument" in quarantined.message and "SSE-C" in quarantined.action
    assert second.status == RunStatus.SUCCESS and second.metrics.files_processed == 0, second.message


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_source_path_naming_one_object_says_to_use_its_folder(settings: Any, seaweedfs: SeaweedFS) -> None:
    """s3://bucket/landing/a.json: the listing under landing/a.json/ is empty; before, every run succeeded with
    'No new files'."""
    bucket = seaweedfs.new_bucket("one")
    seaweedfs.client().put_object(Bucket=bucket, Key="landing/a.json", Body=_body(1))
    storage = open_storage(seaweedfs.source(bucket, "landing/a.json"), LOOPBACK)
    with pytest.raises(ConfigError, match="is a file, not a folder") as refused:
        storage.check()
    assert f"s3://{bucket}/landing/" in refused.value.action and "a.json" in refused.value.action
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        list(storage.list_files())
    assert list(open_storage(seaweedfs.source(bucket, "landing/empty/"), LOOPBACK).list_files()) == []
    svc = build(settings)
    try:
        source = seaweedfs.source(bucket, "landing/a.json").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(spec("/unused", table="one", source=source), activate=True)
        run = svc.runs.run_now(ing.name)
    finally:
        svc.close()
    assert run.status == RunStatus.FAILED and "is a file, not a folder" in run.message, run.message


def test_keys_outside_the_asked_prefix_are_not_listed(seaweedfs: SeaweedFS) -> None:
    """s3://bucket//other/ (a doubled slash): SeaweedFS answers the prefix '/other/' with the keys under 'other/'.
    The listing cut len(prefix) characters off keys not under it: other/x.json was taken for the hidden '.json'
    and skipped, and other/_hidden/y.json was listed."""
    bucket = seaweedfs.new_bucket("dbl")
    for key in ["other/x.json", "other/_hidden/y.json"]:
        seaweedfs.client().put_object(Bucket=bucket, Key=key, Body=_body(1))
    listed = [f.path for f in open_storage(seaweedfs.source(bucket, "/other/"), LOOPBACK).list_files()]
    assert listed == []
    listed = [f.path for f in open_storage(seaweedfs.source(bucket, "other/"), LOOPBACK).list_files()]
    assert listed == [f"s3://{bucket}/other/x.json"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_archived_azure_blob_is_set_aside_and_the_others_load(settings: Any, azurite: Azurite) -> None:
    """A blob in the Archive tier cannot be read until rehydrated (409 BlobArchived): it failed the whole run."""
    container = azurite.new_container()
    for i in range(2):
        azurite.put(container, f"in/part-{i}.json", _body(i))
    azurite.put(container, "in/part-9-archived.json", _body(9))
    azurite.service().get_container_client(container).get_blob_client("in/part-9-archived.json").set_standard_blob_tier(
        "Archive"
    )
    svc = build(settings)
    try:
        source = azurite.source(container, "in/").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(spec("/unused", table="archived", source=source), activate=True)
        first, second = svc.runs.run_now(ing.name), svc.runs.run_now(ing.name)
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination)).to_pyarrow_table()
    finally:
        svc.close()
    assert first.status == RunStatus.PARTIAL, first.message
    assert sorted(table.column("id").to_pylist()) == [0, 1]
    (quarantined,) = first.errors
    assert quarantined.kind == "quarantined" and quarantined.file.endswith("/in/part-9-archived.json")
    assert "BlobArchived" in quarantined.message and "rehydrated" in quarantined.action
    assert second.status == RunStatus.SUCCESS and second.metrics.files_processed == 0, second.message
