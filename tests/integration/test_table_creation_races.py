"""Runs that find no table and create it at the same moment (two ingestions writing one new table, started
together) end with one table holding both's rows and columns: delta-rs retries a write that creates a table as a
second create on top of the first (a second metadata, a new table id, the other run's columns gone from the
schema), so the embedded engine creates the table on a commit of its own, never retried, before the batch's."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from app.bootstrap import Container
from core.domain import RunOutcome, RunStatus
from tests.helpers import read_table, spec


def _lines(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _table_ids(table_uri: str) -> set[str]:
    """The `metaData.id` of every commit in the table's log that carries one (a table created once has one)."""
    ids = set()
    for commit in sorted(Path(table_uri, "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                ids.add(action["metaData"]["id"])
    return ids


def test_two_runs_creating_one_table_at_once_leave_one_table_with_both_columns(
    services: Container, tmp_path: Path
) -> None:
    """Both runs plan their batch while there is no table, and pass their last check before either commits (two
    barriers); `twin-0` creates the table, `twin-1` adds its column `b` and commits first. Before the create got a
    commit of its own, both committed a create: the log held two table ids and the schema only the second run's
    column. Now `twin-0`'s commit loses to `twin-1`'s schema change ("Metadata changed since last commit") and its
    batch is written again (before, that run failed)."""
    import time

    columns = ["a", "b"]
    ingestions = []
    for n, column in enumerate(columns):
        _lines(tmp_path / f"in{n}" / "f.json", [{"id": n * 100 + i, column: f"{column}{i}"} for i in range(3)])
        body = spec(str(tmp_path / f"in{n}"), table="shared", name=f"twin-{n}")
        ingestions.append(services.ingestions.create(body, activate=True))
    engine, destination = services.engines.for_ingestion(ingestions[0]), ingestions[0].spec.destination
    store = services.pipeline.store
    check, record_batch = store.check_run_live, store.add_pending_batch
    both_planned, both_writing = threading.Barrier(2, timeout=60), threading.Barrier(2, timeout=60)
    twin_of_run: dict[int, int] = {}

    def recorded_then_together(ingestion_id: int, run_id: int, *args: Any) -> None:
        record_batch(ingestion_id, run_id, *args)
        if run_id in twin_of_run:
            return  # a batch written again goes on alone
        twin_of_run[run_id] = next(n for n, ing in enumerate(ingestions) if ing.id == ingestion_id)
        both_planned.wait()
        deadline = time.monotonic() + 10
        while twin_of_run[run_id] == 1 and engine.table_schema(destination) is None and time.monotonic() < deadline:
            time.sleep(0.01)  # twin-0 creates the table

    def checked_then_together(run_id: int) -> None:
        check(run_id)
        if run_id in twin_of_run and twin_of_run[run_id] >= 0:
            twin = twin_of_run[run_id]
            twin_of_run[run_id] = -1
            both_writing.wait()
            if twin == 0:
                time.sleep(0.5)  # twin-1's commit (with its new column) goes in first

    store.add_pending_batch = recorded_then_together  # type: ignore[method-assign]
    store.check_run_live = checked_then_together  # type: ignore[method-assign]
    outcomes: dict[int, RunOutcome] = {}

    def run(n: int) -> None:
        outcomes[n] = services.runs.run_now(ingestions[n].name)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert [outcomes[n].status for n in range(2)] == [RunStatus.SUCCESS] * 2, [o.message for o in outcomes.values()]
    assert "batch 1 was written again: another writer's commit to the table got in first" in outcomes[0].message
    uri = engine.table_uri(destination)
    assert len(_table_ids(uri)) == 1
    rows = sorted(read_table(uri).select(["id", *columns]).to_pylist(), key=lambda r: r["id"])
    assert rows == [
        *({"id": i, "a": f"a{i}", "b": None} for i in range(3)),
        *({"id": 100 + i, "a": None, "b": f"b{i}"} for i in range(3)),
    ]


def test_a_first_batch_failing_after_the_create_leaves_an_empty_table_and_the_next_run_starts_its_history(
    services: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create commit stays when the batch's own write then fails (a disk full, here raised by the write once):
    the next run loads into that empty table, and its schema history still starts with "table created" (it was
    recorded only for a batch that found no table, so the schema review had no current columns)."""
    import core.engines.embedded as embedded
    from core.access import SYSTEM

    write = embedded.write_deltalake
    failures = [OSError(28, "No space left on device")]

    def full_once(*args: object, **kwargs: object) -> None:
        if failures:
            raise failures.pop()
        write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded, "write_deltalake", full_once)
    _lines(tmp_path / "in" / "f.json", [{"id": i, "name": f"n{i}"} for i in range(3)])
    ing = services.ingestions.create(spec(str(tmp_path / "in")), activate=True)
    uri = services.engines.for_ingestion(ing).table_uri(ing.spec.destination)

    first = services.runs.run_now(ing.name)
    assert first.status == RunStatus.FAILED and "No space left" in first.message, first
    assert read_table(uri).num_rows == 0
    second = services.runs.run_now(ing.name)
    assert second.status == RunStatus.SUCCESS, second
    assert sorted(read_table(uri).column("id").to_pylist()) == [0, 1, 2]
    versions = services.views.schema_versions(SYSTEM, ing.id)
    assert [(v.version, v.reason) for v in versions] == [(1, "table created")]
    assert [c["name"] for c in versions[0].columns][:2] == ["id", "name"]


def test_a_merge_into_a_table_another_run_created_meanwhile_merges(
    services: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merge mode on `id`, two ingestions with the same ids, a new table: `a` finds no table; `b` creates it and
    merges its rows before `a` creates it. `a`'s create loses and its batch must be merged into `b`'s rows (found by
    a helper: it was appended, every id twice)."""
    import core.engines.embedded as embedded

    ingestions = []
    for name in ["a", "b"]:
        _lines(tmp_path / name / "f.json", [{"id": i, "v": f"{name}{i}"} for i in range(5)])
        merge = {"write_mode": "merge", "merge_keys": ["id"]}
        body = spec(str(tmp_path / name), table="shared", name=f"merge-{name}", destination=merge)
        ingestions.append(services.ingestions.create(body, activate=True))
    first, second = ingestions
    create = embedded.EmbeddedEngine._create_table
    other: list[RunOutcome] = []

    def the_other_run_gets_in_first(self: embedded.EmbeddedEngine, *args: Any) -> bool:
        request = args[-1]
        if request.app_id == first.app_id and not other:
            thread = threading.Thread(target=lambda: other.append(services.runs.run_now(second.name)))
            thread.start()
            thread.join(60)
        return create(self, *args)

    monkeypatch.setattr(embedded.EmbeddedEngine, "_create_table", the_other_run_gets_in_first)
    outcome = services.runs.run_now(first.name)

    assert (other[0].status, outcome.status) == (RunStatus.SUCCESS, RunStatus.SUCCESS), (other, outcome)
    uri = services.engines.for_ingestion(first).table_uri(first.spec.destination)
    rows = sorted(read_table(uri).select(["id", "v"]).to_pylist(), key=lambda r: r["id"])
    assert rows == [{"id": i, "v": f"a{i}"} for i in range(5)]


def test_a_column_another_ingestion_added_after_the_batch_was_planned_is_taken_on_a_second_try(
    services: Container, tmp_path: Path
) -> None:
    """`a`'s batch is planned against the table {id, a}; `b` (auto_merge) adds column `b` before `a` writes. `a`'s
    write no longer matches the table's schema: planned again, it loads (found by a helper: the run failed as a
    table error, the files loaded by the next run)."""
    auto = {"type": "json", "schema": {"on_schema_change": "auto_merge"}}
    ingestions = []
    for n, column in enumerate(["a", "b"]):
        _lines(tmp_path / column / "f1.json", [{"id": n * 100 + i, column: f"{column}{i}"} for i in range(3)])
        body = spec(str(tmp_path / column), table="shared", name=f"auto-{column}", format=auto)
        ingestions.append(services.ingestions.create(body, activate=True))
    first, second = ingestions
    assert services.runs.run_now(first.name).status == RunStatus.SUCCESS
    _lines(tmp_path / "a" / "f2.json", [{"id": 50, "a": "a50"}])
    store = services.pipeline.store
    record_batch = store.add_pending_batch
    other: list[RunOutcome] = []

    def planned_then_the_other_writes(ingestion_id: int, *args: Any) -> None:
        record_batch(ingestion_id, *args)
        if ingestion_id == first.id and not other:
            thread = threading.Thread(target=lambda: other.append(services.runs.run_now(second.name)))
            thread.start()
            thread.join(60)

    store.add_pending_batch = planned_then_the_other_writes  # type: ignore[method-assign]
    outcome = services.runs.run_now(first.name)

    assert other[0].status == RunStatus.SUCCESS, other
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    assert "was written again" in outcome.message
    uri = services.engines.for_ingestion(first).table_uri(first.spec.destination)
    assert sorted(read_table(uri).column("id").to_pylist()) == [0, 1, 2, 50, 100, 101, 102]


def test_an_overwrite_ingestion_creates_an_append_only_table(services: Container, tmp_path: Path) -> None:
    """Write mode overwrite with `delta.appendOnly`: the first batch goes into the table it has just created, empty,
    so it appends (an overwrite of it was refused by the property: found by a helper, every run failed). Later runs
    of such an ingestion are refused by the property, as before."""
    _lines(tmp_path / "in" / "f.json", [{"id": i} for i in range(5)])
    destination = {"write_mode": "overwrite", "table_properties": {"delta.appendOnly": "true"}}
    ing = services.ingestions.create(spec(str(tmp_path / "in"), destination=destination), activate=True)
    outcome = services.runs.run_now(ing.name)
    assert outcome.status == RunStatus.SUCCESS, outcome.message
    uri = services.engines.for_ingestion(ing).table_uri(ing.spec.destination)
    assert sorted(read_table(uri).column("id").to_pylist()) == list(range(5))


def test_a_batch_that_keeps_losing_to_other_writers_fails_the_run_as_transient_after_three_tries(
    services: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every try of the batch loses (the engine's answer stands in for three other writers' commits in a row):
    three tries, then the run fails `concurrent_commit`, transient, saying the run is retried; nothing pending."""
    import core.engines.embedded as embedded
    from core.errors import ConcurrentCommit

    tries: list[int] = []

    def always_beaten(self: embedded.EmbeddedEngine, request: Any) -> Any:
        tries.append(request.batch_seq)
        raise ConcurrentCommit("Another writer committed to table t first.", "Nothing to do: written again.")

    monkeypatch.setattr(embedded.EmbeddedEngine, "load_batch", always_beaten)
    _lines(tmp_path / "in" / "f.json", [{"id": 1}])
    ing = services.ingestions.create(spec(str(tmp_path / "in")), activate=True)
    outcome = services.runs.run_now(ing.name)

    assert tries == [1, 1, 1]
    assert (outcome.status, outcome.transient, outcome.errors[0].kind) == (RunStatus.FAILED, True, "concurrent_commit")
    assert "lost to other writers' commits 3 times in a row" in outcome.message
    assert "the run is retried by itself" in outcome.errors[0].action
    assert services.pipeline.store.pending_batches(ing.id) == {}
