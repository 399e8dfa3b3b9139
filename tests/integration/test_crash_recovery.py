"""kill -9 at any moment of a run: after a restart every record is in the table exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from core.access import SYSTEM
from core.domain import RunStatus
from tests.conftest import clean_env, run_cli
from tests.helpers import read_table, spec, write_json_files

FILES, RECORDS = 500, 20


@pytest.fixture
def crash_setup(services, settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    landing = tmp_path / "landing"
    write_json_files(landing, FILES, RECORDS)
    ing = services.ingestions.create(spec(str(landing), limits={"max_files_per_batch": 50}), activate=True)
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_STALE_RUN_SECONDS": "30",
    }
    return ing, env, services.embedded.table_uri(ing.spec.destination)


def _assert_exactly_once(uri: str, services, ingestion_id: int) -> None:  # type: ignore[no-untyped-def]
    table = read_table(uri)
    assert table.num_rows == FILES * RECORDS
    assert pc.count_distinct(table.column("id")).as_py() == FILES * RECORDS
    page = services.views.files(SYSTEM, ingestion_id, status="loaded")
    loaded, _ = page.total, page.items
    page = services.views.files(SYSTEM, ingestion_id, status="pending")
    pending, _ = page.total, page.items
    assert (loaded, pending) == (FILES, 0)


def _finish(env: dict[str, str], name: str) -> None:
    result = run_cli("run", name, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_pending:3", "after_commit:1", "after_commit:4", "after_ledger:2"])
def test_sigkill_at_named_points(crash_setup, services, point: str) -> None:  # type: ignore[no-untyped-def]
    ing, env, uri = crash_setup
    crashed = run_cli("run", ing.name, env=env | {"AUTOLOADER_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    _finish(env, ing.name)
    _assert_exactly_once(uri, services, ing.id)
    runs = services.views.runs(SYSTEM, ing.id)
    assert [r.status for r in runs] == [RunStatus.SUCCESS.value, RunStatus.FAILED.value]
    assert runs[1].errors[0]["kind"] == "interrupted"


def test_sigkill_right_after_the_table_is_created_loads_once_and_starts_the_schema_history(
    crash_setup, services
) -> None:  # type: ignore[no-untyped-def]
    """Killed between the table's create commit and its first batch's: the next run fences that batch (the table
    exists), loads every file once, and the ingestion's schema history still starts (found by a helper: it stayed
    empty, as the run that loaded was not the table's first batch)."""
    ing, env, uri = crash_setup
    crashed = run_cli("run", ing.name, env=env | {"AUTOLOADER_CRASH_AT": "table_created"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert read_table(uri).num_rows == 0
    _finish(env, ing.name)
    _assert_exactly_once(uri, services, ing.id)
    versions = services.views.schema_versions(SYSTEM, ing.id)
    assert [(v.version, v.reason) for v in versions] == [(1, "first load into the table")]


@pytest.mark.slow
def test_sigkill_at_random_moments(crash_setup, services) -> None:  # type: ignore[no-untyped-def]
    ing, env, uri = crash_setup
    for delay in (1.2, 1.8, 2.4):
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", ing.name], env=env)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    _finish(env, ing.name)
    _assert_exactly_once(uri, services, ing.id)


@pytest.mark.slow
@pytest.mark.s3
def test_sigkill_mid_run_on_an_s3_source_loads_every_object_once(services, settings, seaweedfs) -> None:  # type: ignore[no-untyped-def]
    """The same guarantee on a cloud backend: objects on SeaweedFS, the run killed after its second commit."""
    bucket = seaweedfs.new_bucket("crash")
    local = settings.data_dir / "crash-input"
    paths = write_json_files(local, FILES, RECORDS)
    seaweedfs.put_many(bucket, ((f"landing/{p.name}", p.read_bytes()) for p in paths), workers=16)
    source = seaweedfs.source(bucket, "landing/").model_dump(mode="json", exclude_none=True)
    body = spec("/unused", table="crash_s3", name="crash-s3", source=source, limits={"max_files_per_batch": 50})
    ing = services.ingestions.create(body, activate=True)
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_STALE_RUN_SECONDS": "30",
    }
    crashed = run_cli("run", ing.name, env=env | {"AUTOLOADER_CRASH_AT": "after_commit:2"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    _finish(env, ing.name)
    _assert_exactly_once(services.embedded.table_uri(ing.spec.destination), services, ing.id)
