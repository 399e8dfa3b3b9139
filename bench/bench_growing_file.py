"""A file still being written while runs happen: lines written / loaded once / duplicated / missing, per setting.

A writer appends JSON lines (each written in two parts, as a slow producer does) for a few seconds while the
pipeline runs every 0.2 s; then it stops, the bench waits past the minimum age and runs once more.
Settings: plain (min age 0, reload off), min_file_age_seconds=1, reload_changed_files (min age 0).

    .venv/bin/python bench/bench_growing_file.py [seconds]
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.egress import EgressAllow
from core.engines.embedded import EmbeddedEngine
from core.guards import Guards, LocalRoots
from core.pipeline import RunPipeline
from core.storage import open_storage
from tests.fakes import MemoryStore
from tests.helpers import read_table, spec


def _write(path: Path, stop: threading.Event, written: list[int]) -> None:
    with path.open("a") as out:
        i = 0
        while not stop.is_set():
            line = json.dumps({"id": i, "name": f"n{i}"})
            out.write(line[:7])
            out.flush()
            out.write(line[7:] + "\n")
            out.flush()
            written.append(i)
            i += 1
            time.sleep(0.002)


def measure(name: str, source: dict[str, Any], seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing"
        landing.mkdir()
        path = landing / "growing.json"
        path.touch()
        store = MemoryStore()
        ingestion = store.add_ingestion(spec(str(landing), source=source))
        engine = EmbeddedEngine(str(Path(tmp) / "warehouse"))
        guards = Guards(LocalRoots([str(landing)]), EgressAllow())
        pipeline = RunPipeline(store, lambda _: engine, functools.partial(open_storage, guards=guards))
        stop, written = threading.Event(), []  # type: ignore[var-annotated]
        writer = threading.Thread(target=_write, args=(path, stop, written))
        writer.start()
        statuses: Counter[str] = Counter()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            statuses[pipeline.execute(ingestion.id, store.create_run(ingestion.id, "manual")).status.value] += 1
            time.sleep(0.2)
        stop.set()
        writer.join()
        time.sleep(1.2)
        statuses[pipeline.execute(ingestion.id, store.create_run(ingestion.id, "manual")).status.value] += 1
        ids: Counter[int] = Counter()
        with contextlib.suppress(Exception):  # no table: nothing loaded
            ids.update(read_table(engine.table_uri(ingestion.spec.destination)).column("id").to_pylist())
        once = len([i for i in written if ids.get(i) == 1])
        return {
            "setting": name,
            "written": len(written),
            "loaded_once": once,
            "duplicated": len([i for i in written if ids.get(i, 0) > 1]),
            "missing": len([i for i in written if i not in ids]),
            "runs": dict(statuses),
        }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    for name, source in (
        ("plain", {}),
        ("min_file_age_seconds=1", {"min_file_age_seconds": 1}),
        ("reload_changed_files", {"reload_changed_files": True}),
    ):
        print(json.dumps(measure(name, source, seconds)))


if __name__ == "__main__":
    main()
