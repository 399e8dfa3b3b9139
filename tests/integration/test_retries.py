"""Transient failures are retried with backoff. Inside a run: the S3 endpoint dies mid-run and comes back within the
run's storage retries, and that same run loads every file. Across runs: an endpoint down for longer fails the run
as transient, the runner's retry loads the rest, and nothing is loaded twice. Terminal failures are not retried."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from app.bootstrap import Container, build
from core.access import SYSTEM
from core.domain import RunStatus
from core.egress import EgressAllow
from core.guards import Guards, LocalRoots
from core.storage import open_storage
from tests.helpers import read_table, spec

FILES, RECORDS = 1000, 10


@pytest.fixture
def retrying_services(settings) -> Any:  # type: ignore[no-untyped-def]
    settings.retry_backoff_seconds = [2.0, 2.0, 2.0]
    settings.storage_retry_attempts = 3  # a run gives up after about half a second
    settings.storage_retry_base_seconds = 0.2
    svc = build(settings)
    svc.start()
    yield svc
    svc.close()


def _last_attempt(svc: Container, ingestion_id: int, run_id: int) -> Any:
    """The run at the end of a retry chain once it has finished (a restarted endpoint may need a second retry)."""
    run = svc.store.get_run(ingestion_id, run_id)
    if run.status in ("queued", "running"):
        return None
    follow_up = next((r for r in svc.views.runs(SYSTEM, ingestion_id) if r.retry_of == run_id), None)
    if follow_up is not None:
        return _last_attempt(svc, ingestion_id, follow_up.id)
    return run


def _wait_for(predicate, timeout: float) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.s3
@pytest.mark.slow
def test_s3_outage_mid_run_is_retried_without_duplicates(retrying_services, seaweedfs) -> None:  # type: ignore[no-untyped-def]
    svc = retrying_services
    bucket = seaweedfs.new_bucket()
    seaweedfs.put_many(bucket, _objects())
    source = seaweedfs.source(bucket, "events/").model_dump(mode="json")
    ing = svc.ingestions.create(
        spec("/unused", table="retried", source=source, limits={"max_files_per_batch": 20}), activate=True
    )
    first = svc.runs.trigger(ing.id)
    _wait_for(lambda: svc.store.get_run(ing.id, first).files_done > 0, timeout=30)
    seaweedfs.stop(kill=True)
    failed = _wait_for(
        lambda: (r := svc.store.get_run(ing.id, first)).status not in ("queued", "running") and r, timeout=60
    )
    seaweedfs.start()

    assert failed.status == RunStatus.FAILED.value, failed.message
    assert failed.errors[0]["kind"] == "storage_unavailable" and failed.errors[0]["action"]
    assert "internal" not in [e["kind"] for e in failed.errors]
    retry = _wait_for(
        lambda: next((r for r in svc.views.runs(SYSTEM, ing.id) if r.retry_of == first), None), timeout=10
    )
    assert retry.trigger == "retry" and retry.attempt == 2
    done = _wait_for(lambda: _last_attempt(svc, ing.id, retry.id), timeout=90)
    assert done.status == RunStatus.SUCCESS.value, done.errors
    assert 0 < done.metrics["files_processed"] < FILES  # the first run had loaded some batches already
    table = read_table(svc.embedded.table_uri(ing.spec.destination))
    assert table.num_rows == FILES * RECORDS
    assert pc.count_distinct(table.column("id")).as_py() == FILES * RECORDS


@pytest.mark.s3
@pytest.mark.slow
def test_s3_outage_inside_a_run_is_survived_by_that_run(settings, seaweedfs) -> None:  # type: ignore[no-untyped-def]
    settings.retry_backoff_seconds = [2.0, 2.0, 2.0]
    # up to 12 attempts, waits doubling from 0.5 s to 3 s: a run rides out an outage of ~10 s or more
    settings.storage_retry_attempts = 12
    settings.storage_retry_base_seconds = 0.5
    settings.storage_retry_cap_seconds = 3
    svc = build(settings)
    svc.start()
    try:
        bucket = seaweedfs.new_bucket()
        seaweedfs.put_many(bucket, _objects())
        source = seaweedfs.source(bucket, "events/").model_dump(mode="json")
        ing = svc.ingestions.create(
            spec("/unused", table="survived", source=source, limits={"max_files_per_batch": 20}), activate=True
        )
        run_id = svc.runs.trigger(ing.id)
        _wait_for(lambda: svc.store.get_run(ing.id, run_id).files_done > 0, timeout=30)
        seaweedfs.stop(kill=True)
        down_at = time.monotonic()
        time.sleep(2)
        mid_outage = svc.store.get_run(ing.id, run_id)
        seaweedfs.start()
        outage = time.monotonic() - down_at
        done = _wait_for(
            lambda: (r := svc.store.get_run(ing.id, run_id)).status not in ("queued", "running") and r, timeout=120
        )
    finally:
        svc.close()

    assert mid_outage.status == "running", "the run ended during the outage: it should have waited"
    assert done.status == RunStatus.SUCCESS.value, (done.message, done.errors, f"outage {outage:.1f} s")
    assert done.metrics["files_processed"] == FILES
    assert [r.id for r in svc.views.runs(SYSTEM, ing.id)] == [run_id]  # no whole-run retry was needed
    table = read_table(svc.embedded.table_uri(ing.spec.destination))
    assert table.num_rows == FILES * RECORDS
    assert pc.count_distinct(table.column("id")).as_py() == FILES * RECORDS


def _objects() -> dict[str, bytes]:
    return {
        f"events/part-{i:05d}.json": "".join(
            json.dumps({"id": i * RECORDS + r}) + "\n" for r in range(RECORDS)
        ).encode()
        for i in range(FILES)
    }


def test_terminal_failures_are_not_retried(retrying_services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc = retrying_services
    ing = svc.ingestions.create(spec(str(tmp_path / "missing")), activate=True)
    run_id = svc.runs.trigger(ing.id)
    _wait_for(lambda: svc.store.get_run(ing.id, run_id).status == "failed", timeout=10)
    time.sleep(3)
    assert [r.id for r in svc.views.runs(SYSTEM, ing.id)] == [run_id]


@pytest.mark.s3
def test_s3_reads_resume_at_an_offset(seaweedfs) -> None:  # type: ignore[no-untyped-def]
    """What a read broken part-way resumes with: a ranged GET from the byte reached (to the end: nothing)."""
    bucket = seaweedfs.new_bucket()
    data = bytes(range(256)) * 1000
    seaweedfs.put_many(bucket, {"landing/blob.bin": data})
    loopback = Guards(LocalRoots([]), EgressAllow.parse(["127.0.0.1"]))  # SeaweedFS runs on loopback
    storage = open_storage(seaweedfs.source(bucket, "landing/"), loopback)
    path = f"s3://{bucket}/landing/blob.bin"
    with storage.open_from(path, 100_000) as tail:  # type: ignore[attr-defined]
        assert tail.read() == data[100_000:]
    with storage.open_from(path, len(data)) as nothing:  # type: ignore[attr-defined]
        assert nothing.read() == b""
    with storage.open(path) as whole:
        assert whole.read() == data
