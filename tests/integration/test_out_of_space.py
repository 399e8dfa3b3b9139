"""A disk that fills up, for real: a 16 MiB tmpfs mounted for the test and filled to its last byte, so the writes
get ENOSPC from the kernel (root with CAP_SYS_ADMIN needed to mount; skipped, saying so, where it is refused).

- The warehouse's disk full: the run fails as `out_of_space` (transient, so it is retried by itself), naming the
  table's location and what to do; the rows loaded before stay once; once space is freed the next run loads the
  files that waited, every record exactly once.
- The metadata database's disk full (SQLite): a run request through the API answers 503 `metadata_unavailable`
  saying the disk is full (not a 500), `autoloader run` one error line and exit status 2; once space is freed the
  same server runs the ingestion, without a restart or a database edit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from app.settings import Settings
from core.domain import FileStatus, RunStatus
from tests.conftest import admin_headers, clean_env, run_cli
from tests.helpers import read_table, spec, write_json_files
from tests.integration.test_api import body, wait_for_run

RECORDS = 2_000


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    point = Path(tempfile.mkdtemp(prefix="autoloader-tiny-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}): needs root with CAP_SYS_ADMIN")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)
    shutil.rmtree(point, ignore_errors=True)


@dataclass
class LoadedOnce:
    """A container whose warehouse is on the tiny disk, and an ingestion that has loaded 2 files into it."""

    svc: Any
    ingestion: Any
    landing: Path
    uri: str


@pytest.fixture
def loaded_once(tiny_disk: Path, state_dir: Path, tmp_path: Path) -> Iterator[LoadedOnce]:
    from app.bootstrap import build

    settings = Settings(
        data_dir=state_dir / "data", warehouse=str(tiny_disk / "warehouse"), secret_key="test", heartbeat_seconds=0.5
    )
    svc = build(settings)
    try:
        landing = tmp_path / "in"
        write_json_files(landing, 2, RECORDS)
        ingestion = svc.ingestions.create(spec(str(landing)), activate=True)
        first = svc.runs.run_now(ingestion.name)
        assert first.status == RunStatus.SUCCESS, first
        yield LoadedOnce(svc, ingestion, landing, svc.embedded.table_uri(ingestion.spec.destination))
    finally:
        svc.close()


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte; removing it frees the space again."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing is left to flush on close
        for size in (65536, 4096, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError:
                continue
    assert os.statvfs(disk).f_bavail == 0, "the disk still has room"
    return filler


def test_a_full_warehouse_fails_the_run_as_out_of_space_and_the_files_load_once_space_is_freed(
    tiny_disk: Path, loaded_once: LoadedOnce
) -> None:
    svc, ingestion, uri = loaded_once.svc, loaded_once.ingestion, loaded_once.uri
    filler = fill(tiny_disk)
    waiting = write_json_files(loaded_once.landing, 3, RECORDS, start_id=2 * RECORDS, prefix="late")
    failed = svc.runs.run_now(ingestion.name)
    assert failed.status == RunStatus.FAILED and failed.transient, failed
    error = failed.errors[0]
    assert error.kind == "out_of_space", failed.errors
    assert uri in error.message and "out of space" in error.message, error.message
    assert "Free space" in error.action and "AUTOLOADER_WAREHOUSE" in error.action, error.action
    assert read_table(uri).num_rows == 2 * RECORDS
    known = svc.store.known_files(ingestion.id)
    assert all(str(p) not in known or known[str(p)].status != FileStatus.LOADED for p in waiting)

    filler.unlink()
    after = svc.runs.run_now(ingestion.name)
    assert after.status == RunStatus.SUCCESS, after
    assert after.metrics.files_processed == 3, after
    ids = read_table(uri).column("id")
    assert len(ids) == 5 * RECORDS and pc.count_distinct(ids).as_py() == 5 * RECORDS


def test_a_warehouse_remounted_read_only_is_retried_and_loads_once_writable(
    tiny_disk: Path, loaded_once: LoadedOnce
) -> None:
    """Found by an outsider: a read-only warehouse failed the run as a terminal `table_error` saying "Failed to parse
    parquet"; it is `warehouse_not_writable`, transient, and the files load once the disk is writable again."""
    svc, ingestion, uri = loaded_once.svc, loaded_once.ingestion, loaded_once.uri
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    write_json_files(loaded_once.landing, 3, RECORDS, start_id=2 * RECORDS, prefix="late")
    failed = svc.runs.run_now(ingestion.name)
    assert failed.status == RunStatus.FAILED and failed.transient, failed
    error = failed.errors[0]
    assert error.kind == "warehouse_not_writable" and uri in error.message, failed.errors
    assert "parse parquet" not in error.message.lower() and "writable" in error.action, error

    subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    after = svc.runs.run_now(ingestion.name)
    assert after.status == RunStatus.SUCCESS and after.metrics.files_processed == 3, after
    ids = read_table(uri).column("id")
    assert len(ids) == 5 * RECORDS and pc.count_distinct(ids).as_py() == 5 * RECORDS


def test_a_full_metadata_disk_is_answered_as_such_and_left_without_a_restart(
    tiny_disk: Path, state_dir: Path, tmp_path: Path
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.api import mount_api
    from app.bootstrap import build

    data_dir, warehouse = tiny_disk / "data", state_dir / "warehouse"
    settings = Settings(data_dir=data_dir, warehouse=str(warehouse), secret_key="test", heartbeat_seconds=0.5)
    svc = build(settings)
    try:
        app = FastAPI()
        mount_api(app, svc)
        with TestClient(app, raise_server_exceptions=False, headers=admin_headers(svc)) as api:
            write_json_files(tmp_path / "in", 2, RECORDS)
            created = api.post("/api/v1/ingestions", json=body(tmp_path / "in"))
            assert created.status_code == 201, created.text
            ingestion = created.json()
            assert api.post(f"/api/v1/ingestions/{ingestion['id']}/activate").status_code == 200

            filler = fill(tiny_disk)
            refused = api.post(f"/api/v1/ingestions/{ingestion['id']}/run")
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "metadata_unavailable" and "out of space" in error["message"], error
            assert "AUTOLOADER_DATA_DIR" in error["action"], error

            env = clean_env() | {
                "AUTOLOADER_DATA_DIR": str(data_dir),
                "AUTOLOADER_WAREHOUSE": str(warehouse),
                "AUTOLOADER_SECRET_KEY": "test",
            }
            cli = run_cli("run", ingestion["name"], env=env)
            assert cli.returncode == 2, cli.stderr
            assert "error: The metadata database is out of space" in cli.stderr and "what to do:" in cli.stderr
            assert "Traceback" not in cli.stderr, cli.stderr

            filler.unlink()
            accepted = api.post(f"/api/v1/ingestions/{ingestion['id']}/run")
            assert accepted.status_code == 202, accepted.text
            run = wait_for_run(api, ingestion["id"], accepted.json()["run_id"])
            assert run["status"] == "success" and run["metrics"]["records_ingested"] == 2 * RECORDS, run
    finally:
        svc.close()
