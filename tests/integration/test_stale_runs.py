"""Runs left `running` by a thread that could not write its end (the metadata DB was down) are settled without a
server restart: by this process at once (it knows it no longer executes them), by any process once their heartbeat
is stale. A run that ended meanwhile keeps its own end, and a live run is never settled."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.bootstrap import Container, build
from app.db.database import make_engine
from app.db.repository import SqlStore
from app.db.retrying import RetryingStore
from app.runner import INTERRUPTED, Runner
from core.access import SYSTEM
from core.domain import RunMetrics, RunOutcome, RunStatus
from core.errors import RunInProgress
from core.live_runs import LIVE_RUNS
from core.pipeline import RunPipeline, owner_is_dead, process_owner, why_dead
from core.ports import ActiveRun
from tests.helpers import spec
from tests.services import free_port

STALE = timedelta(seconds=30)


def _left_running(services: Container, tmp_path: Path, owner: str) -> tuple[int, int]:
    """What a run whose thread ended during a DB outage leaves: its row `running` and the slot held."""
    ing = services.ingestions.create(spec(str(tmp_path)), activate=True)
    run_id = services.store.create_run(ing.id, "manual")
    services.store.mark_run_started(run_id, owner)
    assert services.store.claim_run_slot(ing.id, run_id)
    return ing.id, run_id


def test_a_run_this_process_no_longer_executes_is_settled_and_the_ingestion_runs_again(
    services: Container, tmp_path: Path
) -> None:
    ingestion_id, run_id = _left_running(services, tmp_path, process_owner())

    assert services.runner.settle_stale_runs() == 1
    run = services.store.get_run(ingestion_id, run_id)
    assert run.status == RunStatus.FAILED.value and run.errors[0]["kind"] == "interrupted"
    assert run.message == "Interrupted: this server stopped executing it without writing its end (database down)."
    assert services.store.active_run(ingestion_id) is None
    services.runs.check_runnable(services.store.get_ingestion(ingestion_id))  # no 409


def test_a_live_run_of_this_process_is_left_alone(services: Container, tmp_path: Path) -> None:
    ingestion_id, run_id = _left_running(services, tmp_path, process_owner())
    LIVE_RUNS.add(run_id)
    try:
        assert services.runner.settle_stale_runs() == 0
        assert services.store.get_run(ingestion_id, run_id).status == RunStatus.RUNNING.value
        with pytest.raises(RunInProgress):
            services.runs.check_runnable(services.store.get_ingestion(ingestion_id))
    finally:
        LIVE_RUNS.discard(run_id)


def test_a_run_that_ended_meanwhile_keeps_its_end(services: Container, tmp_path: Path) -> None:
    ingestion_id, run_id = _left_running(services, tmp_path, process_owner())
    services.store.finish_run(run_id, RunStatus.SUCCESS, RunMetrics(), [], "Loaded.")
    assert not services.store.settle_interrupted_run(run_id, INTERRUPTED, "Interrupted.")
    assert services.store.get_run(ingestion_id, run_id).status == RunStatus.SUCCESS.value


def test_a_stale_heartbeat_is_dead_even_when_its_process_is_alive() -> None:
    now = datetime.now(UTC)
    alive_elsewhere = "other-host:4242"
    assert owner_is_dead(ActiveRun(1, alive_elsewhere, now - 2 * STALE), STALE, now)
    assert why_dead(ActiveRun(1, alive_elsewhere, now - 2 * STALE), STALE, now) == (
        "other-host:4242 sent no heartbeat for 60 s (the stale window is 30 s: paused, starved or cut off from the "
        "database), so it was taken over"
    )
    assert not owner_is_dead(ActiveRun(1, alive_elsewhere, now - STALE / 2), STALE, now)
    mine = process_owner()
    assert owner_is_dead(ActiveRun(99_999_999, mine, now), STALE, now)  # not executed here any more
    LIVE_RUNS.add(99_999_999)
    try:
        assert not owner_is_dead(ActiveRun(99_999_999, mine, now - 2 * STALE), STALE, now)  # executing here
    finally:
        LIVE_RUNS.discard(99_999_999)


def test_a_run_that_could_not_start_is_ended_by_the_sweep(services: Container, tmp_path: Path) -> None:
    """The pipeline's metadata DB is a real PostgreSQL address where nothing listens (refused at once)."""
    ing = services.ingestions.create(spec(str(tmp_path)), activate=True)
    run_id = services.store.create_run(ing.id, "scheduled")
    unreachable = SqlStore(make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/none"), None)  # type: ignore[arg-type]
    pipeline = RunPipeline(
        RetryingStore(unreachable, budget_seconds=0.3), services.engines.for_ingestion, services.pipeline.storage_for
    )
    runner = Runner(services.store, pipeline, [], workers=1)
    try:
        runner.submit(ing.id, run_id)
        deadline = time.monotonic() + 20
        while run_id not in runner.unstarted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert services.store.get_run(ing.id, run_id).status == RunStatus.QUEUED.value
        assert runner.settle_stale_runs() == 1
    finally:
        runner.close()
    run = services.store.get_run(ing.id, run_id)
    assert run.status == RunStatus.FAILED.value and run.errors[0]["kind"] == "metadata_unavailable"
    assert run_id not in runner.unstarted


def test_a_settled_run_is_retried_when_the_server_runs_a_scheduler(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A daily ingestion must not wait for its next fire to load what the interrupted run did not."""
    settings.retry_backoff_seconds = [3600.0]  # queued, not started, within the test
    services = build(settings)
    services.start()
    try:
        ingestion_id, run_id = _left_running(services, tmp_path, process_owner())
        services.runner.settle_stale_runs()  # what the scheduler's periodic sweep does
        assert services.store.get_run(ingestion_id, run_id).status == RunStatus.FAILED.value
        retries = [r for r in services.views.runs(SYSTEM, ingestion_id) if r.retry_of == run_id]
    finally:
        services.close()
    assert [(r.trigger, r.status, r.attempt) for r in retries] == [("retry", "queued", 2)]


def test_a_run_a_stopped_server_left_running_is_retried_at_start_up(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: after a kill -9 and a restart the run was closed with no error and no retry, so a daily
    ingestion's remaining files waited a day; the sweep, settling the same run, said `interrupted` and retried."""
    settings.retry_backoff_seconds = [3600.0]  # queued, not started, within the test
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    services = build(settings)
    try:
        ingestion_id, run_id = _left_running(services, tmp_path, dead)
        services.start()  # a server starting where a killed one left its run
        ended = services.store.get_run(ingestion_id, run_id)
        retries = [r for r in services.views.runs(SYSTEM, ingestion_id) if r.retry_of == run_id]
    finally:
        services.close()
    assert ended.status == RunStatus.FAILED.value and [e["kind"] for e in ended.errors] == ["interrupted"]
    assert ended.message == f"Interrupted: its process ({dead}) is gone (killed, crashed or restarted)."
    assert [(r.trigger, r.status, r.attempt) for r in retries] == [("retry", "queued", 2)]


def _dead_pid() -> int:
    """A process id no process has on this host now."""
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def test_one_retry_is_queued_per_ingestion_however_many_fires_fail(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: under an every-minute cron during an outage each failed fire queued a retry chain of
    its own. The second failure finds the first one's retry queued and waits for it (no alert yet, no new chain);
    a failing retry still continues its own chain."""
    settings.retry_backoff_seconds = [3600.0, 3600.0]  # queued, not started, within the test
    services = build(settings)
    services.start()
    try:
        ing = services.ingestions.create(spec(str(tmp_path)), activate=True)
        fired = [services.store.create_run(ing.id, "scheduled") for _ in range(3)]
        down = RunOutcome(0, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], transient=True)
        coming = [services.runner._plan_retry(replace(down, run_id=run_id)) for run_id in fired]
        queued = [r for r in services.views.runs(SYSTEM, ing.id) if r.trigger == "retry"]
        assert coming == [True, True, True]
        assert [(r.retry_of, r.attempt) for r in queued] == [(fired[0], 2)]
        assert services.runner._plan_retry(replace(down, run_id=queued[0].id))  # the retry failed in turn
        chain = sorted((r.retry_of, r.attempt) for r in services.views.runs(SYSTEM, ing.id) if r.trigger == "retry")
    finally:
        services.close()
    assert chain == [(fired[0], 2), (queued[0].id, 3)]


def test_a_run_taken_over_between_two_batches_stops_there(services: Container, tmp_path: Path) -> None:
    """The pipeline's side of `run_taken_over`: the other server's sweep is played by one `finish_run` (what it
    writes) just before this run's third batch is recorded; that batch and every later one are not written, the
    settled end stays, and the outcome says why."""
    from core.domain import FileStatus
    from tests.helpers import read_table, write_json_files

    write_json_files(tmp_path / "in", 10, 5)
    ing = services.ingestions.create(spec(str(tmp_path / "in"), limits={"max_files_per_batch": 2}), activate=True)
    store, batches = services.pipeline.store, []
    record_batch = store.add_pending_batch

    def taken_over_at_the_third(ingestion_id: int, run_id: int, seq: int, entries: list) -> None:  # type: ignore[type-arg]
        batches.append(seq)
        if len(batches) == 3:
            store.finish_run(run_id, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], "Interrupted.")
        record_batch(ingestion_id, run_id, seq, entries)

    store.add_pending_batch = taken_over_at_the_third  # type: ignore[method-assign]
    outcome = services.runs.run_now(ing.name)

    assert outcome.status == RunStatus.FAILED and outcome.errors[0].kind == "run_taken_over", outcome
    assert len(batches) == 3
    run = services.store.get_run(ing.id, outcome.run_id)
    assert (run.status, run.message) == (RunStatus.FAILED.value, "Interrupted.")
    loaded = [p for p, f in services.store.known_files(ing.id).items() if f.status == FileStatus.LOADED]
    assert len(loaded) == 4 and read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 20


def test_a_run_taken_over_while_it_writes_a_batch_does_not_commit_it(services: Container, tmp_path: Path) -> None:
    """Found with two real servers: a server paused (SIGSTOP) while it wrote batch 3, past the stale window; the other
    server settled the run, dropped batch 3 and recorded its retry's own batch 3 (other files: late files with
    old modification times sort first); woken, the paused server committed its batch 3, so the retry's write
    failed, found "batch 3" in the table and recorded its files loaded (their rows lost), and loaded the first
    server's files again (their rows twice). Now the run is checked right before the commit: taken over, it commits
    nothing and leaves the other server's batch alone."""
    from core.domain import FileStatus, LedgerEntry
    from tests.helpers import read_table, write_json_files

    write_json_files(tmp_path / "in", 10, 5)
    ing = services.ingestions.create(spec(str(tmp_path / "in"), limits={"max_files_per_batch": 2}), activate=True)
    store, batches = services.pipeline.store, []
    record_batch = store.add_pending_batch
    late = [
        LedgerEntry(
            str(tmp_path / "late" / f"{n}.json"), 10, datetime(2020, 1, 1, tzinfo=UTC), None, FileStatus.PENDING
        )
        for n in range(2)
    ]

    def taken_over_while_writing_the_third(ingestion_id: int, run_id: int, seq: int, entries: list) -> None:  # type: ignore[type-arg]
        record_batch(ingestion_id, run_id, seq, entries)
        batches.append(seq)
        if len(batches) == 3:  # the other server: settle the run, drop its batch, record its retry's batch 3
            store.finish_run(run_id, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], "Interrupted.")
            store.drop_pending_batch(ingestion_id, seq)
            retry = store.create_run(ingestion_id, "retry")
            record_batch(ingestion_id, retry, seq, late)

    store.add_pending_batch = taken_over_while_writing_the_third  # type: ignore[method-assign]
    outcome = services.runs.run_now(ing.name)

    assert outcome.status == RunStatus.FAILED and outcome.errors[0].kind == "run_taken_over", outcome
    assert read_table(services.embedded.table_uri(ing.spec.destination)).num_rows == 20  # batches 1 and 2
    assert services.embedded.committed_version(ing.spec.destination, ing.app_id) == 2
    pending = store.pending_batches(ing.id)
    assert sorted(e.path for e in pending[3]) == sorted(e.path for e in late)  # the retry's batch 3, untouched
    run = services.store.get_run(ing.id, outcome.run_id)
    assert (run.status, run.message) == (RunStatus.FAILED.value, "Interrupted.")


@pytest.mark.parametrize("paused_batch", [3, 1])
def test_a_run_taken_over_right_after_its_last_check_cannot_commit_over_the_fence(
    services: Container, tmp_path: Path, paused_batch: int
) -> None:
    """The window the check before a commit leaves: the run passes it, pauses, and is taken over. The other server's
    retry fences the paused batch in the table before planning its own batches; the paused writer's commit then
    fails on the fence (Delta's concurrent transaction) and every file lands once. Without the fence the paused
    commit of batch 3 came after the retry recorded its own batch 3 (two late files, older, so first): the retry's
    write failed, found batch 3 in the table and recorded the late files loaded (their rows lost), then loaded the
    paused batch's files again. Batch 1 is the table's first: before the table got a create commit of its own ahead
    of the batch's, there was no table to fence (the same loss)."""
    import os
    import threading

    from core.domain import FileStatus
    from tests.helpers import read_table, write_json_files

    landing = tmp_path / "in"
    write_json_files(landing, 10, 5)
    ing = services.ingestions.create(spec(str(landing), limits={"max_files_per_batch": 2}), activate=True)
    store, engine = services.pipeline.store, services.engines.for_ingestion(ing)
    check, record_batch, load_batch = store.check_run_live, store.add_pending_batch, engine.load_batch
    paused: list[int] = []  # the first server's run, once per check it passed
    retry_planned, paused_write_ended = threading.Event(), threading.Event()
    retry: dict[str, RunOutcome] = {}

    def the_other_server() -> None:
        store.settle_interrupted_run(paused[0], INTERRUPTED, "Interrupted.")
        store.release_run_slot(ing.id, paused[0])
        for path in write_json_files(landing, 2, 5, start_id=100, prefix="late"):
            os.utime(path, (946684800, 946684800))  # 2000-01-01: sorts before the files left
        retry["outcome"] = services.runs.run_now(ing.name)

    def checked_then_paused(run_id: int) -> None:
        check(run_id)
        if paused and run_id != paused[0]:
            return
        paused.append(run_id)
        if len(paused) == paused_batch:  # the batch passed its check: taken over before its commit
            threading.Thread(target=the_other_server, name="other-server").start()
            assert retry_planned.wait(60)

    def recorded(ingestion_id: int, run_id: int, seq: int, entries: list) -> None:  # type: ignore[type-arg]
        record_batch(ingestion_id, run_id, seq, entries)
        if paused and run_id != paused[0] and not retry_planned.is_set():
            retry_planned.set()  # the paused server wakes and commits while the retry writes
            assert paused_write_ended.wait(60)

    def loaded(request):  # type: ignore[no-untyped-def]
        try:
            return load_batch(request)
        finally:
            if paused and request.run_id == paused[0] and len(paused) == paused_batch:
                paused_write_ended.set()

    store.check_run_live = checked_then_paused  # type: ignore[method-assign]
    store.add_pending_batch = recorded  # type: ignore[method-assign]
    engine.load_batch = loaded  # type: ignore[method-assign]
    outcome = services.runs.run_now(ing.name)
    for thread in threading.enumerate():
        if thread.name == "other-server":
            thread.join(120)

    assert outcome.status == RunStatus.FAILED and outcome.errors[0].kind == "run_taken_over", outcome
    assert retry["outcome"].status == RunStatus.SUCCESS, retry["outcome"]
    message = f"re-queued 2 files of an interrupted run's uncommitted batch {paused_batch}"
    assert message in retry["outcome"].message
    table = read_table(engine.table_uri(ing.spec.destination))
    assert sorted(table.column("id").to_pylist()) == [*range(50), *range(100, 110)]  # each file once
    assert engine.is_fence(ing.spec.destination, ing.app_id, paused_batch)
    files = services.store.known_files(ing.id)
    assert len(files) == 12 and {f.status for f in files.values()} == {FileStatus.LOADED}


@pytest.mark.parametrize("other_commits", [0, 150])
def test_a_batch_fenced_by_a_server_that_died_before_dropping_it_is_loaded_not_recovered(
    services: Container, tmp_path: Path, other_commits: int
) -> None:
    """The fence is committed before the batch leaves the ledger: a server that died in between left the batch
    pending and the table at its number. The next run must tell the fence from the batch, or it records the files
    loaded from an empty commit — also after other writers' commits (a helper found a fence 120 commits back
    taken for the batch when only the last 100 were read)."""
    from deltalake import DeltaTable

    from core.domain import FileStatus, LedgerEntry
    from tests.helpers import read_table, write_json_files

    landing = tmp_path / "in"
    write_json_files(landing, 2, 5)
    ing = services.ingestions.create(spec(str(landing)), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    engine, destination = services.engines.for_ingestion(ing), ing.spec.destination
    late = write_json_files(landing, 2, 5, start_id=10, prefix="late")
    dead = services.store.create_run(ing.id, "manual")
    entries = [
        LedgerEntry(str(p), p.stat().st_size, datetime.fromtimestamp(p.stat().st_mtime, UTC), None, FileStatus.PENDING)
        for p in late
    ]
    services.store.add_pending_batch(ing.id, dead, 2, entries)
    services.store.finish_run(dead, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], "Interrupted.")
    engine.fence_batch(destination, ing.app_id, 2)  # and the server died here
    for _ in range(other_commits):  # another writer of the table, committing nothing but its own marker
        table = DeltaTable(engine.table_uri(destination))
        table.create_write_transaction([], mode="append", schema=table.schema())

    outcome = services.runs.run_now(ing.name)

    assert outcome.status == RunStatus.SUCCESS, outcome
    assert "re-queued 2 files of an interrupted run's uncommitted batch 2" in outcome.message
    assert sorted(read_table(engine.table_uri(destination)).column("id").to_pylist()) == list(range(20))
    assert engine.committed_version(destination, ing.app_id) == 3
    assert not engine.is_fence(destination, ing.app_id, 3) and not engine.is_fence(destination, ing.app_id, 1)
