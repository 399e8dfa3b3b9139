"""The metadata database stopped mid-run (pg_ctl stop -m immediate) and started again: how long until the product
is healthy and loading again, and whether every record is in the table exactly once (for docs/RELIABILITY.md).

Run from the project root (needs /usr/lib/postgresql/15/bin; as root the cluster runs as the postgres user):

    .venv/bin/python bench/bench_db_outage.py                       # 8 s outage, default run retry budget
    .venv/bin/python bench/bench_db_outage.py --outage 30           # longer than the stale-run window
    .venv/bin/python bench/bench_db_outage.py --db-retry-seconds 1  # the run gives up at once

A real `autoloader serve` on a PostgreSQL cluster of its own, one continuous ingestion (every 5 s) over
--files JSON-lines files of 50 records, 4 files per batch. Prints the outage, then the seconds from the database
coming back until /health is 200, until the interrupted run has an end, until a later run is loading, and until
every file (those that arrived after the outage too) is in the table; and rows expected / loaded / duplicated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import pyarrow.compute as pc

from tests.conftest import clean_env
from tests.helpers import read_table, spec, write_json_files
from tests.integration.test_db_outage import OwnPostgres
from tests.server_process import ServerProcess

RECORDS = 50
LATE_FILES = 5


def _until(predicate, timeout: float = 300.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("timed out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=8.0, help="seconds the database stays down")
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--stale-seconds", type=float, default=15.0)
    parser.add_argument("--db-retry-seconds", type=float, default=None)
    args = parser.parse_args()

    cluster = OwnPostgres().init()
    cluster.start()
    with (
        tempfile.TemporaryDirectory(prefix="db-outage-state-") as state,
        tempfile.TemporaryDirectory(prefix="db-outage-landing-") as landing_dir,
    ):
        landing = Path(landing_dir)
        env = clean_env() | {
            "AUTOLOADER_DATA_DIR": str(Path(state) / "data"),
            "AUTOLOADER_DATABASE_URL": cluster.url,
            "AUTOLOADER_SECRET_KEY": "bench-secret-key",
            "AUTOLOADER_LOCAL_ROOTS": str(landing),
            "AUTOLOADER_SCHEDULE_REFRESH_SECONDS": "2",
            "AUTOLOADER_HEARTBEAT_SECONDS": "1",
            "AUTOLOADER_STALE_RUN_SECONDS": str(args.stale_seconds),
        }
        if args.db_retry_seconds is not None:
            env["AUTOLOADER_DB_RETRY_SECONDS"] = str(args.db_retry_seconds)
        write_json_files(landing, args.files, RECORDS)
        server = ServerProcess(env, Path(state) / "server.log").start()
        try:
            body = spec(
                str(landing),
                name="outage",
                schedule={"mode": "continuous", "interval_seconds": 5},
                limits={"max_files_per_batch": 4},
            )
            created = server.post(
                "/api/v1/ingestions", {**body.model_dump(mode="json", by_alias=True), "activate": True}
            )
            runs = f"/api/v1/ingestions/{created['id']}/runs"
            _until(lambda: any(r["files_done"] > 0 for r in server.get(runs)))
            first = next(r for r in server.get(runs) if r["files_done"] > 0)
            cluster.stop()
            health_down = httpx.get(server.base + "/api/v1/health", timeout=15)
            time.sleep(args.outage)
            cluster.start()
            back = time.monotonic()
            healthy = _until(lambda: httpx.get(server.base + "/api/v1/health", timeout=10).status_code == 200)
            ended = _until(lambda: server.get(f"{runs}/{first['id']}")["status"] not in ("queued", "running"))
            run = server.get(f"{runs}/{first['id']}")
            next_run = _until(
                lambda: any(r["id"] > first["id"] and r["status"] in ("running", "success") for r in server.get(runs))
            )
            write_json_files(landing, LATE_FILES, RECORDS, start_id=args.files * RECORDS, prefix="late")
            expected = (args.files + LATE_FILES) * RECORDS
            loaded_at = _until(lambda: read_table(created["table_uri"]).num_rows >= expected)
            table = read_table(created["table_uri"])
        finally:
            server.stop()
            cluster.remove()
    distinct = pc.count_distinct(table.column("id")).as_py()
    kinds = ",".join(e["kind"] for e in run["errors"]) or "-"
    print(f"outage {args.outage:g} s; /health during it: {health_down.status_code} {health_down.json()['status']}")
    print(f"interrupted run {first['id']}: {run['status']} ({kinds})")
    print(f"after the database came back: /health 200 in {healthy - back:.1f} s, run ended in {ended - back:.1f} s,")
    print(f"  a new run loading in {next_run - back:.1f} s, every file loaded in {loaded_at - back:.1f} s")
    print(f"rows expected {expected:,} / loaded {table.num_rows:,} / duplicated {table.num_rows - distinct:,}")
    return 0 if table.num_rows == distinct == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
