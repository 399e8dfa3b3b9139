"""Upgrade: a data dir of the last release (tests/fixtures/release-<revision>.tar.gz, made by
tests/fixtures/make_release_datadir.py with that release's code) started on this code. The pending migrations apply,
nothing the release recorded is lost, and loading goes on exactly once."""

from __future__ import annotations

import fcntl
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.db.database import alembic_config
from app.settings import Settings
from core.access import SYSTEM
from tests.fixtures.make_release_datadir import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    LANDING,
    SECRET_KEY,
    event_lines,
)
from tests.helpers import read_table

RELEASE = Path(__file__).resolve().parents[1] / "fixtures" / "release-0006.tar.gz"


@pytest.fixture
def release_data_dir(state_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The release's data dir unpacked, its landing folder back at the absolute path its ledger names (held under a
    lock: two test processes on one machine take turns)."""
    LANDING.parent.mkdir(parents=True, exist_ok=True)
    with open(LANDING.parent.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(LANDING, ignore_errors=True)
        unpacked = state_dir / "release"
        with tarfile.open(RELEASE) as tar:
            tar.extractall(unpacked, filter="data")  # keeps the files' modification times, as the ledger has them
        shutil.move(unpacked / "landing", LANDING)
        try:
            yield unpacked / "data", json.loads((unpacked / "manifest.json").read_text())
        finally:
            shutil.rmtree(LANDING, ignore_errors=True)


def _revision(services: Any) -> str:
    with services.db.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_release_data_dir_upgrades_without_loss_and_loads_on_exactly_once(
    release_data_dir: tuple[Path, dict[str, Any]],
) -> None:
    from app.bootstrap import build

    data_dir, release = release_data_dir
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert release["revision"] == "0006"  # the migrations after it (0007: table maintenance) apply here

    services = build(Settings(data_dir=data_dir, secret_key=SECRET_KEY, local_roots=[LANDING]))
    try:
        assert _revision(services) == head
        views = services.views
        ingestions = views.ingestions(SYSTEM)
        assert [{"id": i.id, "name": i.name, "status": i.status} for i in ingestions] == release["ingestions"]
        runs = [
            {"id": r.id, "ingestion_id": i.id, "status": r.status, "files": r.files_done, "records": r.records}
            for i in ingestions
            for r in views.runs(SYSTEM, i.id, days=None)
        ]
        assert runs == release["runs"]
        for ingestion in ingestions:  # 0009 numbers the release's runs within each ingestion, in id order
            numbers = [r.number for r in sorted(views.runs(SYSTEM, ingestion.id, days=None), key=lambda r: r.id)]
            assert numbers == list(range(1, len(numbers) + 1)), (ingestion.name, numbers)
        ledger = [
            {"ingestion_id": i.id, "path": f.path, "status": f.status, "records": f.records, "size": f.size}
            for i in ingestions
            for f in views.files(SYSTEM, i.id).items
        ]
        assert ledger == release["ledger"]
        versions = [
            {"ingestion_id": i.id, "version": v.version, "status": v.status}
            for i in ingestions
            for v in views.schema_versions(SYSTEM, i.id)
        ]
        assert versions == release["schema_versions"]
        _, admin = services.accounts.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert admin.email == ADMIN_EMAIL
        by_name = {i.name: i for i in ingestions}
        assert (
            sorted(read_table(views.table_uri(by_name["events"])).column("id").to_pylist())
            == (release["tables"]["events"])
        )
        assert (
            sorted(read_table(views.table_uri(by_name["orders"])).column("order_id").to_pylist())
            == (release["tables"]["orders"])
        )

        (LANDING / "events" / "part-0006.json").write_bytes(event_lines(170, 30))
        outcome = services.runs.run_now("events")
        assert (outcome.status.value, outcome.metrics.files_processed, outcome.metrics.records_ingested) == (
            "success",
            1,
            30,
        ), outcome.message
        events_runs = views.runs(SYSTEM, by_name["events"].id, days=None)
        assert views.run(SYSTEM, by_name["events"].id, outcome.run_id).number == len(events_runs)  # the next number
        ids = read_table(views.table_uri(by_name["events"])).column("id").to_pylist()
        assert sorted(ids) == sorted([*release["tables"]["events"], *range(170, 200)])
        assert services.runs.run_now("orders").metrics.files_processed == 0
    finally:
        services.close()


def test_servers_started_at_once_on_an_empty_postgresql_database_migrate_in_turn(pg_database: str) -> None:
    """Found by an outsider: two replicas started together on an empty database both created `alembic_version`; one
    crashed with a duplicate key on pg_type (a 2-replica deployment crash-looped once on its first rollout). Three
    processes migrate at once here (alembic's context is per process, as replicas are)."""
    import subprocess
    import sys
    import uuid

    from sqlalchemy import create_engine

    from app.db.database import at_head, make_engine

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{pg_database}?options=-csearch_path%3D{schema}"
    migrate = f"from app.db.database import upgrade; upgrade({url!r})"
    try:
        migrators = [
            subprocess.Popen([sys.executable, "-c", migrate], stderr=subprocess.PIPE, text=True) for _ in range(3)
        ]
        failed = [err for p in migrators if (err := p.communicate(timeout=120)[1]) and p.returncode != 0]
        assert not failed, failed[0][-2000:]
        engine = make_engine(url)
        try:
            assert at_head(engine)
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
