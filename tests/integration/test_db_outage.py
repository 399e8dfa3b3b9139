"""The metadata database goes down mid-run and comes back: a real server on a PostgreSQL cluster of the test's own
(initdb/pg_ctl on a free port, never the shared one), stopped with `pg_ctl stop -m immediate` while a continuous
ingestion loads, started again 8 s later.

Meanwhile `/health` answers 503 naming the database. Afterwards, without a server restart: the interrupted run has
an end (it survived the outage, or it gave up and was settled), the ingestion is runnable again within the
stale-run window, the scheduler still fires (new files are loaded by runs after the outage), and every record is
in the table exactly once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest

from tests.conftest import clean_env
from tests.helpers import read_table, spec, write_json_files
from tests.server_process import AUTH, ServerProcess
from tests.services import free_port

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FILES, RECORDS = 400, 50
LATE_FILES = 5
OUTAGE_SECONDS = 8
STALE_SECONDS = 15


class OwnPostgres:
    """A throw-away PostgreSQL cluster on loopback, trust auth. Debian's binaries refuse to run as root: as root
    they run as the `postgres` user, in a folder that user owns."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="autoloader-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60, cwd=self.dir)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout}\n{done.stderr}"

    def init(self) -> OwnPostgres:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o", options, "start"
        )

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    cluster = OwnPostgres().init()
    cluster.start()
    yield cluster
    cluster.remove()


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def run_ended(server: ServerProcess, ingestion_id: int, run_id: int) -> dict[str, Any] | None:
    run: dict[str, Any] = server.get(f"/api/v1/ingestions/{ingestion_id}/runs/{run_id}")
    return None if run["status"] in ("queued", "running") else run


def runs_of(server: ServerProcess, ingestion_id: int) -> list[dict[str, Any]]:
    return list(server.get(f"/api/v1/ingestions/{ingestion_id}/runs"))


@pytest.mark.parametrize(
    ("db_retry_seconds", "outcome"),
    [(None, "survived"), (1, "gave_up")],
    ids=["run-survives-the-outage", "run-gives-up-and-is-settled"],
)
def test_metadata_db_outage_mid_run(
    own_postgres: OwnPostgres, state_dir: Path, tmp_path: Path, db_retry_seconds: int | None, outcome: str
) -> None:
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(state_dir / "data"),
        "AUTOLOADER_DATABASE_URL": own_postgres.url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_SCHEDULE_REFRESH_SECONDS": "2",
        "AUTOLOADER_HEARTBEAT_SECONDS": "1",
        "AUTOLOADER_STALE_RUN_SECONDS": str(STALE_SECONDS),
        "AUTOLOADER_RETRY_BACKOFF_SECONDS": "[2, 2, 2]",
    }
    if db_retry_seconds is not None:
        env["AUTOLOADER_DB_RETRY_SECONDS"] = str(db_retry_seconds)
    landing = tmp_path / "landing"
    write_json_files(landing, FILES, RECORDS)
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        body = spec(
            str(landing),
            name="outage",
            schedule={"mode": "continuous", "interval_seconds": 5},
            limits={"max_files_per_batch": 4},
        )
        created = server.post("/api/v1/ingestions", {**body.model_dump(mode="json", by_alias=True), "activate": True})
        ingestion_id = created["id"]
        first = wait_until(
            lambda: next((r for r in runs_of(server, ingestion_id) if r["files_done"] > 0), None), timeout=60
        )
        assert first["files_done"] < FILES, "the run ended before the outage: give it more files"

        own_postgres.stop()
        down = httpx.get(server.base + "/api/v1/health", timeout=15)
        assert down.status_code == 503, down.text
        health = down.json()
        assert health["status"] == "degraded" and health["checks"]["database"]["status"] == "failed"
        assert "unreachable" in health["checks"]["database"]["detail"]
        # found by an outsider: the sign-in check in front of the API answered 500 "Internal error (OperationalError)"
        asked = time.monotonic()
        listed = httpx.get(f"{server.base}/api/v1/ingestions/{ingestion_id}/runs", headers=AUTH, timeout=15)
        assert listed.status_code == 503 and listed.json()["error"]["code"] == "metadata_unavailable", listed.text
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - asked)))  # the outage as long as before
        own_postgres.start()

        assert wait_until(lambda: httpx.get(server.base + "/api/v1/health", timeout=10).status_code == 200, 15)
        if outcome == "survived":  # the run goes on with its remaining files: its own pace, not the stale window
            ended = wait_until(lambda: run_ended(server, ingestion_id, first["id"]), timeout=120, step=0.5)
            assert ended["status"] == "success", ended
        else:  # settled, and a later run loading, within the stale window of the DB coming back
            ended = wait_until(lambda: run_ended(server, ingestion_id, first["id"]), timeout=STALE_SECONDS + 5)
            assert ended["status"] == "failed", ended
            assert ended["errors"][0]["kind"] in ("metadata_unavailable", "interrupted"), ended["errors"]
            wait_until(
                lambda: any(
                    r["id"] > first["id"] and r["status"] in ("running", "success")
                    for r in runs_of(server, ingestion_id)
                ),
                timeout=STALE_SECONDS + 5,
            )

        # the scheduler still fires: files that arrive after the outage are picked up by its next runs
        write_json_files(landing, LATE_FILES, RECORDS, start_id=FILES * RECORDS, prefix="late")
        table_uri = created["table_uri"]

        def all_loaded() -> bool:
            return read_table(table_uri).num_rows >= (FILES + LATE_FILES) * RECORDS

        wait_until(all_loaded, timeout=120, step=0.5)
        after = [r for r in runs_of(server, ingestion_id) if r["id"] > first["id"]]
        assert any(r["status"] == "success" and r["metrics"]["files_processed"] > 0 for r in after), after

        table = read_table(table_uri)
        expected = (FILES + LATE_FILES) * RECORDS
        assert table.num_rows == expected
        assert pc.count_distinct(table.column("id")).as_py() == expected
        stuck = [r for r in runs_of(server, ingestion_id) if r["status"] == "running" and r["id"] <= first["id"]]
        assert not stuck, stuck
        # a manual run is accepted (a 409 may only come from a scheduled run in flight, which ends within a second)
        assert wait_until(
            lambda: httpx.post(f"{server.base}/api/v1/ingestions/{ingestion_id}/run", headers=AUTH).status_code == 202,
            timeout=10,
            step=0.1,
        )
    finally:
        server.stop()
