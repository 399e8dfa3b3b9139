"""Backfill choices at activation, and reprocessing a selection of files later."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.access import SYSTEM
from tests.helpers import read_table, spec, write_json_files
from tests.integration.test_api import wait_for_run


def test_new_files_only_skips_what_exists(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    write_json_files(landing, 3, 10)
    ing = services.ingestions.create(spec(str(landing), schedule={"backfill": {"mode": "new_only"}}), activate=True)
    page = services.views.files(SYSTEM, ing.id, status="skipped")
    skipped, _ = page.total, page.items
    assert skipped == 3
    assert services.runs.run_now(ing.name).metrics.files_processed == 0
    write_json_files(landing, 1, 10, start_id=500, prefix="new")
    outcome = services.runs.run_now(ing.name)
    assert outcome.metrics.files_processed == 1
    assert sorted(read_table(services.embedded.table_uri(ing.spec.destination)).column("id").to_pylist()) == list(
        range(500, 510)
    )


def test_since_date_loads_only_recent_files(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    old, recent = write_json_files(landing, 2, 10)
    week_ago = time.time() - 7 * 86400
    os.utime(old, (week_ago, week_ago))
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ing = services.ingestions.create(
        spec(str(landing), schedule={"backfill": {"mode": "since", "since": since}}), activate=True
    )
    outcome = services.runs.run_now(ing.name)
    assert outcome.metrics.files_processed == 1
    assert read_table(services.embedded.table_uri(ing.spec.destination)).column("_source_file")[0].as_py() == str(
        recent
    )


def test_reprocess_a_selection(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "in"
    paths = write_json_files(landing, 3, 10)
    destination = {"write_mode": "merge", "merge_keys": ["id"]}
    ing = services.ingestions.create(spec(str(landing), destination=destination), activate=True)
    services.runs.run_now(ing.name)
    body = {"paths": [str(paths[0])]}
    accepted = api.post(f"/api/v1/ingestions/{ing.id}/reprocess", json=body)
    assert accepted.status_code == 202 and accepted.json()["files"] == 1
    run = wait_for_run(api, ing.id, accepted.json()["run_id"])
    assert run["trigger"] == "backfill" and run["metrics"]["files_processed"] == 1
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 30  # merge: no duplicates
    assert api.post(f"/api/v1/ingestions/{ing.id}/reprocess", json={}).json()["error"]["field"] == "paths"
    assert [a["action"] for a in api.get("/api/v1/audit").json()][:2] == ["run", "reprocess"]
