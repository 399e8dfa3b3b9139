"""How long migration 0009 takes to number the existing runs per ingestion, and how fast runs are inserted numbered.

    .venv/bin/python bench/bench_run_numbers.py [--runs 1000000] [--ingestions 1000]
    .venv/bin/python bench/bench_run_numbers.py --database-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres

1. A fresh metadata DB (SQLite in a temp dir by default; on PostgreSQL a schema of its own, dropped afterwards) is
   migrated to 0008 and filled with --runs runs spread over --ingestions ingestions (bulk inserts).
2. Times `alembic upgrade 0009` (one UPDATE ... FROM with ROW_NUMBER over the run table, then the unique index).
3. Times 500 `create_run` calls (the number is computed inside each INSERT) on the filled table, from 1 and from 8
   threads on one ingestion.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic import command
from app.db.database import alembic_config, make_engine
from app.db.repository import SqlStore
from app.secrets_box import SecretBox

CHUNK = 20_000
SPEC_PART = '{"type": "local", "path": "/bench"}'


def fill(engine: Engine, ingestions: int, runs: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as c:
        if not c.execute(text("SELECT count(*) FROM tenant")).scalar():
            c.execute(text("INSERT INTO tenant (name, created_at) VALUES ('default', :t)"), {"t": now})
        tenant = c.execute(text("SELECT min(id) FROM tenant")).scalar()
        c.execute(
            text(
                "INSERT INTO ingestion (name, status, uid, source, format, destination, schedule, quality, limits,"
                " tenant_id, created_at, updated_at) VALUES (:n, 'active', :u, :p, '{}', '{}', '{}', '{}', '{}',"
                " :tenant, :t, :t)"
            ),
            [
                {"n": f"i{n}", "u": str(uuid.uuid4()), "p": SPEC_PART, "tenant": tenant, "t": now}
                for n in range(ingestions)
            ],
        )
        ids = list(c.execute(text("SELECT id FROM ingestion ORDER BY id")).scalars())
        insert_run = text(
            "INSERT INTO run (ingestion_id, trigger, status, created_at, files_total, files_done, metrics, errors,"
            " message, attempt) VALUES (:i, 'scheduled', 'success', :t, 0, 0, '{}', '[]', '', 1)"
        )
        for first in range(0, runs, CHUNK):
            c.execute(insert_run, [{"i": ids[n % len(ids)], "t": now} for n in range(first, min(first + CHUNK, runs))])


def timed_inserts(engine: Engine, threads: int, count: int = 500) -> float:
    store = SqlStore(engine, SecretBox("bench-secret-key"))
    with engine.connect() as c:
        ingestion_id = c.execute(text("SELECT min(id) FROM ingestion")).scalar_one()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: store.create_run(ingestion_id, "manual"), range(count)))
    return time.perf_counter() - started


def bench(url: str, ingestions: int, runs: int) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "0008")
    plain = create_engine(url)
    started = time.perf_counter()
    fill(plain, ingestions, runs)
    print(f"filled {runs:,} runs over {ingestions:,} ingestions in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    command.upgrade(cfg, "0009")
    print(f"migration 0009 (number every run, unique index): {time.perf_counter() - started:.2f} s", flush=True)
    with plain.connect() as c:
        unnumbered = c.execute(text("SELECT count(*) FROM run WHERE number IS NULL")).scalar()
        largest = c.execute(text("SELECT max(number) FROM run")).scalar()
    print(f"  runs without a number: {unnumbered}; largest number: {largest:,}")
    plain.dispose()
    engine = make_engine(url)
    for threads in (1, 8):
        seconds = timed_inserts(engine, threads)
        each = seconds / 500 * 1000
        print(f"create_run x500 on one ingestion, {threads} thread(s): {seconds:.2f} s ({each:.1f} ms each)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--ingestions", type=int, default=1000)
    parser.add_argument("--database-url", help="a PostgreSQL server's database (a schema is made in it)")
    args = parser.parse_args()
    if not args.database_url:
        with tempfile.TemporaryDirectory() as folder:
            print("SQLite")
            bench(f"sqlite:///{folder}/bench.db", args.ingestions, args.runs)
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        print("PostgreSQL")
        bench(f"{args.database_url}?options=-csearch_path%3D{schema}", args.ingestions, args.runs)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
