"""Continuous mode and run numbers (issue 15, items 9 and 11), on SQLite and PostgreSQL:

- an interval under the minimum is refused with the field named, while a stored one still loads;
- each continuous ingestion's next run is its own fire time, as the scheduler has it;
- an empty continuous check is counted on the ingestion instead of stored as a run;
- runs are numbered per ingestion (#1, #2, ...), also when inserted concurrently.

The scheduler's fires are driven through the same calls it makes (claim the slot, hand the run to the runner), so
the tests do not wait for a clock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.access import SYSTEM
from core.domain import IngestionStatus
from tests.helpers import spec, write_json_files

HOUR = 3600
SLOT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
"""A slot for claims whose time does not matter."""


def _next_hour() -> datetime:
    """The first slot of a test's checks: after every run the test stores before them, as real slots are."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _continuous(services: Any, folder: Path, name: str, interval: int = HOUR) -> int:
    body = spec(str(folder), table=name, name=name, schedule={"mode": "continuous", "interval_seconds": interval})
    return services.ingestions.create(body, activate=True).id


def _fire(services: Any, ingestion_id: int, slot: datetime) -> int | None:
    """One scheduled fire as `Scheduler._claim_and_submit` makes it: claim the slot, run it to its end."""
    run_id = services.store.create_scheduled_run(ingestion_id, slot, "scheduled")
    if run_id is not None:
        services.runner.submit(ingestion_id, run_id)
        services.runner.wait(run_id)
    return run_id


def test_a_short_interval_is_refused_but_a_stored_one_loads(api: Any, services: Any, tmp_path: Path) -> None:
    body = spec(str(tmp_path), name="fast").model_dump(mode="json", by_alias=True)
    body["schedule"] = {"mode": "continuous", "interval_seconds": 2}
    answer = api.post("/api/v1/ingestions", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == "schedule.interval_seconds"
    assert "minimum of 5 s" in error["message"] and "2 s" in error["message"]
    assert services.store.list_ingestions() == []  # nothing stored, nothing raised silently

    ingestion_id = _continuous(services, tmp_path, "slow", interval=30)
    with services.db.begin() as conn:  # a row written before the minimum was checked at the boundary
        conn.execute(
            text("UPDATE ingestion SET schedule = :s WHERE id = :i"),
            {"s": '{"mode": "continuous", "interval_seconds": 2, "timezone": "UTC"}', "i": ingestion_id},
        )
    loaded = api.get(f"/api/v1/ingestions/{ingestion_id}")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["schedule"]["interval_seconds"] == 2


def test_each_continuous_ingestion_shows_its_own_next_fire(api: Any, services: Any, tmp_path: Path) -> None:
    ids = [_continuous(services, tmp_path, f"every_hour_{n}") for n in range(3)]
    services.scheduler.start()
    try:
        jobs = {i: services.scheduler.scheduler.get_job(f"ingestion-{i}").next_run_time for i in ids}
        shown = {i: datetime.fromisoformat(api.get(f"/api/v1/ingestions/{i}").json()["next_run_at"]) for i in ids}
    finally:
        services.scheduler.shutdown()
    assert shown == jobs  # what the API shows is what the scheduler fires
    assert len(set(shown.values())) == 3, shown  # three ingestions, three different moments
    cards = {s.id: s.next_run for s in services.views.ingestions(SYSTEM)}
    assert {i: cards[i] for i in ids} == jobs


def test_empty_continuous_checks_are_counted_not_stored(api: Any, services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    ingestion_id = _continuous(services, landing, "quiet")
    slot = _next_hour()

    for n in range(3):
        assert _fire(services, ingestion_id, slot + timedelta(hours=n)) is not None
    assert _fire(services, ingestion_id, slot) is None  # a slot already checked is not checked again
    assert api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json() == []
    checks = api.get(f"/api/v1/ingestions/{ingestion_id}").json()["empty_checks"]
    assert checks["count"] == 3
    assert datetime.fromisoformat(checks["since"]) == slot
    assert datetime.fromisoformat(checks["last_checked_at"]) == slot + timedelta(hours=2)
    assert checks["description"] == f"Checked 3 times since {slot:%Y-%m-%d %H:%M:%S} UTC, no new files"

    write_json_files(landing, 2, 5)
    loading = _fire(services, ingestion_id, slot + timedelta(hours=3))
    (run,) = api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json()
    assert (run["id"], run["status"], run["metrics"]["files_processed"]) == (loading, "success", 2)
    assert api.get(f"/api/v1/ingestions/{ingestion_id}").json()["empty_checks"] is None  # a run since

    _fire(services, ingestion_id, slot + timedelta(hours=4))
    checks = api.get(f"/api/v1/ingestions/{ingestion_id}").json()["empty_checks"]
    assert (checks["count"], datetime.fromisoformat(checks["since"])) == (1, slot + timedelta(hours=4))
    assert checks["description"].startswith("Checked once since")

    manual = services.runs.trigger(ingestion_id, "manual")  # a run someone asked for is kept, empty or not
    services.runner.wait(manual)
    assert [r["id"] for r in api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json()] == [manual, loading]


def test_a_failing_continuous_check_is_a_run(services: Any, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    ingestion_id = _continuous(services, landing, "broken")
    landing.rmdir()
    run_id = _fire(services, ingestion_id, SLOT)
    run = services.store.get_run_by_id(run_id)
    assert run is not None and run.status == "failed"


def test_runs_are_numbered_per_ingestion(api: Any, services: Any, tmp_path: Path) -> None:
    first, second = (
        services.store.create_ingestion(spec(str(tmp_path), table=n, name=n), IngestionStatus.ACTIVE).id
        for n in ("first", "second")
    )
    made = [services.store.create_run(i, "manual") for i in (first, second, first, first, second)]
    assert made == sorted(made)  # ids stay global and increasing: they identify runs in links and the API
    numbers = {
        i: [(r["id"], r["number"]) for r in api.get(f"/api/v1/ingestions/{i}/runs").json()] for i in (first, second)
    }
    assert numbers == {
        first: [(made[3], 3), (made[2], 2), (made[0], 1)],
        second: [(made[4], 2), (made[1], 1)],
    }
    retry = services.store.create_retry_run(made[3], SLOT)
    scheduled = services.store.create_scheduled_run(second, SLOT)
    assert services.store.get_run_by_id(retry).number == 4
    assert services.store.get_run_by_id(scheduled).number == 3
    assert api.get(f"/api/v1/ingestions/{first}/runs/{retry}").json()["number"] == 4


def test_a_paused_ingestion_gets_no_scheduled_run_from_a_replica_that_still_has_its_job(
    services: Any, tmp_path: Path
) -> None:
    """A replica's scheduler keeps an ingestion's job until its next refresh of the schedules (15 s): with two
    servers, an outside trial saw a run start and load a file added after the pause, 3 s after the other server
    answered `paused`. The claim of a fire reads the ingestion's status."""
    ingestion_id = _continuous(services, tmp_path, "paused_meanwhile")
    services.ingestions.pause(ingestion_id)
    assert services.store.create_scheduled_run(ingestion_id, SLOT) is None
    services.ingestions.resume(ingestion_id)
    assert services.store.create_scheduled_run(ingestion_id, SLOT) is not None
    services.ingestions.delete(ingestion_id)
    assert services.store.create_scheduled_run(ingestion_id, SLOT + timedelta(hours=1)) is None


def test_concurrent_runs_of_one_ingestion_get_distinct_numbers(services: Any, tmp_path: Path) -> None:
    ingestion_id = services.store.create_ingestion(spec(str(tmp_path)), IngestionStatus.ACTIVE).id
    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(lambda _: services.store.create_run(ingestion_id, "manual"), range(40)))
    numbers = {services.store.get_run_by_id(r).number for r in run_ids}
    assert numbers == set(range(1, 41))


def test_a_note_repeated_by_every_check_is_stored_once(api: Any, services: Any, tmp_path: Path) -> None:
    """A link to nothing in the folder is noted by every listing: one stored run says so, the checks after it that
    say the same are counted, and a new note is a run again."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    ingestion_id = _continuous(services, landing, "noted")
    slot = _next_hour()
    for n in range(3):
        _fire(services, ingestion_id, slot + timedelta(hours=n))
    (run,) = api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json()
    assert "symbolic link to nothing" in run["message"]
    assert api.get(f"/api/v1/ingestions/{ingestion_id}").json()["empty_checks"]["count"] == 2
    (landing / "other.json").symlink_to(tmp_path / "elsewhere.json")
    _fire(services, ingestion_id, slot + timedelta(hours=3))
    assert len(api.get(f"/api/v1/ingestions/{ingestion_id}/runs").json()) == 2
