"""The run pipeline's rules without a SQL database: `RunPipeline` over the in-memory metadata store, a local
landing folder and the embedded engine writing Delta tables under tmp_path.

Crashes are simulated in-process: the pipeline's crash points raise `Killed`, which, like SIGKILL, skips every
`except Exception` handler; the subprocess tests in tests/integration/test_crash_recovery.py kill for real.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st

import core.pipeline
from core.config import FormatConfig
from core.domain import FileStatus, Ingestion, KnownFile, KnownFiles, RunOutcome, RunStatus
from core.egress import EgressAllow
from core.engines.embedded import EmbeddedEngine
from core.errors import BadFileError, SourceNotFound
from core.guards import Guards, LocalRoots
from core.lifecycle import TrackedStorage, Window, change_message, differs
from core.pipeline import RunPipeline
from core.selection import bad_record_offenders, file_action, select_new_files, should_load
from core.storage import open_storage
from core.storage.base import FileInfo
from tests.fakes import MemoryStore
from tests.helpers import read_table, spec, write_json_files

RECORDS = 10  # per file
STALE = timedelta(seconds=30)


class Killed(BaseException):
    """The process died at a crash point: no handler of the pipeline runs, no run record is closed."""


@dataclass
class Harness:
    store: MemoryStore
    engine: EmbeddedEngine
    pipeline: RunPipeline
    ingestion: Ingestion
    landing: Path

    @property
    def id(self) -> int:
        return self.ingestion.id

    def new_run(self) -> int:
        return self.store.create_run(self.id, "manual")

    def run(self) -> RunOutcome:
        return self.pipeline.execute(self.id, self.new_run())

    def table(self) -> Any:
        return read_table(self.engine.table_uri(self.ingestion.spec.destination))

    def committed_batch(self) -> int | None:
        return self.engine.committed_version(self.ingestion.spec.destination, self.ingestion.app_id)

    def assert_exactly_once(self, files: int) -> None:
        table = self.table()
        assert table.num_rows == files * RECORDS
        assert pc.count_distinct(table.column("id")).as_py() == files * RECORDS
        ledger = self.store.ledger(self.id)
        assert len(ledger) == files
        assert {(r.status, r.records) for r in ledger.values()} == {(FileStatus.LOADED.value, RECORDS)}
        assert self.store.pending_batches(self.id) == {}
        assert self.store.active_run(self.id) is None


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    """Two files per batch, so a handful of files makes several batches."""
    landing = tmp_path / "landing"
    landing.mkdir()
    store = MemoryStore()
    ingestion = store.add_ingestion(spec(str(landing), limits={"max_files_per_batch": 2}))
    engine = EmbeddedEngine(str(tmp_path / "warehouse"))
    guards = Guards(LocalRoots([str(landing)]), EgressAllow())
    storage_for = functools.partial(open_storage, guards=guards)
    pipeline = RunPipeline(store, lambda _: engine, storage_for, heartbeat_seconds=0.05, stale_after=STALE)
    return Harness(store, engine, pipeline, ingestion, landing)


@pytest.fixture
def on_crash_point(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], None]], None]:
    """Install a hook called at each of the pipeline's named crash points."""

    def install(hook: Callable[[str], None]) -> None:
        monkeypatch.setattr(core.pipeline, "crash_point", hook)

    return install


def kill_at(target: str) -> Callable[[str], None]:
    """`<point>[:<n>]`, as AUTOLOADER_CRASH_AT: die the n-th time the run reaches the point."""
    point, _, nth = target.partition(":")
    hits: Counter[str] = Counter()

    def hook(name: str) -> None:
        if name == point:
            hits[name] += 1
            if hits[name] == int(nth or 1):
                raise Killed(target)

    return hook


@pytest.fixture(scope="module")
def dead_owner() -> str:
    """The owner string of a process of this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def leave_behind(store: MemoryStore, ingestion_id: int, run_id: int, owner: str) -> None:
    """What a killed process leaves: its run `running` and holding the slot (an in-process `Killed` still
    ran `execute`'s `finally`, which released it)."""
    store.mark_run_started(run_id, owner)
    assert store.claim_run_slot(ingestion_id, run_id)


# --- incremental loading ---------------------------------------------------------------------------------
def test_incremental_runs_load_each_file_once(h: Harness) -> None:
    first_files = write_json_files(h.landing, 3, RECORDS)
    first = h.run()
    assert first.status == RunStatus.SUCCESS, first
    assert (first.metrics.files_processed, first.metrics.records_ingested) == (3, 3 * RECORDS)
    assert first.metrics.batches_committed == 2
    assert {p: r.batch_seq for p, r in h.store.ledger(h.id).items()} == {
        str(first_files[0]): 1,
        str(first_files[1]): 1,
        str(first_files[2]): 2,
    }

    later_files = write_json_files(h.landing, 2, RECORDS, start_id=3 * RECORDS, prefix="later")
    second = h.run()
    assert second.status == RunStatus.SUCCESS, second
    assert (second.metrics.files_processed, second.metrics.records_ingested) == (2, 2 * RECORDS)
    h.assert_exactly_once(5)
    table = h.table()
    assert set(table.column("_source_file").to_pylist()) == {str(p) for p in first_files + later_files}
    assert set(table.column("_run_id").to_pylist()) == {first.run_id, second.run_id}
    assert {r.batch_seq for p, r in h.store.ledger(h.id).items() if p in map(str, later_files)} == {3}
    assert h.store.max_batch_seq(h.id) == h.committed_batch() == 3

    record = h.store.get_run(second.run_id)
    assert (record.status, record.files_done, record.files_total) == (RunStatus.SUCCESS, 2, 2)
    assert record.metrics["records_ingested"] == 2 * RECORDS and record.finished_at is not None


def test_the_run_message_counts_one_file_and_one_record_in_the_singular(h: Harness) -> None:
    write_json_files(h.landing, 1, 1)
    assert h.run().message == "Loaded 1 record from 1 file."
    write_json_files(h.landing, 2, 2, start_id=1, prefix="later")
    assert h.run().message == "Loaded 4 records from 2 files."


def test_a_renamed_loaded_file_is_loaded_again_and_the_run_says_so(h: Harness) -> None:
    """Found by an outsider: `mv a.csv b.csv` loaded the rows a second time without a word. A new path with a
    loaded file's very version (size and etag: `mv` keeps the modification time) is still loaded, as Auto Loader
    and Snowpipe do (a path is a new file), and the run names both paths."""
    first, second = write_json_files(h.landing, 2, RECORDS)
    assert h.run().status == RunStatus.SUCCESS
    renamed = first.with_name("renamed.json")
    first.rename(renamed)
    write_json_files(h.landing, 1, RECORDS, start_id=10 * RECORDS, prefix="fresh")
    outcome = h.run()
    assert outcome.metrics.files_processed == 2, outcome
    assert f"{renamed} has the size and version of {first}, loaded before" in outcome.message, outcome.message
    assert outcome.message.count("has the size and version of") == 1 and str(second) not in outcome.message


def test_a_change_of_the_etag_alone_is_said_to_be_a_rewrite_or_a_touch() -> None:
    """An outsider read "size 15241 → 15241 bytes" after a `touch` as a bug: the message says what the store saw."""
    now = datetime.now(UTC)
    touched = change_message("/in/a.csv", (15241, "1-15241"), FileInfo("/in/a.csv", 15241, now, "2-15241"))
    assert "rewritten or touched after it was loaded (same size, 15,241 bytes; etag 1-15241 → 2-15241)" in touched
    grown = change_message("/in/a.csv", (10, "1-10"), FileInfo("/in/a.csv", 12, now, "2-12"))
    assert "changed after it was loaded (size 10 → 12 bytes, etag 1-10 → 2-12)" in grown


def test_a_run_without_new_files_is_a_noop(h: Harness) -> None:
    write_json_files(h.landing, 2, RECORDS)
    assert h.run().status == RunStatus.SUCCESS
    uri = h.engine.table_uri(h.ingestion.spec.destination)
    version, ledger = DeltaTable(uri).version(), h.store.ledger(h.id)

    again = h.run()
    assert (again.status, again.message) == (RunStatus.SUCCESS, "No new files.")
    assert (again.metrics.files_processed, again.metrics.batches_committed) == (0, 0)
    assert DeltaTable(uri).version() == version  # no commit
    assert h.store.ledger(h.id) == ledger
    h.assert_exactly_once(2)


# --- exactly once across a crash ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("point", "batch", "committed", "note"),
    [
        ("after_pending:1", 1, False, "re-queued 2 files of an interrupted run's uncommitted batch 1"),
        ("after_pending:3", 3, False, "re-queued 1 file of an interrupted run's uncommitted batch 3"),
        ("after_commit:1", 1, True, "recovered batch 1 (2 files) committed by an interrupted run"),
        ("after_commit:2", 2, True, "recovered batch 2 (2 files) committed by an interrupted run"),
        ("after_ledger:2", 2, True, None),
    ],
    ids=["after_pending:1", "after_pending:3", "after_commit:1", "after_commit:2", "after_ledger:2"],
)
def test_a_crashed_run_is_recovered_exactly_once(
    h: Harness,
    on_crash_point: Callable[[Callable[[str], None]], None],
    dead_owner: str,
    point: str,
    batch: int,
    committed: bool,
    note: str | None,
) -> None:
    """Five files in three batches; the run dies at `point` in `batch`. The next run finds the batch pending
    (unless the ledger was already updated) and marks it loaded if its table commit happened, else loads it again."""
    write_json_files(h.landing, 5, RECORDS)
    on_crash_point(kill_at(point))
    crashed = h.new_run()
    with pytest.raises(Killed):
        h.pipeline.execute(h.id, crashed)
    assert h.committed_batch() == (batch if committed else (batch - 1 or None))
    assert sorted(h.store.pending_batches(h.id)) == ([] if note is None else [batch])
    leave_behind(h.store, h.id, crashed, dead_owner)
    on_crash_point(lambda _: None)
    settled = sum(1 for r in h.store.ledger(h.id).values() if r.status == FileStatus.LOADED)

    outcome = h.run()
    assert outcome.status == RunStatus.SUCCESS, outcome
    if note is not None:
        assert note in outcome.message
    # The run that settles a recovered batch counts its files (an outsider found them counted by no run).
    assert (outcome.metrics.files_processed, outcome.metrics.records_ingested) == (5 - settled, (5 - settled) * RECORDS)
    h.assert_exactly_once(5)
    interrupted = h.store.get_run(crashed)
    assert interrupted.status == RunStatus.FAILED
    assert interrupted.message == f"Interrupted: its process ({dead_owner}) is gone (killed, crashed or restarted)."
    assert interrupted.errors[0]["kind"] == "interrupted" and interrupted.finished_at is not None
    # A batch the table lacks is fenced under its number (an empty commit), unless there is no table yet to commit
    # to: the files then go in the batch above it.
    fenced = not committed and batch > 1
    assert h.engine.is_fence(h.ingestion.spec.destination, h.ingestion.app_id, batch) is fenced
    assert h.store.max_batch_seq(h.id) == h.committed_batch() == 3 + fenced


# --- one run per ingestion --------------------------------------------------------------------------------
def test_a_second_concurrent_run_cannot_claim_the_slot(
    h: Harness, on_crash_point: Callable[[Callable[[str], None]], None]
) -> None:
    write_json_files(h.landing, 3, RECORDS)
    inside, proceed = threading.Event(), threading.Event()

    def pause_in_first_batch(name: str) -> None:
        if name == "after_pending" and not inside.is_set():
            inside.set()
            proceed.wait(10)

    on_crash_point(pause_in_first_batch)
    first = h.new_run()
    outcomes: list[RunOutcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(h.pipeline.execute(h.id, first)))
    worker.start()
    try:
        assert inside.wait(10)
        second = h.run()
        assert second.status == RunStatus.SKIPPED
        assert second.message == f"Skipped: run {first} of this ingestion is still in progress."
        skipped = h.store.get_run(second.run_id)
        assert (skipped.status, skipped.files_done) == (RunStatus.SKIPPED, 0) and skipped.finished_at is not None
        assert h.store.active_run(h.id).run_id == first  # type: ignore[union-attr]

        beat = h.store.get_run(first).heartbeat_at
        deadline = time.monotonic() + 5
        while h.store.get_run(first).heartbeat_at == beat and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.store.get_run(first).heartbeat_at != beat  # the waiting run is alive: its heartbeat moves
    finally:
        proceed.set()
        worker.join(30)
    assert [o.status for o in outcomes] == [RunStatus.SUCCESS]
    h.assert_exactly_once(3)


@pytest.mark.parametrize(
    ("owner", "heartbeat_age", "taken_over"),
    [
        ("dead", timedelta(0), True),  # same host, process gone: at once
        ("other-host:4242", STALE * 2, True),  # another host, heartbeat stale
        (None, None, True),  # held by a run that never started: no owner, no heartbeat
        ("other-host:4242", timedelta(0), False),  # another host, still beating
    ],
    ids=["same-host-process-gone", "other-host-stale", "never-started", "other-host-alive"],
)
def test_the_slot_of_a_dead_owner_is_taken_over(
    h: Harness,
    dead_owner: str,
    owner: str | None,
    heartbeat_age: timedelta | None,
    taken_over: bool,
) -> None:
    write_json_files(h.landing, 2, RECORDS)
    left = h.new_run()
    if owner is not None:
        h.store.mark_run_started(left, dead_owner if owner == "dead" else owner)
    if heartbeat_age is not None:
        h.store.set_heartbeat(left, datetime.now(UTC) - heartbeat_age)
    assert h.store.claim_run_slot(h.id, left)

    outcome = h.run()
    previous = h.store.get_run(left)
    if taken_over:
        assert outcome.status == RunStatus.SUCCESS, outcome
        assert (previous.status, previous.errors[0]["kind"]) == (RunStatus.FAILED, "interrupted")
        h.assert_exactly_once(2)
    else:
        assert outcome.status == RunStatus.SKIPPED, outcome
        assert previous.status == RunStatus.RUNNING and previous.finished_at is None
        assert h.store.active_run(h.id).run_id == left  # type: ignore[union-attr]
        assert h.store.known_files(h.id) == {} and h.committed_batch() is None


# --- file lifecycle: the pure rules (core/lifecycle.py, core/pipeline.py) ---------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _info(size: int = 10, etag: str | None = "e1", modified: datetime = T0) -> FileInfo:
    return FileInfo("/in/a.json", size, modified, etag)


def _seen(status: FileStatus, size: int = 10, etag: str | None = "e1", **extra: Any) -> KnownFile:
    return KnownFile(etag, status, size, T0, **extra)


@pytest.mark.parametrize(
    ("seen", "info", "reload_changed", "action"),
    [
        (None, _info(), False, "load"),
        (_seen(FileStatus.FAILED), _info(), False, "load"),
        (_seen(FileStatus.PENDING), _info(size=20, etag="e2"), True, "skip"),
        (_seen(FileStatus.SKIPPED), _info(size=20, etag="e2"), True, "skip"),
        (_seen(FileStatus.LOADED), _info(), True, "skip"),
        (_seen(FileStatus.LOADED), _info(size=20, etag="e2"), False, "changed"),
        (_seen(FileStatus.LOADED), _info(size=20, etag="e2"), True, "reload"),
        (_seen(FileStatus.LOADED, etag=None), _info(etag=None, modified=T0 + timedelta(seconds=1)), False, "changed"),
        (_seen(FileStatus.LOADED, etag=None), _info(etag=None), False, "skip"),
        (_seen(FileStatus.CHANGED, 20, "e2", previous_size=10, previous_etag="e1"), _info(20, "e2"), False, "skip"),
        (_seen(FileStatus.CHANGED, 20, "e2", previous_size=10, previous_etag="e1"), _info(30, "e3"), False, "changed"),
        (_seen(FileStatus.CHANGED, 20, "e2", previous_size=10, previous_etag="e1"), _info(20, "e2"), True, "reload"),
        (_seen(FileStatus.QUARANTINED), _info(), True, "skip"),
        (_seen(FileStatus.QUARANTINED), _info(size=20, etag="e2"), False, "load"),
        (_seen(FileStatus.QUARANTINED, previous_size=5), _info(size=20, etag="e2"), True, "reload"),
        (_seen(FileStatus.HELD), _info(size=20, etag="e2"), False, "skip"),
        (_seen(FileStatus.HELD), _info(size=20, etag="e2"), True, "load"),
    ],
)
def test_file_action(seen: KnownFile | None, info: FileInfo, reload_changed: bool, action: str) -> None:
    assert file_action(seen, info, reload_changed) == action
    assert should_load(seen, info, reload_changed) == (action in ("load", "reload"))


_sizes = st.one_of(st.none(), st.integers(0, 3))
_etags = st.one_of(st.none(), st.sampled_from(["e1", "e2"]))


@settings(max_examples=400)
@given(
    status=st.sampled_from(list(FileStatus)),
    size=_sizes,
    etag=_etags,
    previous_size=_sizes,
    listed_size=st.integers(0, 3),
    listed_etag=_etags,
    later=st.booleans(),
)
def test_unchanged_rows_are_those_file_action_skips(
    status: FileStatus,
    size: int | None,
    etag: str | None,
    previous_size: int | None,
    listed_size: int,
    listed_etag: str | None,
    later: bool,
) -> None:
    """`KnownFiles.unchanged`, the no-op run's shortcut over the raw row, answers yes only where the selection's
    rule skips the file whatever the settings; a file it does not know is never unchanged."""
    seen = KnownFile(etag, status, size, T0, previous_size=previous_size)
    info = FileInfo("/in/a.json", listed_size, T0 + timedelta(seconds=later), listed_etag)
    known = KnownFiles.of({"/in/a.json": seen})
    if known.unchanged(info.path, info.size, info.etag):
        assert file_action(seen, info, False) == file_action(seen, info, True) == "skip"
    in_place = status in (FileStatus.LOADED, FileStatus.QUARANTINED)
    assert known.unchanged(info.path, info.size, info.etag) == (
        in_place and etag is not None and (size, etag) == (listed_size, listed_etag)
    )
    assert not known.unchanged("/in/b.json", info.size, info.etag)


def test_known_files_make_rows_known_files_when_asked() -> None:
    """A row as SQLite hands it back (the time as naive ISO text) and as PostgreSQL's driver does (an aware
    datetime) give the same `KnownFile`; lookups by `in` and `get` do not build one for a path not there."""
    as_text = ("/in/a.json", "e1", "loaded", 10, "2026-01-01 00:00:00.000250", 5, None, None, "h")
    as_datetime = ("/in/b.json", "e1", "changed", 10, T0 + timedelta(microseconds=250), 5, 4, "e0", None)
    known = KnownFiles([as_text, as_datetime])
    assert known["/in/a.json"] == KnownFile("e1", FileStatus.LOADED)
    assert known["/in/a.json"].modified == known["/in/b.json"].modified == T0 + timedelta(microseconds=250)
    assert (known["/in/a.json"].records, known["/in/a.json"].content_hash) == (5, "h")
    assert (known["/in/b.json"].previous_size, known["/in/b.json"].previous_etag) == (4, "e0")
    assert "/in/a.json" in known and "/in/c.json" not in known and known.get("/in/c.json") is None
    assert sorted(known) == ["/in/a.json", "/in/b.json"] and len(known) == 2
    assert known == {"/in/a.json": known["/in/a.json"], "/in/b.json": known["/in/b.json"]}
    with pytest.raises(KeyError):
        known["/in/c.json"]


def test_young_files_wait_and_changed_files_are_reported_not_loaded() -> None:
    now = T0 + timedelta(minutes=10)
    listing = [
        FileInfo("/in/old.json", 10, now - timedelta(seconds=120), "o"),
        FileInfo("/in/young.json", 10, now - timedelta(seconds=5), "y"),
        FileInfo("/in/grown.json", 20, now - timedelta(seconds=120), "g2"),
        FileInfo("/in/grown-young.json", 20, now - timedelta(seconds=1), "gy2"),
    ]
    known = KnownFiles.of(
        {
            "/in/grown.json": _seen(FileStatus.LOADED, 10, "g1"),
            "/in/grown-young.json": _seen(FileStatus.LOADED, 10, "gy1"),
        }
    )
    selection = select_new_files(listing, known, spec("/in", source={"min_file_age_seconds": 60}), now)
    assert [f.path for f in selection.load] == ["/in/old.json"]
    assert [info.path for info, _ in selection.changed] == ["/in/grown.json"]
    assert selection.waiting == 2 and selection.reload == {}
    reloading = spec("/in", source={"reload_changed_files": True})
    selection = select_new_files(listing, known, reloading, now)
    assert sorted(selection.reload) == ["/in/grown-young.json", "/in/grown.json"] and selection.waiting == 0


def test_incremental_listing_may_start_only_before_the_first_file_still_too_young() -> None:
    """`listed_through` (where the next incremental listing may start) stops before the first waiting file, so the
    file is listed again once old enough; with none waiting it is the greatest listed path."""
    now = T0 + timedelta(hours=1)
    old, young = now - timedelta(hours=1), now - timedelta(seconds=5)
    listing = [FileInfo("/in/c.json", 1, old), FileInfo("/in/a.json", 1, old), FileInfo("/in/b.json", 1, young)]
    aged = spec("/in", source={"min_file_age_seconds": 60})
    assert select_new_files(listing, KnownFiles(), aged, now).listed_through == "/in/a.json"
    assert select_new_files(listing, KnownFiles(), spec("/in"), now).listed_through == "/in/c.json"
    assert select_new_files([listing[2]], KnownFiles(), aged, now).listed_through is None
    assert select_new_files([], KnownFiles(), spec("/in"), now).listed_through is None


def test_bad_record_offenders() -> None:
    assert bad_record_offenders({"a": (5, 10), "b": (0, 10), "c": (1, 100)}, 0.1) == ["a"]
    assert bad_record_offenders({"a": (1, 9), "b": (1, 9), "c": (0, 100)}, 0.1) == ["a", "b"]  # spread thin
    assert bad_record_offenders({"a": (0, 10)}, 0.1) == []


def test_change_detection_ignores_a_timestamp_round_trip() -> None:
    seen = KnownFile(None, FileStatus.LOADED, 10, T0.replace(tzinfo=None))
    assert not differs(seen, FileInfo("/in/a.json", 10, T0 + timedelta(microseconds=400)))
    assert differs(seen, FileInfo("/in/a.json", 11, T0))


def test_a_window_reads_header_then_the_tail_up_to_the_listed_size(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_bytes(b"id,name\n1,a\n2,b\n3,c\n4,d-still-being-writ")
    storage = TrackedStorage(open_storage(spec(str(landing)).source, Guards(LocalRoots([str(landing)]), EgressAllow())))
    path = str(landing / "a.csv")
    storage.windows[path] = Window(16, 20, b"id,name\n")
    with storage.open(path) as stream:
        assert stream.read() == b"id,name\n3,c\n"
    (landing / "a.csv").unlink()
    with pytest.raises(BadFileError):
        storage.open(path)
    assert isinstance(storage.open_failures[path], SourceNotFound)


# --- reload_changed_files: a crash between the delete and the batch commit --------------------------------------
@pytest.fixture
def rh(tmp_path: Path) -> Harness:
    landing = tmp_path / "landing"
    landing.mkdir()
    store = MemoryStore()
    ingestion = store.add_ingestion(spec(str(landing), table="reloads", source={"reload_changed_files": True}))
    engine = EmbeddedEngine(str(tmp_path / "warehouse"))
    guards = Guards(LocalRoots([str(landing)]), EgressAllow())
    pipeline = RunPipeline(
        store, lambda _: engine, functools.partial(open_storage, guards=guards), heartbeat_seconds=0.05
    )
    return Harness(store, engine, pipeline, ingestion, landing)


def _json_lines(ids: range) -> str:
    return "".join(f'{{"id": {i}}}\n' for i in ids)


@pytest.mark.parametrize("change", ["rewrite", "append"])
def test_a_reload_killed_before_its_commit_recovers_without_duplicates(
    rh: Harness, monkeypatch: pytest.MonkeyPatch, dead_owner: str, change: str
) -> None:
    """The process dies inside the batch write (after the rewrite's delete committed, before the append did):
    the next run reloads the file, and every id is in the table once."""
    path = rh.landing / "a.json"
    path.write_text(_json_lines(range(10)))
    (rh.landing / "b.json").write_text(_json_lines(range(100, 105)))
    assert rh.run().status == RunStatus.SUCCESS
    if change == "rewrite":
        path.write_text(_json_lines(range(20, 25)))
        expected = [*range(20, 25), *range(100, 105)]
    else:
        path.write_text(_json_lines(range(15)))
        expected = [*range(15), *range(100, 105)]

    def die(_: Any) -> Any:
        raise Killed("inside the batch write")

    monkeypatch.setattr(rh.engine, "load_batch", die)
    crashed = rh.new_run()
    with pytest.raises(Killed):
        rh.pipeline.execute(rh.id, crashed)
    monkeypatch.undo()
    ids_after_crash = Counter(rh.table().column("id").to_pylist())
    assert max(ids_after_crash.values()) == 1
    if change == "rewrite":  # not atomic: the delete is committed, the new rows are not
        assert not set(range(10)) & set(ids_after_crash)
    leave_behind(rh.store, rh.id, crashed, dead_owner)

    outcome = rh.run()
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert sorted(rh.table().column("id").to_pylist()) == expected
    row = rh.store.ledger(rh.id)[str(path)]
    assert (row.status, row.records, row.previous_size) == ("loaded", 5 if change == "rewrite" else 15, None)


def test_reload_is_refused_on_an_engine_that_cannot_delete_a_file_rows(rh: Harness) -> None:
    class NoDelete(EmbeddedEngine):
        delete_rows_from = None  # type: ignore[assignment]

    rh.pipeline.engine_for = lambda _: NoDelete(rh.engine.warehouse)
    write_json_files(rh.landing, 1, RECORDS)
    outcome = rh.run()
    assert outcome.status == RunStatus.FAILED
    assert "reload_changed_files is not supported" in outcome.message and "reload_changed_files off" in (
        outcome.errors[0].action
    )


def test_a_rewrite_that_turns_out_unreadable_is_quarantined_and_later_loaded_whole(rh: Harness) -> None:
    """The rewrite's old rows are deleted before its new version turns out unreadable; its fixed version, even one
    that starts with the old bytes, then loads whole and once (not as an append to rows that are gone)."""
    path = rh.landing / "a.json"
    original = _json_lines(range(10))
    path.write_text(original)
    assert rh.run().status == RunStatus.SUCCESS
    path.write_text("garbage, not JSON\n" * 3)
    outcome = rh.run()
    assert outcome.status == RunStatus.PARTIAL, outcome
    assert [e.file for e in outcome.errors if e.kind == "quarantined"] == [str(path)]
    assert rh.table().num_rows == 0  # the replaced version's rows are gone, the bad one never loaded
    path.write_text(original + _json_lines(range(10, 13)))
    assert rh.run().status == RunStatus.SUCCESS
    assert sorted(rh.table().column("id").to_pylist()) == list(range(13))


def test_changed_files_are_all_in_the_ledger_but_listed_on_the_run_up_to_a_cap(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.pipeline, "CHANGED_WARNINGS_LISTED", 2)
    paths = write_json_files(h.landing, 3, RECORDS)
    h.run()
    for path in paths:
        path.write_text(path.read_text() + '{"id": 999}\n')
    outcome = h.run()
    assert outcome.status == RunStatus.SUCCESS, outcome
    assert [e.kind for e in outcome.errors] == ["file_changed", "file_changed"]
    assert "3 files changed after being loaded" in outcome.message
    assert {r.status for r in h.store.ledger(h.id).values()} == {FileStatus.CHANGED.value}
    assert h.table().num_rows == 3 * RECORDS


@pytest.mark.parametrize("later_run", [False, True])
def test_an_engine_that_reads_keys_by_spelling_sets_aside_a_case_variant_file(h: Harness, later_run: bool) -> None:
    """Spark reads JSON keys by exact spelling, so `name` beside a column `Name` would be dropped without a word (it
    was, when both spellings came in one batch). On such an engine the file is quarantined, named with the key; the
    files without it load. Stands in for Spark with the embedded engine told it cannot rescue (the Spark contract
    tests run the real case)."""

    class BySpelling(EmbeddedEngine):
        def drops_case_variants(self, fmt: FormatConfig) -> bool:
            return True

    h.pipeline.engine_for = lambda _: BySpelling(h.engine.warehouse)
    (h.landing / "a.json").write_text('{"id": 1, "Name": "n"}\n{"id": 2, "Name": "o"}\n')
    if later_run:
        assert h.run().status == RunStatus.SUCCESS
    (h.landing / "b.json").write_text('{"id": 3, "name": "m"}\n')
    (h.landing / "c.json").write_text('{"id": 4, "Name": "p", "NAME": 5}\n')
    (h.landing / "d.json").write_text('{"id": 5, "Name": "q"}\n')
    outcome = h.run()
    assert outcome.status == RunStatus.PARTIAL, outcome
    quarantined = {e.file.rsplit("/", 1)[-1]: e.message for e in outcome.errors if e.kind == "quarantined"}
    assert sorted(quarantined) == ["b.json", "c.json"], outcome.errors
    assert "'name' (column 'Name')" in quarantined["b.json"] and "'NAME' (column 'Name')" in quarantined["c.json"]
    assert sorted(h.table().column("id").to_pylist()) == [1, 2, 5]
