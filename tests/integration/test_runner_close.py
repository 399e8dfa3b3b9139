"""Closing the services (a server's shutdown, a test's teardown) waits for the runs in flight, boundedly.

Before, `Runner.close` let a running run go on after the process had let go of its metadata database: in the test
suite such a run (started by the API fuzzer) later failed to reach its removed SQLite file, logged errors for 50 s
into whichever test ran next, and re-created the file. Run on SQLite and PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

import subprocess
import sys
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


def test_closing_ends_the_run_in_flight_at_a_batch_boundary(settings: Any, tmp_path: Path) -> None:
    """A shutdown lets the batch being written commit and be recorded, then the run ends (`cancelled`, error
    `shutting_down`, retried) instead of going on until the drain runs out and the process cuts a write part-way;
    the next run loads the rest, each file once. Before, a shutdown waited for the whole run (ended or not within
    the drain)."""
    import pyarrow.compute as pc

    from app.bootstrap import build
    from tests.helpers import read_table

    folder = tmp_path / "landing"
    write_json_files(folder, 1500, 20)
    services = build(settings)
    body = spec(str(folder), table="drained", name="drained", limits={"max_files_per_batch": 100})
    ingestion = services.ingestions.create(body, activate=True)
    run_id = services.runs.trigger(ingestion.id, "manual")
    _wait_for(lambda: services.store.get_run(ingestion.id, run_id).status == RunStatus.RUNNING.value)
    services.close()
    run = services.store.get_run(ingestion.id, run_id)  # a disposed engine opens a new connection
    assert run.status == RunStatus.CANCELLED.value and run.errors[0]["kind"] == "shutting_down", run.message
    loaded = run.metrics["files_processed"]
    assert loaded % 100 == 0 and loaded < 1500, loaded
    assert not services.store.pending_batches(ingestion.id)  # ended between batches: nothing left to settle

    again = build(settings)
    try:
        rest = again.runs.run_now(ingestion.name)
        table = read_table(again.embedded.table_uri(ingestion.spec.destination))
    finally:
        again.close()
    assert rest.status == RunStatus.SUCCESS and rest.metrics.files_processed == 1500 - loaded, rest.message
    assert table.num_rows == pc.count_distinct(table.column("id")).as_py() == 1500 * 20


class _BlockedPipeline:
    """Stands in for RunPipeline (a stub: no real run can be made to hang at a chosen point without a fault)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def stop_between_batches(self) -> None:
        """This stand-in never reaches a batch boundary: closing must stop waiting anyway."""

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


def test_autoloader_run_ends_at_a_batch_boundary_on_sigterm(services: Any, settings: Any, tmp_path: Path) -> None:
    """`autoloader run` killed by its scheduler (SIGTERM before SIGKILL) ends after the batch being written: that
    batch committed and recorded, nothing pending, the run `cancelled` (`shutting_down`, exit 1), and the next run
    loads the rest once. Before, SIGTERM killed the process part-way through a write."""
    import signal

    import pyarrow.compute as pc

    from tests.helpers import read_table

    folder = tmp_path / "landing"
    write_json_files(folder, 3000, 20)
    body = spec(str(folder), table="killed", name="killed", limits={"max_files_per_batch": 100})
    ingestion = services.ingestions.create(body, activate=True)
    cli = _start_cli_run(settings, ingestion.name)
    try:
        _wait_for(lambda: services.store.max_batch_seq(ingestion.id) >= 1 or cli.poll() is not None)
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill()
    assert cli.returncode == 1, (out, err)
    assert b"stopping after the batch being written" in err
    assert b"cancelled \xe2\x80\x94 The process received SIGTERM: the run ended before batch " in out, out
    assert not services.store.pending_batches(ingestion.id)
    outcome = services.runs.run_now(ingestion.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    loaded_before = 3000 - outcome.metrics.files_processed
    assert 0 < loaded_before < 3000 and loaded_before % 100 == 0, loaded_before
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert table.num_rows == pc.count_distinct(table.column("id")).as_py() == 3000 * 20


def test_a_second_sigterm_stops_autoloader_run_at_once_even_mid_batch(
    services: Any, settings: Any, tmp_path: Path
) -> None:
    """The run executes off the main thread, so the first SIGTERM is taken at once even while a batch is being written
    (Python runs handlers in the main thread, between its own steps: a helper's trial saw both signals taken only
    after a 13 s batch, the process ending `success`); the second then ends the process (the next run settles the
    batch, each file once)."""
    import signal

    import pyarrow.compute as pc

    from tests.helpers import read_table

    folder = tmp_path / "landing"
    folder.mkdir()
    for part in range(30):  # 3 M rows in one batch, in files large enough to be read while the batch is written
        first = part * 100_000
        ids = range(first, first + 100_000)
        rows = "".join(f'{{"id": {n}, "name": "user-{n}", "amount": {n * 0.5}}}\n' for n in ids)
        (folder / f"part-{part:04d}.json").write_text(rows)
    body = spec(str(folder), table="killed_twice", name="killed_twice", limits={"max_files_per_batch": 30})
    ingestion = services.ingestions.create(body, activate=True)
    cli = _start_cli_run(settings, ingestion.name)
    try:
        _wait_for(lambda: services.store.pending_batches(ingestion.id) or cli.poll() is not None)
        assert cli.poll() is None, "the run ended before its batch was seen being written: the test needs more rows"
        cli.send_signal(signal.SIGTERM)
        assert cli.stderr is not None
        said = cli.stderr.readline()  # the handler's line: it ran (at once, off the batch), so a second signal kills
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill()
    assert cli.returncode == -signal.SIGTERM, (cli.returncode, said, out, err)  # ended by the second signal, mid-batch
    assert b"stopping after the batch being written" in said
    # Killed mid-write: the batch never reached the table (with the handler delayed to the batch's end, it had).
    assert services.embedded.committed_version(ingestion.spec.destination, ingestion.app_id) is None
    outcome = services.runs.run_now(ingestion.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    table = read_table(services.embedded.table_uri(ingestion.spec.destination))
    assert table.num_rows == pc.count_distinct(table.column("id")).as_py() == 3_000_000


def _start_cli_run(settings: Any, name: str) -> subprocess.Popen[bytes]:
    """`autoloader run NAME` as a child process on the test's data dir and database, its output piped."""
    from tests.conftest import clean_env

    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
    }
    command = [sys.executable, "-m", "app.cli", "run", name]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
