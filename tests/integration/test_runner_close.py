"""Closing the services (a server's shutdown, a test's teardown) waits for the runs in flight, boundedly.

Before, `Runner.close` let a running run go on after the process had let go of its metadata database: in the test
suite such a run (started by the API fuzzer) later failed to reach its removed SQLite file, logged errors for 50 s
into whichever test ran next, and re-created the file. Run on SQLite and PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from app.runner import Runner
from core.domain import RunOutcome, RunStatus
from tests.helpers import spec, write_json_files


def _wait_for(predicate: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_closing_waits_for_the_run_in_flight(settings: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.bootstrap import build

    folder = tmp_path / "landing"
    write_json_files(folder, 1500, 20)  # about a second of loading: the run is mid-way when the services close
    services = build(settings)
    ingestion = services.ingestions.create(spec(str(folder), table="drained", name="drained"), activate=True)
    run_id = services.runs.trigger(ingestion.id, "manual")
    _wait_for(lambda: services.store.get_run(ingestion.id, run_id).status == RunStatus.RUNNING.value)
    services.close()
    run = services.store.get_run(ingestion.id, run_id)  # a disposed engine opens a new connection
    assert run.status == RunStatus.SUCCESS.value, run.status
    assert run.metrics["files_processed"] == 1500


class _BlockedPipeline:
    """Stands in for RunPipeline (a stub: no real run can be made to hang at a chosen point without a fault)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def execute(self, ingestion_id: int, run_id: int) -> RunOutcome:
        self.started.set()
        self.release.wait(30)
        raise RuntimeError("released")


def test_closing_stops_waiting_after_the_drain_time(services: Any) -> None:
    pipeline = _BlockedPipeline()
    runner = Runner(services.store, pipeline, [], workers=1)  # type: ignore[arg-type]
    runner.submit(1, 1)
    assert pipeline.started.wait(10)
    started = time.monotonic()
    try:
        runner.close(drain_seconds=0.3)
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        pipeline.release.set()
