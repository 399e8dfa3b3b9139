"""Listing at scale and incremental listing (issues #16 item 2 and #14): N already-loaded files, then no-op runs.

    .venv/bin/python bench/bench_listing.py                       # 100,000 objects in SeaweedFS and local files
    .venv/bin/python bench/bench_listing.py --files 20000 --only local

For each backend (S3 on a SeaweedFS started here on loopback, and a local folder) N small files land under
100 date folders (`2026-01-01/part-000000.json` ...). The product is built in this process on a fresh SQLite data
dir; the N files are recorded as loaded in the ledger (a pending batch completed: the ledger's own bulk path,
instead of a real first load, which bench_scaling times). Then, each repeated --repeat times, median printed:

- `list`: the backend's listing alone (every file);
- `no-op, full listing`: `run_now` with nothing new, listing everything and diffing it against the ledger;
- `no-op, incremental`: the same with source.incremental_listing, the listing starting after the last path;
- `+10, incremental`: ten new files land after the last path and are loaded (a real load and Delta commit).

Targets (#16): listing + ledger diff of 100,000 objects < 10 s; a no-op over 100,000 loaded objects < 2 s with
incremental listing (#14: < 1 s). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FOLDERS = 100


def names(count: int, start: int = 0) -> list[str]:
    per_folder = max(count // FOLDERS, 1)
    return [f"2026-01-{1 + i // per_folder:03d}/part-{i:06d}.json" for i in range(start, start + count)]


def body(i: int) -> bytes:
    return json.dumps({"id": i, "name": f"n{i}"}).encode() + b"\n"


def timed(step: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def record_loaded(svc: Any, ingestion: Any) -> int:
    """Put every listed file in the ledger as loaded, through the store's batch path (no table write)."""
    from core.domain import FileResult, FileStatus, LedgerEntry

    storage = svc.runner.pipeline.storage_for(ingestion.spec.source)
    files = list(storage.list_files(ingestion.spec.source.file_pattern))
    run_id = svc.store.create_run(ingestion.id, "manual")
    entries = [LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.PENDING, run_id, 1) for f in files]
    svc.store.add_pending_batch(ingestion.id, run_id, 1, entries)
    svc.store.complete_batch(ingestion.id, 1, {f.path: FileResult(FileStatus.LOADED, records=1) for f in files})
    return len(files)


def measure(svc: Any, source: dict[str, Any], put: Callable[[list[str]], None], count: int, repeat: int) -> dict:
    from core.config import IngestionSpec
    from core.ports import ListingState

    spec = IngestionSpec.model_validate(
        {
            "name": f"listing-{source['type']}",
            "source": {**source, "incremental_listing": True},
            "format": {"type": "json"},
            "destination": {"table": f"listing_{source['type']}"},
        }
    )
    ingestion = svc.ingestions.create(spec, activate=True)
    storage = svc.runner.pipeline.storage_for(ingestion.spec.source)
    result: dict[str, Any] = {"backend": source["type"], "files": count}
    result["list"], _ = timed(lambda: sum(1 for _ in storage.list_files(None)), repeat)
    result["ledger"] = record_loaded(svc, ingestion)
    last = max(f.path for f in storage.list_files(None))

    def run(state: ListingState) -> Any:
        svc.store.set_listing_state(ingestion.id, state)
        outcome = svc.runs.run_now(ingestion.name)
        assert outcome.metrics.files_processed == 0, outcome.message
        return outcome

    result["noop_full"], _ = timed(lambda: run(ListingState(None, None)), repeat)
    recent = ListingState(last, datetime.now(UTC))
    result["noop_incremental"], _ = timed(lambda: run(recent), repeat)
    put(names(10, start=count))
    started = time.perf_counter()
    added = svc.runs.run_now(ingestion.name)
    result["plus10_incremental"] = time.perf_counter() - started
    result["plus10_loaded"] = added.metrics.files_processed
    return result


def run_s3(count: int, repeat: int, workdir: Path, svc: Any) -> dict:
    from tests.services import SeaweedFS

    server = SeaweedFS(workdir / "weed")
    server.start()
    try:
        bucket = server.new_bucket("listing")
        print(f"[s3] putting {count:,} objects ...", flush=True)
        started = time.perf_counter()

        def put(keys: list[str]) -> None:
            server.put_many(bucket, ((f"landing/{k}", body(i)) for i, k in enumerate(keys)), workers=32)

        put(names(count))
        print(f"[s3] put in {time.perf_counter() - started:.0f} s", flush=True)
        source = server.source(bucket, "landing/").model_dump(mode="json", exclude_none=True)
        return measure(svc, source, put, count, repeat)
    finally:
        server.stop()


def run_local(count: int, repeat: int, workdir: Path, svc: Any) -> dict:
    folder = workdir / "input" / "local"

    def put(keys: list[str]) -> None:
        for i, key in enumerate(keys):
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body(i))

    print(f"[local] writing {count:,} files ...", flush=True)
    put(names(count))
    return measure(svc, {"type": "local", "path": str(folder)}, put, count, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["s3", "local"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="al-listing-"))
    os.environ.update(
        {
            "AUTOLOADER_DATA_DIR": str(workdir / "state"),
            "AUTOLOADER_SECRET_KEY": "bench",
            "AUTOLOADER_LOCAL_ROOTS": str(workdir / "input"),
            "AUTOLOADER_EGRESS_ALLOW": "127.0.0.1/32",
        }
    )
    (workdir / "input").mkdir(parents=True)
    from app.bootstrap import build
    from app.settings import Settings

    svc = build(Settings(_env_file=None))
    results = []
    try:
        for name, runner in (("s3", run_s3), ("local", run_local)):
            if args.only in (None, name):
                results.append(runner(args.files, args.repeat, workdir, svc))
    finally:
        svc.close()
    load = os.getloadavg()[0]
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus, load {load:.1f}, median of {args.repeat}")
    print(f"{'backend':>8} {'files':>9} {'list s':>8} {'no-op full s':>13} {'no-op incr s':>13} {'+10 incr s':>11}")
    for r in results:
        print(
            f"{r['backend']:>8} {r['files']:>9,} {r['list']:>8.2f} {r['noop_full']:>13.2f} "
            f"{r['noop_incremental']:>13.3f} {r['plus10_incremental']:>11.2f}  (loaded {r['plus10_loaded']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
