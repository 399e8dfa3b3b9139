"""Incremental listing (source.incremental_listing, issue #16 item 2): a run lists only the paths after those already
listed, and a full listing still comes when due, after a failed run and after Reprocess, so no file is lost."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.domain import RunStatus
from core.ports import ListingState
from tests.helpers import RewritesAfterListing, read_table, spec


def land(folder: Path, rel: str, start: int, rows: int = 3, **extra: Any) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, **extra}) + "\n" for i in range(start, start + rows)))


def ids(services: Any, ing: Any) -> list[int]:
    return sorted(read_table(services.embedded.table_uri(ing.spec.destination)).column("id").to_pylist())


def test_a_run_lists_after_the_last_path_and_a_due_full_listing_finds_late_files(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, "2026-11-30/part-0.json", 0)
    land(landing, "2026-11-30/part-1.json", 3)
    ing = services.ingestions.create(spec(str(landing), source={"incremental_listing": True}), activate=True)

    first = services.runs.run_now(ing.name)
    assert first.status == RunStatus.SUCCESS and first.metrics.files_processed == 2
    state = services.store.listing_state(ing.id)
    assert state.listed_through == str(landing / "2026-11-30/part-1.json") and state.full_listing_at is not None

    land(landing, "2026-12-01/part-0.json", 6)
    land(landing, "2026-11-30/part-0-late.json", 100)  # sorts before the listing's start: not seen yet
    second = services.runs.run_now(ing.name)
    assert second.metrics.files_processed == 1, second.message
    assert ids(services, ing) == list(range(9))
    assert services.store.listing_state(ing.id).listed_through == str(landing / "2026-12-01/part-0.json")

    state = services.store.listing_state(ing.id)
    services.store.set_listing_state(
        ing.id, ListingState(state.listed_through, state.full_listing_at - timedelta(days=2))
    )
    due = services.runs.run_now(ing.name)
    assert due.metrics.files_processed == 1, due.message
    assert ids(services, ing) == [*range(9), 100, 101, 102]
    assert services.runs.run_now(ing.name).metrics.files_processed == 0


def test_after_a_failed_run_and_after_reprocess_the_next_run_lists_every_file(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, "b/part-0.json", 0)
    body = {"source": {"incremental_listing": True}, "format": {"type": "json", "schema": {"on_schema_change": "fail"}}}
    ing = services.ingestions.create(spec(str(landing), **body), activate=True)
    assert services.runs.run_now(ing.name).metrics.files_processed == 1

    land(landing, "c/part-0.json", 10, extra_column="x")  # a schema change the policy fails on
    failed = services.runs.run_now(ing.name)
    assert failed.status == RunStatus.FAILED
    assert services.store.listing_state(ing.id).listed_through is None
    (landing / "c/part-0.json").unlink()
    land(landing, "a/late.json", 20)
    after_failure = services.runs.run_now(ing.name)
    assert after_failure.metrics.files_processed == 1, after_failure.message
    assert ids(services, ing) == [0, 1, 2, 20, 21, 22]

    land(landing, "c/part-1.json", 30)
    services.runs.run_now(ing.name)
    files, run_id = services.runs.reprocess(ing.id, paths=[str(landing / "a/late.json")])
    assert files == 1
    services.runner.wait(run_id, timeout=60)
    assert ids(services, ing) == [0, 1, 2, 20, 20, 21, 21, 22, 22, 30, 31, 32]


def test_a_misfit_under_fail_is_listed_again_after_two_failed_runs(services: Any, tmp_path: Path) -> None:
    """The second failed run in a row moved the listing past the misfit (its position advanced before the run
    raised, and nothing was left to forget): a fixed file waited for the next full listing (an outside attack)."""
    landing = tmp_path / "landing"
    land(landing, "a/part-0.json", 0)
    body = {"source": {"incremental_listing": True}, "format": {"type": "json", "schema": {"on_schema_change": "fail"}}}
    ing = services.ingestions.create(spec(str(landing), **body), activate=True)
    assert services.runs.run_now(ing.name).status == RunStatus.SUCCESS
    land(landing, "b/part-0.json", 10, extra_column="x")
    assert services.runs.run_now(ing.name).status == RunStatus.FAILED
    land(landing, "c/part-0.json", 20)
    again = services.runs.run_now(ing.name)
    assert again.status == RunStatus.FAILED and again.metrics.files_processed == 1, again.message
    land(landing, "b/part-0.json", 10)  # the producer fixes the file
    fixed = services.runs.run_now(ing.name)
    assert fixed.status == RunStatus.SUCCESS and fixed.metrics.files_processed == 1, fixed.message
    assert ids(services, ing) == [0, 1, 2, 10, 11, 12, 20, 21, 22]


def test_a_file_rewritten_while_read_is_read_by_the_next_incremental_run(services: Any, tmp_path: Path) -> None:
    """The run advanced its listing past the file it set aside as rewritten: the next runs said "No new files"
    and the file waited for the next full listing (an outside attack)."""
    landing = tmp_path / "landing"
    land(landing, "a/part-0.json", 0)
    ing = services.ingestions.create(spec(str(landing), source={"incremental_listing": True}), activate=True)
    services.runs.run_now(ing.name)
    land(landing, "b/part-0.json", 10)
    land(landing, "b/part-1.json", 20)
    real = services.pipeline.storage_for
    rewrite = "".join(json.dumps({"id": i}) + "\n" for i in range(500, 504))
    victim = landing / "b/part-0.json"
    services.pipeline.storage_for = lambda source: RewritesAfterListing(real(source), victim, rewrite)
    try:
        aside = services.runs.run_now(ing.name)
    finally:
        services.pipeline.storage_for = real
    assert aside.metrics.files_processed == 1 and "rewritten while being read" in aside.message, aside.message
    after = services.runs.run_now(ing.name)
    assert after.metrics.files_processed == 1, after.message
    assert ids(services, ing) == [0, 1, 2, 20, 21, 22, 500, 501, 502, 503]
