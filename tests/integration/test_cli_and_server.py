"""The `autoloader` command: `run` for cron/Airflow users, and `serve` as a real server process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, run_cli
from tests.helpers import spec, write_json_files
from tests.server_process import ADMIN_EMAIL, ADMIN_PASSWORD, AUTH, ServerProcess


def _env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
    }


def test_run_prints_a_summary_and_exit_codes(services, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 2, 10)
    ing = services.ingestions.create(spec(str(tmp_path / "in"), name="nightly"), activate=True)
    ok = run_cli("run", "nightly", env=_env(settings))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("run #1 of 'nightly': success") and "records 20" in ok.stdout

    as_json = json.loads(run_cli("run", str(ing.id), "--json", env=_env(settings)).stdout)
    assert as_json["status"] == "success" and as_json["metrics"]["files_processed"] == 0
    assert as_json["number"] == 2  # the console's Run #2; run_id stays the identifier

    missing = run_cli("run", "no-such-ingestion", env=_env(settings))
    assert missing.returncode == 2 and "No ingestion" in missing.stderr

    broken = services.ingestions.create(spec(str(tmp_path / "gone"), name="broken", table="t2"), activate=True)
    failed = run_cli("run", broken.name, env=_env(settings))
    assert failed.returncode == 1
    assert "does not exist" in failed.stdout and "→" in failed.stdout


@pytest.mark.slow
def test_serve_starts_console_api_and_docs(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = ServerProcess(_env(settings), tmp_path / "server.log").start()
    base = server.base
    try:
        anonymous = httpx.get(base + "/", timeout=10)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        assert httpx.get(base + "/docs", timeout=5).status_code == 303
        assert httpx.get(base + "/api/v1/ingestions", timeout=5).status_code == 401
        with httpx.Client(base_url=base, timeout=10) as browser:
            signed_in = browser.post("/auth/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/", signed_in.text
            assert "Data Ingestions" in browser.get("/").text
            assert browser.get("/docs").status_code == 200
            paths = browser.get("/openapi.json").json()["paths"]
        assert "/api/v1/ingestions/{ingestion_id}/run" in paths
        write_json_files(tmp_path / "in", 2, 10)
        created = httpx.post(
            base + "/api/v1/ingestions",
            json={**spec(str(tmp_path / "in")).model_dump(mode="json", by_alias=True), "activate": True},
            headers=AUTH,
        ).json()
        run = httpx.post(f"{base}/api/v1/ingestions/{created['id']}/run", headers=AUTH).json()
        for _ in range(100):
            record = httpx.get(base + run["url"], headers=AUTH).json()
            if record["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert record["status"] == "success" and record["metrics"]["records_ingested"] == 20
    finally:
        server.stop()
