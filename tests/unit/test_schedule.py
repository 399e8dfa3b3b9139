"""Next-fire computation: cron and time zones, DST changes, validation and descriptions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.config import ScheduleConfig
from core.errors import ConfigError
from core.schedule import describe, last_fire_time, next_fire_times, trigger_for


def sched(**kwargs) -> ScheduleConfig:  # type: ignore[no-untyped-def]
    return ScheduleConfig(mode=kwargs.pop("mode", "scheduled"), **kwargs)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected_utc"),
    [
        (
            sched(frequency="hourly", minute=15),
            utc(2026, 5, 1, 10, 20),
            [utc(2026, 5, 1, 11, 15), utc(2026, 5, 1, 12, 15)],
        ),
        (sched(frequency="daily", time="02:00"), utc(2026, 5, 1, 3), [utc(2026, 5, 2, 2), utc(2026, 5, 3, 2)]),
        (
            sched(frequency="daily", time="09:30", timezone="America/New_York"),
            utc(2026, 1, 10),
            [utc(2026, 1, 10, 14, 30), utc(2026, 1, 11, 14, 30)],
        ),
        (
            sched(frequency="weekly", weekday="fri", time="18:00", timezone="Asia/Kolkata"),
            utc(2026, 11, 27),  # a Friday
            [utc(2026, 11, 27, 12, 30), utc(2026, 12, 4, 12, 30)],
        ),
        (
            sched(frequency="custom", cron_expression="*/20 8 * * mon-fri"),
            utc(2026, 11, 27, 8, 30),  # Friday 08:30 UTC
            [utc(2026, 11, 27, 8, 40), utc(2026, 11, 30, 8, 0)],
        ),
    ],
    ids=["hourly", "daily-utc", "daily-new-york", "weekly-kolkata", "custom-weekdays"],
)
def test_next_fire_times(schedule: ScheduleConfig, after: datetime, expected_utc: list[datetime]) -> None:
    fires = next_fire_times(schedule, len(expected_utc), after=after)
    assert [f.astimezone(UTC) for f in fires] == expected_utc


def test_daily_across_spring_forward_keeps_local_time() -> None:
    # Europe/Berlin moves from UTC+1 to UTC+2 on 2026-03-29.
    fires = next_fire_times(
        sched(frequency="daily", time="06:00", timezone="Europe/Berlin"), 3, after=utc(2026, 3, 27, 12)
    )
    assert [f.astimezone(UTC) for f in fires] == [utc(2026, 3, 28, 5), utc(2026, 3, 29, 4), utc(2026, 3, 30, 4)]
    assert {f.hour for f in fires} == {6}


def test_fire_in_the_skipped_hour_happens_once() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: it still fires exactly once that day.
    fires = next_fire_times(
        sched(frequency="daily", time="02:30", timezone="Europe/Berlin"), 3, after=utc(2026, 3, 27, 12)
    )
    days = [f.astimezone(UTC).date() for f in fires]
    assert len(set(days)) == 3
    assert all(b > a for a, b in itertools.pairwise(fires))


def test_fall_back_hour_fires_once() -> None:
    # America/New_York repeats 01:00-02:00 on 2026-11-01; an hourly job at :30 fires once per real hour.
    fires = next_fire_times(
        sched(frequency="hourly", minute=30, timezone="America/New_York"), 4, after=utc(2026, 11, 1, 4)
    )
    instants = [f.astimezone(UTC) for f in fires]  # same-zone subtraction ignores `fold`; compare instants
    gaps = {b - a for a, b in itertools.pairwise(instants)}
    assert gaps == {timedelta(hours=1)}


@pytest.mark.parametrize(
    ("schedule", "after", "night"),
    [
        (sched(frequency="daily", time="02:30", timezone="Europe/Berlin"), utc(2027, 10, 30, 12),
         utc(2027, 10, 31, 0, 30)),
        (sched(frequency="weekly", weekday="sun", time="01:15", timezone="America/New_York"), utc(2027, 11, 6),
         utc(2027, 11, 7, 5, 15)),
        (sched(frequency="custom", cron_expression="30 1 * * *", timezone="America/New_York"), utc(2027, 11, 6, 12),
         utc(2027, 11, 7, 5, 30)),
    ],
    ids=["daily", "weekly", "cron"],
)  # fmt: skip
def test_a_fixed_time_fires_once_on_the_night_the_clock_goes_back(
    schedule: ScheduleConfig, after: datetime, night: datetime
) -> None:
    """Found by an outside trial: APScheduler fired 'daily at 02:30 Europe/Berlin' at 00:30 and again at 01:30 UTC
    on the last Sunday of October, each its own run slot, so two runs. As cron: once, at the first 02:30."""
    fires = [f.astimezone(UTC) for f in next_fire_times(schedule, 3, after=after)]
    assert fires[0] == night
    assert fires[1] - fires[0] > timedelta(hours=20), fires


def test_a_daily_run_at_midnight_fires_the_day_after_a_spring_forward() -> None:
    """APScheduler 3.11, searching from the previous fire, carried the old UTC offset into the next day and passed
    over its fire: "daily at 00:00 America/Chicago" fired on 2025-03-09, then 2025-03-11 (a helper's trial)."""
    fires = next_fire_times(sched(frequency="daily", time="00:00", timezone="America/Chicago"), 3, utc(2025, 3, 8, 12))
    assert [f.astimezone(UTC) for f in fires] == [utc(2025, 3, 9, 6), utc(2025, 3, 10, 5), utc(2025, 3, 11, 5)]


def test_a_time_a_spring_forward_skips_is_shown_as_the_clock_reads_then() -> None:
    fires = next_fire_times(sched(frequency="daily", time="02:30", timezone="Europe/Berlin"), 1, utc(2025, 3, 29, 12))
    assert fires[0].astimezone(UTC) == utc(2025, 3, 30, 1, 30)
    assert fires[0].strftime("%H:%M%z") == "03:30+0200"  # it showed 02:30+0100, a time the clock never reads


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 1 * mon", utc(2027, 3, 27), ["Mon 03-29", "Thu 04-01", "Mon 04-05"]),
        ("0 0 13 * 5", utc(2027, 9, 1), ["Fri 09-03", "Fri 09-10", "Mon 09-13", "Fri 09-17"]),
        ("0 0 29 2 mon", utc(2028, 2, 20), ["Mon 02-21", "Mon 02-28", "Tue 02-29", "Mon 02-05"]),
        ("0 0 */2 * mon", utc(2027, 3, 1), ["Mon 03-15", "Mon 03-29", "Mon 04-05", "Mon 04-19"]),  # a step: ANDed
    ],
)
def test_cron_fires_on_either_restricted_day_field_as_cron_does(
    expression: str, after: datetime, expected: list[str]
) -> None:
    """Cron fires when the day of the month or the day of the week matches, once both are restricted; APScheduler
    needs both (found by an outside trial: `0 0 1 * mon` fired on Mondays that are a 1st, 5 times in 2 years;
    `0 0 29 2 mon` was refused as never firing)."""
    fires = next_fire_times(sched(frequency="custom", cron_expression=expression), len(expected), after=after)
    assert [f.strftime("%a %m-%d") for f in fires] == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frequency": "weekly", "weekday": "monkey", "time": "10:00"}, "schedule.weekday"),
        ({"frequency": "daily", "time": "02:00\n"}, "schedule.time"),
        ({"frequency": "daily", "time": "\u0662:00"}, "schedule.time"),
        ({"frequency": "custom", "cron_expression": "\uff11 * * * *"}, "schedule.cron_expression"),
        ({"frequency": "daily", "time": "02:00", "timezone": "localtime"}, "schedule.timezone"),
    ],
    ids=["weekday-prefix", "time-newline", "arabic-digit", "fullwidth-digit", "host-zone"],
)
def test_schedule_input_is_held_to_what_a_person_types(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    """Found by an outside trial: `monkey` was stored as Monday, `02:00\\n` with its newline (and described so),
    Arabic and full-width digits as numbers, `localtime` (the host's zone, other on each replica) as a zone. A
    stored schedule that passed the looser checks of before still loads."""
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        sched(**kwargs)
    stored = ScheduleConfig.model_validate({"mode": "scheduled", **kwargs}, context={"stored": True})
    assert stored.mode == "scheduled"


def test_a_weekday_may_be_written_in_full() -> None:
    assert describe(sched(frequency="weekly", weekday="Friday", time="10:00")).startswith("Weekly on Friday")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frequency": "custom", "cron_expression": "0 25 * * *"}, "schedule.cron_expression"),
        ({"frequency": "custom", "cron_expression": "every day"}, "schedule.cron_expression"),
        ({"frequency": "daily", "time": "2pm"}, "schedule.time"),
        ({"frequency": "weekly", "weekday": "someday", "time": "10:00"}, "schedule.weekday"),
        ({"frequency": "daily", "time": "10:00", "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({}, "schedule.frequency"),
    ],
)
def test_invalid_schedules_name_the_field(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        sched(**kwargs)
    with pytest.raises(ConfigError) as err:
        trigger_for(ScheduleConfig.model_construct(mode="scheduled", timezone=kwargs.get("timezone", "UTC"), **{
            k: v for k, v in kwargs.items() if k != "timezone"}))  # fmt: skip
    assert err.value.field == field and err.value.action


def test_a_wrong_time_zone_is_refused_before_the_schedule_uses_it() -> None:
    """Found by an outsider: a manual ingestion kept `Mars/Olympus` until the day it was scheduled."""
    with pytest.raises(ValidationError, match=r"schedule\.timezone: Unknown time zone 'Mars/Olympus'"):
        ScheduleConfig(mode="manual", timezone="Mars/Olympus")
    stored = ScheduleConfig.model_validate({"mode": "manual", "timezone": "Mars/Olympus"}, context={"stored": True})
    assert stored.timezone == "Mars/Olympus"  # an older row still loads


def test_continuous_minimum_and_slots_are_aligned() -> None:
    with pytest.raises(ValidationError):
        ScheduleConfig(mode="continuous", interval_seconds=2)
    trigger = trigger_for(ScheduleConfig(mode="continuous", interval_seconds=5))
    assert trigger is not None
    slot = last_fire_time(trigger, utc(2026, 1, 1, 0, 0, 7), timedelta(seconds=10))
    assert slot == utc(2026, 1, 1, 0, 0, 5)


def test_descriptions() -> None:
    assert describe(sched(mode="manual")) == "Manual only"
    assert describe(ScheduleConfig(mode="continuous", interval_seconds=30)).startswith("Continuous")
    assert describe(sched(frequency="daily", time="02:00", timezone="Europe/Berlin")) in (
        "Daily at 02:00 Europe/Berlin (01:00 UTC)",
        "Daily at 02:00 Europe/Berlin (00:00 UTC)",
    )
    assert describe(sched(frequency="weekly", weekday="mon", time="09:00")) == "Weekly on Monday at 09:00 UTC"


@pytest.mark.parametrize(
    ("weekday_field", "expected_days"),
    [
        ("0", {"Sun"}),
        ("7", {"Sun"}),
        ("sun", {"Sun"}),
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
        ("0,6", {"Sat", "Sun"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("1/3", {"Mon", "Thu"}),
        ("mon-wed,fri", {"Mon", "Tue", "Wed", "Fri"}),
        ("*", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
    ],
)
def test_custom_cron_days_of_week_count_from_sunday_as_cron_does(weekday_field: str, expected_days: set[str]) -> None:
    """APScheduler 3's own crontab parser counts from 0 = Monday: `0 3 * * 0` fired on Mondays."""
    trigger = trigger_for(sched(frequency="custom", cron_expression=f"0 3 * * {weekday_field}"))
    assert trigger is not None
    fires, after = [], utc(2026, 5, 3, 12)  # a Sunday
    for _ in range(14):
        after = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
        fires.append(after)
    assert {f.strftime("%a") for f in fires} == expected_days
    assert all((f.hour, f.minute) == (3, 0) for f in fires)


@pytest.mark.parametrize("weekday_field", ["8", "fri-mon", "*/0", "someday"])
def test_custom_cron_bad_day_of_week_names_the_field(weekday_field: str) -> None:
    with pytest.raises(
        ValidationError, match=r"schedule\.cron_expression: .*day-of-week|schedule\.cron_expression: .*day of the week"
    ):
        sched(frequency="custom", cron_expression=f"0 3 * * {weekday_field}")
