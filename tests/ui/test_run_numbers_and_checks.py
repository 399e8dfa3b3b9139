"""What the console shows of continuous mode and run numbers (issue 15, items 9 and 11): the run history numbers
runs within the ingestion, empty continuous checks are one line instead of rows, and an interval under the
minimum is an error at the field instead of a value silently raised."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import ui
from nicegui.testing import User

from components.formatting import clock
from tests.helpers import spec
from tests.ui.conftest import ORDERS

WEEK = 7 * 24 * 3600
"""The ingestions' interval: the app's own scheduler does not fire them while a test runs."""


def _continuous(name: str, interval: int = WEEK) -> Any:
    return spec(str(ORDERS), table=name, name=name, schedule={"mode": "continuous", "interval_seconds": interval})


async def _history_numbers(user: User) -> list[Any]:
    await user.should_see(marker="run-history", retries=50)
    return [row["number"] for row in next(iter(user.find(marker="run-history").elements)).rows]


async def _step_is(user: User, step: str) -> None:
    stepper = next(iter(user.find(ui.stepper).elements))
    for _ in range(100):
        if stepper.value == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"wizard is on {stepper.value}, not {step}")


async def test_runs_are_numbered_per_ingestion_and_empty_checks_are_one_line(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    services = services_of_app
    other = services.ingestions.create(_continuous("other"), activate=True)
    services.runs.run_now(str(other.id))  # takes the first run id of the instance
    quiet = services.ingestions.create(_continuous("quiet"), activate=True)
    services.runs.run_now(str(quiet.id))  # loads the three files
    services.runs.run_now(str(quiet.id))  # asked for: kept, though it found nothing
    first_slot = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    for minutes in (0, 10):  # two scheduled checks that find nothing: counted, not stored
        run_id = services.store.create_scheduled_run(quiet.id, first_slot + timedelta(minutes=minutes), "scheduled")
        services.runner.submit(quiet.id, run_id)
        services.runner.wait(run_id)

    await user.open(f"/ingestions/{quiet.id}")
    assert await _history_numbers(user) == ["#2", "#1"]
    since, last = clock(first_slot), clock(first_slot + timedelta(minutes=10))
    await user.should_see(f"Checked 2 times since {since}, no new files (last check {last})")
    await user.should_see("3 files", retries=50)  # the ledger fills after the page opens
    ledger = next(iter(user.find(marker="ledger").elements))
    assert {row["run"] for row in ledger.rows} == {"#1"}  # loaded by this ingestion's first run (the second id)
    user.find(marker="run-now").click()
    await user.should_see("Run #3 started.", retries=30)


async def test_an_interval_under_the_minimum_is_an_error_at_the_field(user: User, services_of_app) -> None:  # type: ignore[no-untyped-def]
    ingestion = services_of_app.ingestions.create(_continuous("fast", interval=30))
    await user.open(f"/ingestions/{ingestion.id}/edit")
    for step in ("Format", "Destination", "Schedule"):
        user.find(marker="next").click()
        await _step_is(user, step)
    interval = user.find(marker="schedule.interval_seconds")
    interval.clear().type("2").trigger("blur")  # the browser sends blur when the user leaves the field
    await user.should_see("2 s is shorter than the minimum of 5 s between checks; use 5 to 604800 seconds")
    field = next(iter(interval.elements))
    assert isinstance(field, ui.number) and field.value == 2  # not silently raised to 5


async def test_a_runs_dialog_gives_the_id_the_api_names_it_by(user: User, services_of_app: Any) -> None:
    """The console numbers runs per ingestion (#2) while the API's run routes take the run's id: the number copied
    from the screen fetched another run or none (an outside attack)."""
    first = services_of_app.ingestions.create(spec(str(ORDERS), table="a", name="a"), activate=True)
    services_of_app.runs.run_now(first.name)
    second = services_of_app.ingestions.create(spec(str(ORDERS), table="b", name="b"), activate=True)
    outcome = services_of_app.runs.run_now(second.name)
    await user.open(f"/ingestions/{second.id}")
    await user.should_see(marker="run-history", retries=50)
    user.find(marker="run-history").trigger("details", {"id": outcome.run_id})
    await user.should_see(f"In the API: run id {outcome.run_id} (/api/v1/ingestions/{second.id}/runs/{outcome.run_id})")
    assert outcome.run_id != 1  # the screen's "Run #1" is not the API's run 1
