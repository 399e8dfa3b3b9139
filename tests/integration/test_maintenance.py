"""Table maintenance (#17 item 5) on the embedded engine: compaction drops the file count and changes no row, a
reader of an older version still reads it, the default vacuum keeps every recent file, a short retention is refused
without the server setting, runs after a compaction stay exactly once, maintenance and runs never overlap, scheduled
maintenance runs once per slot, and the REST API. SQLite only: the metadata side is covered on both databases by
tests/contract/test_maintenance_store.py."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from app.services.maintenance import MaintenanceService
from core.access import SYSTEM
from core.domain import Ingestion, IngestionStatus, RunStatus
from core.engines.base import CompactionResult
from core.engines.embedded import EmbeddedEngine
from core.errors import ConfigError, RunInProgress
from core.maintenance import SHORT_RETENTION_SETTING, MaintenanceConfig, MaintenanceRecord
from tests.helpers import spec, write_json_files

RUNS = 6
ROWS = 5


@pytest.fixture
def database_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'meta.db'}"


def sorted_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The whole content, compared as a sorted list (compaction may reorder files)."""
    return sorted(table.to_pylist(), key=lambda row: (row["id"], row["_source_file"]))


def table_of(services: Any, ingestion: Ingestion, version: int | None = None) -> DeltaTable:
    return DeltaTable(services.engines.table_uri(ingestion.spec.destination, 1), version=version)


def load_in_runs(services: Any, landing: Path, runs: int = RUNS, name: str = "events") -> Ingestion:
    """`runs` runs of one new file each: a table of `runs` small files."""
    ingestion = services.ingestions.create(spec(str(landing), name=name, table=name), activate=True)
    for index in range(runs):
        write_json_files(landing, 1, ROWS, start_id=index * ROWS, prefix=f"run{index}")
        outcome = services.runs.run_now(str(ingestion.id))
        assert (outcome.status, outcome.metrics.files_processed) == (RunStatus.SUCCESS, 1), outcome
    return ingestion


def maintain(services: Any, ingestion_id: int, service: MaintenanceService | None = None) -> MaintenanceRecord:
    service = service or services.maintenance
    maintenance_id = service.start(ingestion_id)
    service.wait(maintenance_id)
    record: MaintenanceRecord = services.views.maintenance_run(SYSTEM, ingestion_id, maintenance_id)
    return record


def test_compaction_keeps_rows_readers_and_exactly_once(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    ingestion = load_in_runs(services, landing)
    before = table_of(services, ingestion)
    version, rows = before.version(), sorted_rows(before.to_pyarrow_table())
    files = set(before.file_uris())
    assert len(files) == RUNS and len(rows) == RUNS * ROWS
    reader = table_of(services, ingestion, version)  # a reader that opened the table before the maintenance

    record = maintain(services, ingestion.id)

    assert (record.status, record.trigger, record.files_before, record.files_after) == ("success", "manual", RUNS, 1)
    assert record.bytes_before and record.bytes_after
    assert (record.files_removed, record.retention_hours) == (0, 168)  # nothing recent is ever vacuumed
    after = table_of(services, ingestion)
    assert len(after.file_uris()) == 1 and after.version() == version + 1
    assert sorted_rows(after.to_pyarrow_table()) == rows
    assert all(Path(uri).exists() for uri in files)
    assert sorted_rows(reader.to_pyarrow_table()) == rows
    assert sorted_rows(table_of(services, ingestion, version).to_pyarrow_table()) == rows
    assert after.transaction_version(ingestion.app_id) == before.transaction_version(ingestion.app_id)

    write_json_files(landing, 1, ROWS, start_id=RUNS * ROWS, prefix="later")
    outcome = services.runs.run_now(str(ingestion.id))
    assert (outcome.metrics.files_processed, outcome.metrics.records_ingested) == (1, ROWS)
    assert services.runs.run_now(str(ingestion.id)).metrics.files_processed == 0
    ids = table_of(services, ingestion).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == list(range((RUNS + 1) * ROWS))


def test_a_short_vacuum_retention_needs_the_setting(services: Any, settings: Any, tmp_path: Path) -> None:
    """Refused by default (naming the setting); allowed by it, the vacuum deletes what an older version needed."""
    ingestion = load_in_runs(services, tmp_path / "in", runs=3)
    short = MaintenanceConfig(vacuum_retention_hours=0)
    with pytest.raises(ConfigError) as refused:
        services.maintenance.configure(ingestion.id, short)
    assert SHORT_RETENTION_SETTING in refused.value.action and refused.value.field == "vacuum_retention_hours"
    assert services.store.maintenance_config(ingestion.id).vacuum_retention_hours == 168

    allowed = MaintenanceService(services.store, services.engines, timedelta(seconds=30), 0.5, True)
    try:
        allowed.configure(ingestion.id, short)
        version = table_of(services, ingestion).version()
        record = maintain(services, ingestion.id, allowed)
    finally:
        allowed.close()
    assert (record.status, record.files_before, record.files_after, record.files_removed) == ("success", 3, 1, 3)
    with pytest.raises(Exception, match=r"(?i)not found|no such file"):
        table_of(services, ingestion, version).to_pyarrow_table()

    # stored while allowed, refused once the server no longer allows it: said on a failed record
    with pytest.raises(ConfigError):
        services.maintenance.start(ingestion.id)
    last = services.views.maintenance(SYSTEM, ingestion.id).last
    assert last is not None and last.status == "failed" and SHORT_RETENTION_SETTING in last.errors[0]["action"]


class BlockedCompaction:
    """Holds the embedded engine's compaction until released, so a maintenance is seen while it runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.started, self.release = threading.Event(), threading.Event()
        original = EmbeddedEngine.compact

        def compact(engine: EmbeddedEngine, destination: Any) -> CompactionResult:
            self.started.set()
            assert self.release.wait(20)
            return original(engine, destination)

        monkeypatch.setattr(EmbeddedEngine, "compact", compact)


def test_runs_and_maintenance_never_overlap(services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestion = load_in_runs(services, tmp_path / "in", runs=2)
    blocked = BlockedCompaction(monkeypatch)
    maintenance_id = services.maintenance.start(ingestion.id)
    assert blocked.started.wait(10)
    try:
        with pytest.raises(RunInProgress, match=f"Table maintenance {maintenance_id} of 'events'"):
            services.runs.trigger(ingestion.id)
        run_id = services.store.create_run(ingestion.id, "scheduled")  # a fire that got past the check
        skipped = services.runner.run_inline(ingestion.id, run_id)
        assert skipped.status == RunStatus.SKIPPED
        assert skipped.message == f"Skipped: table maintenance {maintenance_id} of this ingestion is still in progress."
        with pytest.raises(RunInProgress):
            services.maintenance.start(ingestion.id)
    finally:
        blocked.release.set()
    services.maintenance.wait(maintenance_id)
    assert services.store.active_run(ingestion.id) is None

    run_id = services.store.create_run(ingestion.id, "manual")
    services.store.claim_run_slot(ingestion.id, run_id)  # a run of this process holds the slot
    services.store.mark_run_started(run_id, f"{socket.gethostname()}:{os.getpid()}")
    from core.live_runs import LIVE_RUNS

    LIVE_RUNS.add(run_id)
    try:
        number = services.views.run(SYSTEM, ingestion.id, run_id).number  # as the console numbers it
        with pytest.raises(RunInProgress, match=f"Run #{number} of 'events' is in progress"):
            services.maintenance.start(ingestion.id)
    finally:
        LIVE_RUNS.discard(run_id)
    records = services.views.maintenance(SYSTEM, ingestion.id).records
    assert [r.id for r in records] == [maintenance_id]  # a refused start leaves no record


def test_scheduled_maintenance_runs_once_per_slot(services: Any, tmp_path: Path) -> None:
    ingestion = load_in_runs(services, tmp_path / "in", runs=2)
    idle = load_in_runs(services, tmp_path / "other", runs=1, name="paused")
    services.maintenance.configure(ingestion.id, MaintenanceConfig(enabled=True, every_hours=6))
    services.maintenance.configure(idle.id, MaintenanceConfig(enabled=True, every_hours=6))
    services.ingestions.pause(idle.id)
    now = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)

    [first] = services.maintenance.run_due(now)
    record = services.views.maintenance_run(SYSTEM, ingestion.id, first)
    slot = now.replace(hour=12, minute=0)  # every 6 h, anchored at midnight UTC
    assert (record.trigger, record.scheduled_for, record.files_after) == ("scheduled", slot, 1)
    replica = MaintenanceService(services.store, services.engines, timedelta(seconds=30), 0.5, False)
    try:
        assert replica.run_due(now) == []  # the same slot on another replica: already taken
    finally:
        replica.close()
    assert services.maintenance.run_due(now + timedelta(hours=4)) == []  # 17:05: the 18:00 slot is not due yet
    [second] = services.maintenance.run_due(now + timedelta(hours=5))
    assert services.views.maintenance_run(SYSTEM, ingestion.id, second).files_before == 1
    assert services.views.maintenance(SYSTEM, idle.id).records == []  # paused: not maintained on schedule


def test_a_maintenance_left_by_a_dead_process_is_settled(services: Any, tmp_path: Path) -> None:
    ingestion = services.ingestions.create(spec(str(tmp_path)), activate=True)
    dead = f"{socket.gethostname()}:{2**22 + 12345}"  # above pid_max: no such process
    maintenance_id = services.store.create_maintenance(ingestion.id, "scheduled", 168, dead)
    assert services.store.claim_run_slot(ingestion.id, -maintenance_id)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert services.maintenance.settle_stale(later) == 1
    record = services.views.maintenance_run(SYSTEM, ingestion.id, maintenance_id)
    assert record.status == "failed" and record.errors[0]["kind"] == "interrupted"
    assert services.store.active_run(ingestion.id) is None
    assert services.runs.run_now(str(ingestion.id)).status == RunStatus.SUCCESS


def test_maintenance_api(api: Any, services: Any, tmp_path: Path) -> None:
    ingestion = load_in_runs(services, tmp_path / "in", runs=3)
    url = f"/api/v1/ingestions/{ingestion.id}/maintenance"
    assert api.get(url).json()["settings"]["enabled"] is False

    answer = api.put(url, json={"enabled": True, "cron": "0 3 * * sun"})
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["description"].startswith("Cron '0 3 * * sun' (UTC)") and shown["next_due_at"]
    refused = api.put(url, json={"enabled": True, "vacuum_retention_hours": 24})
    assert refused.status_code == 422 and SHORT_RETENTION_SETTING in refused.json()["error"]["action"]
    assert refused.json()["error"]["field"] == "vacuum_retention_hours"
    assert api.put(url, json={"every_hours": 1, "cron": "0 3 * * *"}).status_code == 422
    assert api.put(url, json={"cron": "not a cron"}).status_code == 422

    accepted = api.post(url)
    assert accepted.status_code == 202, accepted.text
    record = wait_for_maintenance(api, accepted.json()["url"])
    assert (record["status"], record["files_before"], record["files_after"]) == ("success", 3, 1)
    last = api.get(url).json()["last"]
    assert (last["id"], last["files_removed"]) == (accepted.json()["maintenance_id"], 0)
    assert api.get(f"{url}/999").status_code == 404

    draft = services.ingestions.create(spec(str(tmp_path / "in"), name="draft", table="draft"))
    assert draft.status == IngestionStatus.DRAFT
    assert api.post(f"/api/v1/ingestions/{draft.id}/maintenance").status_code == 409


def test_a_table_not_created_yet_is_skipped(services: Any, tmp_path: Path) -> None:
    ingestion = services.ingestions.create(spec(str(tmp_path)), activate=True)
    record = maintain(services, ingestion.id)
    assert record.status == "skipped" and "does not exist yet" in record.message


def wait_for_maintenance(api: Any, url: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = api.get(url).json()
        if record["status"] != "running":
            return record
        time.sleep(0.05)
    raise AssertionError(f"maintenance did not finish: {record}")


def test_closing_waits_for_the_maintenance_in_flight(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing (a server's shutdown) lets a running compaction end and store its record, rather than leaving it to
    write after the process let go of its metadata database (app/workers.py)."""
    from app.bootstrap import build

    services = build(settings)
    ingestion = load_in_runs(services, tmp_path / "in", runs=2)
    blocked = BlockedCompaction(monkeypatch)
    maintenance_id = services.maintenance.start(ingestion.id)
    assert blocked.started.wait(10)
    threading.Timer(0.5, blocked.release.set).start()  # the compaction goes on while the services close
    services.close()
    record = services.views.maintenance_run(SYSTEM, ingestion.id, maintenance_id)
    assert (record.status, record.files_after) == ("success", 1)
