"""Full refresh (#15): the table is replaced by the rows of every file now at the source, each loaded once.

Embedded engine on real Delta tables; SQLite metadata (the marker's store methods run on PostgreSQL too, in
test_full_refresh_marker_on_every_database). The crash between the replacing commit and the ledger update is in
test_crash_matrix.py (test_full_refresh_recovers_exactly_once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import mount_api
from core.access import SYSTEM, Role
from core.domain import RunStatus
from tests.conftest import admin_headers
from tests.helpers import read_table, spec, write_json_files


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """The engine cases are about the table and the ledger: SQLite is enough (the marker test takes both)."""
    return f"sqlite:///{state_dir / 'meta.db'}"


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _ids(uri: str) -> list[int]:
    return sorted(read_table(uri).column("id").to_pylist())


def test_append_table_ends_with_every_file_once(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 4, 5)
    (landing / "zz-bad.json").write_text('{"id": 1000}\n{"id": oops\n')
    ing = services.ingestions.create(
        spec(str(landing), limits={"max_files_per_batch": 2}, quality={"max_bad_record_ratio": 0.0}), activate=True
    )
    uri = services.embedded.table_uri(ing.spec.destination)
    first = services.runs.run_now(ing.name)
    assert first.metrics.files_quarantined == 1
    # reprocess appends every row again; a file deleted at the source keeps its rows
    services.runs.reprocess(ing.id, since=None, until=None, paths=[str(p) for p in sorted(landing.glob("part-*"))])
    _settle(services, ing.id)
    assert len(_ids(uri)) == 40
    (landing / "part-00000000.json").unlink()

    preview = services.refresh.preview(ing.id)
    assert (preview.files, preview.rows) == (4, 40)
    assert "holds 40 rows from 4 files now" in preview.message
    assert services.refresh.request(ing.id, run_now=False) is None
    refreshed = services.runs.run_now(ing.name)

    assert refreshed.status == RunStatus.PARTIAL, refreshed.message
    assert refreshed.metrics.files_processed == 3 and refreshed.metrics.files_quarantined == 1  # retried
    assert _ids(uri) == list(range(5, 20))
    assert "full refresh" in refreshed.message
    again = services.runs.run_now(ing.name)
    assert again.metrics.files_processed == 0 and _ids(uri) == list(range(5, 20))
    assert services.store.full_refresh_marker(ing.id) is None
    audit = [e for e in services.views.audit(SYSTEM) if e.action == "full_refresh"]
    assert audit and audit[0].details["files_dropped"] == 4 and audit[0].details["rows_dropped"] == 40


def _settle(services: Any, ingestion_id: int) -> None:
    """Wait for the background run reprocess started (the runner's pool)."""
    import time

    for _ in range(300):
        if services.store.active_run(ingestion_id) is None and all(
            r.status not in ("queued", "running") for r in services.views.runs(SYSTEM, ingestion_id)
        ):
            return
        time.sleep(0.05)
    raise AssertionError("the run did not end")


def test_merge_table_is_the_merge_of_every_file_in_order(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    for index in range(5):  # file i: ids 2i .. 2i+3, so each id but the ends is in two files; the later wins
        _write(landing / f"f{index}.json", [{"id": 2 * index + k, "v": f"f{index}"} for k in range(4)])
    ing = services.ingestions.create(
        spec(
            str(landing),
            destination={"write_mode": "merge", "merge_keys": ["id"]},
            limits={"max_files_per_batch": 2},
        ),
        activate=True,
    )
    uri = services.embedded.table_uri(ing.spec.destination)
    services.runs.run_now(ing.name)
    DeltaTable(uri).update(updates={"v": "'stale'"}, predicate="id = 0")  # a row the files no longer say
    (landing / "f4.json").unlink()
    services.refresh.request(ing.id, run_now=False)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS and outcome.metrics.batches_committed == 2
    table = read_table(uri)
    values = dict(zip(table.column("id").to_pylist(), table.column("v").to_pylist(), strict=True))
    expected = {2 * i + k: f"f{i}" for i in range(4) for k in range(4)}
    assert table.num_rows == len(expected) and values == expected


def test_empty_source_leaves_an_empty_table_with_its_columns(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    files = write_json_files(landing, 2, 5)
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    uri = services.embedded.table_uri(ing.spec.destination)
    services.runs.run_now(ing.name)
    columns = read_table(uri).column_names
    for path in files:
        path.unlink()
    services.refresh.request(ing.id, run_now=False)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    table = read_table(uri)
    assert (table.num_rows, table.column_names) == (0, columns)
    assert services.store.full_refresh_marker(ing.id) is None
    write_json_files(landing, 1, 3, start_id=50)
    assert services.runs.run_now(ing.name).metrics.files_processed == 1
    assert pc.sort_indices(read_table(uri).column("id")).to_pylist() == [0, 1, 2]


def test_a_pending_schema_review_is_dismissed_and_asked_again_only_for_files_that_still_differ(
    services: Any, tmp_path: Path
) -> None:
    landing = tmp_path / "in"
    _write(landing / "a.json", [{"id": 1, "name": "a"}])
    ing = services.ingestions.create(
        spec(str(landing), format={"type": "json", "schema": {"on_schema_change": "pause"}}), activate=True
    )
    uri = services.embedded.table_uri(ing.spec.destination)
    services.runs.run_now(ing.name)
    _write(landing / "b.json", [{"id": 2, "name": "b", "email": "b@x"}])
    _write(landing / "c.json", [{"id": 3, "name": "c", "phone": "3"}])
    assert services.runs.run_now(ing.name).schema_pending

    (landing / "c.json").unlink()  # the producer took the odd file back; b.json still has a new column
    services.refresh.request(ing.id, run_now=False)
    refreshed = services.runs.run_now(ing.name)

    versions = sorted(services.views.schema_versions(SYSTEM, ing.id), key=lambda v: v.version)
    assert [v.status for v in versions] == ["applied", "superseded", "pending"], refreshed.message
    assert versions[1].resolution == "full_refresh"
    assert [Path(f["path"]).name for f in versions[2].files] == ["b.json"]  # not c.json, nor b.json twice
    assert services.store.get_ingestion(ing.id).status.value == "needs_review"
    assert _ids(uri) == [1]

    (landing / "b.json").unlink()
    services.refresh.request(ing.id, run_now=False)
    services.runs.run_now(ing.name)
    statuses = [v.status for v in sorted(services.views.schema_versions(SYSTEM, ing.id), key=lambda v: v.version)]
    assert statuses == ["applied", "superseded", "superseded"]
    assert services.store.get_ingestion(ing.id).status.value == "active"  # nothing is left to review
    assert _ids(uri) == [1]


# --- API -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def app(services: Any) -> FastAPI:
    application = FastAPI()
    mount_api(application, services)
    return application


def test_api_full_refresh(services: Any, app: FastAPI, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    write_json_files(landing, 2, 5)
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    services.runs.run_now(ing.name)
    admin = TestClient(app, raise_server_exceptions=False, headers=admin_headers(services))

    assert admin.post("/api/v1/ingestions/999999/full-refresh").status_code == 404

    services.accounts.create_user(SYSTEM, "viewer@example.com", "a-long-password-1", Role.VIEWER, None)
    _, viewer = services.accounts.login("viewer@example.com", "a-long-password-1")
    token = services.accounts.create_token(viewer, viewer.user_id, "t").token
    as_viewer = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})
    assert as_viewer.post(f"/api/v1/ingestions/{ing.id}/full-refresh").status_code == 403
    assert services.store.full_refresh_marker(ing.id) is None

    run_id = services.store.create_run(ing.id, "manual")  # a run holding the slot, as the runner's would
    services.store.mark_run_started(run_id, services.pipeline.owner)
    assert services.store.claim_run_slot(ing.id, run_id)
    from core.live_runs import LIVE_RUNS

    LIVE_RUNS.add(run_id)
    try:
        busy = admin.post(f"/api/v1/ingestions/{ing.id}/full-refresh", json={"run_now": False})
    finally:
        LIVE_RUNS.discard(run_id)
        services.store.release_run_slot(ing.id, run_id)
    assert busy.status_code == 409 and "in progress" in busy.json()["error"]["message"]
    assert services.store.full_refresh_marker(ing.id) is None

    accepted = admin.post(f"/api/v1/ingestions/{ing.id}/full-refresh", json={"run_now": False})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert (body["files_dropped"], body["rows_dropped"], body["run_id"]) == (2, 10, None)
    assert services.store.full_refresh_marker(ing.id) == -1
