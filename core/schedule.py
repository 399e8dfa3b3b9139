"""Schedules as pure functions: validate, describe, and compute fire times in a named time zone.

APScheduler's CronTrigger does the calendar arithmetic (DST included); the scheduler service uses the
same `trigger_for` so what the API shows is what fires.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
INTERVAL_ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)
GOLDEN_FRACTION = 0.6180339887498949
"""Spreads continuous ingestions over their interval: ids 1, 2, 3, ... land far apart within any interval."""
FIRE_HORIZON = timedelta(days=5 * 365 + 2)
"""A scheduled ingestion must fire within 5 years of being saved (`0 0 31 2 *` never does)."""
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""Cron's day-of-week numbering: 0 (and 7) is Sunday."""
_INPUT_TIME = re.compile(r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9]", re.ASCII)
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
"""Names the zone database answers that are no place's time: the server's own setting (replicas on other hosts
would fire at other times) and placeholders."""


class ScheduleConfig(Protocol):
    """The fields of a schedule these functions read (`core.config.ScheduleConfig` has them). A protocol, so that
    the config model can validate itself with this module without the two importing each other."""

    @property
    def mode(self) -> str: ...

    @property
    def frequency(self) -> str | None: ...

    @property
    def time(self) -> str | None: ...

    @property
    def weekday(self) -> str | None: ...

    @property
    def minute(self) -> int | None: ...

    @property
    def cron_expression(self) -> str | None: ...

    @property
    def timezone(self) -> str: ...

    @property
    def interval_seconds(self) -> int: ...


def _zone(schedule: ScheduleConfig) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"Unknown time zone '{schedule.timezone}'.",
            "Use an IANA name such as UTC, Europe/Berlin or America/New_York.",
            field="schedule.timezone",
        ) from None


def _hour_minute(schedule: ScheduleConfig) -> tuple[int, int]:
    match = _TIME.match(schedule.time or "")
    if not match:
        raise ConfigError(
            f"Time '{schedule.time or ''}' is not a time of day.", "Use HH:MM, e.g. 02:00.", field="schedule.time"
        )
    return int(match.group(1)), int(match.group(2))


def _weekday(schedule: ScheduleConfig) -> str:
    day = (schedule.weekday or "").strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ConfigError(
            f"Weekday '{schedule.weekday or ''}' is not a day of the week.",
            "Use mon, tue, wed, thu, fri, sat or sun.",
            field="schedule.weekday",
        )
    return day


def interval_phase(ingestion_id: int | None, interval_seconds: int) -> timedelta:
    """Where within its interval a continuous ingestion checks: derived from its id, so that every replica
    computes the same slots, while ingestions with the same interval check at different moments (all at once,
    they would show the same next run and load the machine in bursts). Whole milliseconds, under the interval."""
    if not ingestion_id:
        return timedelta(0)
    fraction = (ingestion_id * GOLDEN_FRACTION) % 1.0
    return timedelta(milliseconds=int(fraction * interval_seconds * 1000))


def trigger_for(schedule: ScheduleConfig, ingestion_id: int | None = None) -> BaseTrigger | None:
    """The APScheduler trigger of a schedule; None for manual-only ingestions. `ingestion_id` places a continuous
    ingestion's checks within the interval (`interval_phase`); without it (a schedule not saved yet) they start at
    the anchor."""
    if schedule.mode == "manual":
        return None
    zone = _zone(schedule)
    if schedule.mode == "continuous":
        seconds = schedule.interval_seconds
        start = INTERVAL_ANCHOR + interval_phase(ingestion_id, seconds)
        return IntervalTrigger(seconds=seconds, start_date=start, timezone=zone)
    frequency = schedule.frequency
    if frequency == "hourly":
        return Cron(minute=schedule.minute or 0, timezone=zone)
    if frequency == "daily":
        hour, minute = _hour_minute(schedule)
        return FixedHourCron(hour=hour, minute=minute, timezone=zone)
    if frequency == "weekly":
        hour, minute = _hour_minute(schedule)
        return FixedHourCron(day_of_week=_weekday(schedule), hour=hour, minute=minute, timezone=zone)
    if frequency == "custom":
        expression = (schedule.cron_expression or "").strip()
        try:
            return crontab_trigger(expression, zone)
        except ValueError as exc:
            raise ConfigError(
                f"Cron expression '{expression}' is not valid: {exc}.",
                "Use five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'.",
                field="schedule.cron_expression",
            ) from None
    raise ConfigError(
        "A scheduled ingestion needs a frequency.",
        "Choose hourly, daily, weekly or custom (cron).",
        field="schedule.frequency",
    )


class Cron(CronTrigger):
    """APScheduler's CronTrigger without its skip across a change of UTC offset: searching from before a
    spring-forward, APScheduler 3.11 carried the old offset into the next day and passed over its fire ("daily at
    00:00 America/Chicago" fired on 2025-03-09, then 2025-03-11; a helper's trial). Where the offset changes between
    the search's start and the fire found, the search is done again from the change; the earlier fire wins."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = now if previous_fire_time is None else min(now, _just_after(previous_fire_time))
        fire = super().get_next_fire_time(None, start)
        while fire is not None and start.astimezone(fire.tzinfo).utcoffset() != fire.utcoffset():
            start = _offset_change(start, fire)
            again = super().get_next_fire_time(None, start)
            if again is None or again >= fire:
                break
            fire = again
        return fire


class FixedHourCron(Cron):
    """A Cron that fires once on the night a fall-back repeats its wall-clock time, as cron runs a job at a fixed
    hour: APScheduler fired "daily at 02:30 Europe/Berlin" at 00:30 and again at 01:30 UTC on the last Sunday of
    October, two runs. Hourly schedules and cron hours starting with `*` keep firing in both hours (every real
    hour), as cron runs its wildcard jobs."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and _repeated_wall_time(fire):
            fire = super().get_next_fire_time(fire, _just_after(fire))
        return fire


def _offset_change(start: datetime, fire: datetime) -> datetime:
    """The first instant after `start`, to the microsecond, whose UTC offset in `fire`'s zone is `fire`'s."""
    zone, offset = fire.tzinfo, fire.utcoffset()
    low, high = start.astimezone(UTC), fire.astimezone(UTC)
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return high


def _repeated_wall_time(moment: datetime) -> bool:
    """Whether `moment` is the second time its zone's clock shows its wall time (the hour a fall-back repeats)."""
    wall = moment.astimezone(moment.tzinfo)
    return wall.replace(fold=0).astimezone(UTC) != wall.replace(fold=1).astimezone(UTC) and wall.fold == 1


def crontab_trigger(expression: str, zone: ZoneInfo | timezone) -> BaseTrigger:
    """A five-field cron expression as cron reads it.

    Not `CronTrigger.from_crontab`: APScheduler 3 numbers the days of the week from 0 = Monday, so it fires
    `0 3 * * 0` on Mondays and `* * * * 1-5` from Tuesday to Saturday. Here the day-of-week field is expanded with
    cron's numbering (0 or 7 = Sunday; names, ranges, lists and steps as cron has them) into day names. With both
    day fields restricted (neither starts with `*`; `*/2` is a step, still ANDed), cron fires on either
    (`0 0 1 * mon`: the 1st and every Monday), where APScheduler needs both (the Mondays that are a 1st): the two
    are then one trigger each, firing at the earlier. An hour that is not a wildcard fires once when a fall-back
    repeats it (`FixedHourCron`).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    days = _cron_weekdays(weekday)
    kind = Cron if hour.startswith("*") else FixedHourCron
    if day.startswith(("*", "?")) or weekday.startswith(("*", "?")):  # cron ORs only two restricted fields
        return kind(minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=zone)
    by_date = kind(minute=minute, hour=hour, day=day, month=month, timezone=zone)
    by_weekday = kind(minute=minute, hour=hour, month=month, day_of_week=days, timezone=zone)
    return OrTrigger([by_date, by_weekday])


def _cron_weekdays(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, slash, step = part.partition("/")
        every = int(step) if step.isdigit() else 0
        if slash and every < 1:
            raise ValueError(f"day-of-week step '{part}' is not a positive number")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, end = base.split("-", 1)
            first, last = _cron_day(start), _cron_day(end)
        else:
            first = _cron_day(base)
            last = 6 if slash else first
        if last < first:
            raise ValueError(f"day-of-week range '{base}' runs backwards")
        days.update(d % 7 for d in range(first, last + 1, every or 1))
    return "*" if len(days) == 7 else ",".join(_CRON_DAYS[d] for d in sorted(days))


def _cron_day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _CRON_DAYS:
        return _CRON_DAYS.index(token)
    raise ValueError(f"'{token}' is not a day of the week (0-7 or sun-sat)")


def validate(schedule: ScheduleConfig) -> None:
    trigger_for(schedule)


def check_zone(schedule: ScheduleConfig) -> None:
    """The time zone, also of a schedule that does not use it yet (manual): a wrong one was kept until the day the
    ingestion was scheduled. Input only: a stored spec with one still loads."""
    _zone(schedule)
    if schedule.timezone in _NOT_ZONES:
        raise ConfigError(
            f"'{schedule.timezone}' is not a time zone of a place (it is this server's setting or a placeholder).",
            "Use an IANA name such as UTC, Europe/Berlin or America/New_York.",
            field="schedule.timezone",
        )


def check_input(schedule: ScheduleConfig) -> None:
    """What the schedule's fields are read from, held to what a person types (input only: a stored spec that
    passed the looser checks of before still loads): a time is HH:MM with nothing after it, a weekday a day's name
    or its first three letters (`monkey` was Monday), numbers ASCII digits (`٢:00` was 02:00)."""
    if schedule.mode != "scheduled":
        return
    if schedule.frequency in ("daily", "weekly") and not _INPUT_TIME.fullmatch(schedule.time or ""):
        raise ConfigError(
            f"Time {schedule.time!r} is not a time of day.", "Use HH:MM, e.g. 02:00.", field="schedule.time"
        )
    day = (schedule.weekday or "").strip().lower()
    if schedule.frequency == "weekly" and day not in WEEKDAYS and day not in (n.lower() for n in _DAY_NAMES.values()):
        raise ConfigError(
            f"Weekday {schedule.weekday!r} is not a day of the week.",
            "Use mon, tue, wed, thu, fri, sat or sun (or the day's full name).",
            field="schedule.weekday",
        )
    expression = schedule.cron_expression or ""
    if schedule.frequency == "custom" and not expression.isascii():
        raise ConfigError(
            f"Cron expression {expression!r} has characters other than ASCII.",
            "Write the fields with the digits 0-9, names (mon, jan) and * , - /, e.g. '0 2 * * *'.",
            field="schedule.cron_expression",
        )


def check_fires(schedule: ScheduleConfig, now: datetime | None = None) -> None:
    """Raise unless a scheduled ingestion fires within `FIRE_HORIZON` of `now`.

    A cron trigger that never fires makes APScheduler search every year up to 9999 on each call; bounded by an end
    date the search stops at the horizon. Input only: a stored schedule is not re-judged as time passes.
    """
    trigger = trigger_for(schedule)
    now = now or datetime.now(UTC)
    if trigger is None or not end_crons(trigger, now + FIRE_HORIZON):
        return
    if trigger.get_next_fire_time(None, now) is None:
        raise ConfigError(
            f"Cron expression '{(schedule.cron_expression or '').strip()}' does not fire within the next 5 years.",
            "Use a schedule that fires at least once in 5 years, e.g. '0 2 * * *' (daily at 02:00).",
            field="schedule.cron_expression",
        )


def end_crons(trigger: BaseTrigger, end: datetime) -> bool:
    """End a cron trigger (or each of an OrTrigger's crons) at `end`, so that the search of one that never fires
    stops there; False, nothing changed, for other triggers."""
    members = trigger.triggers if isinstance(trigger, OrTrigger) else [trigger]
    crons = [t for t in members if isinstance(t, CronTrigger)]
    if len(crons) != len(members):
        return False
    for cron in crons:
        cron.end_date = end
    return True


def next_fire_times(
    schedule: ScheduleConfig, count: int = 5, after: datetime | None = None, ingestion_id: int | None = None
) -> list[datetime]:
    """The next `count` fire times (aware, in the schedule's zone) strictly after `after` (default now), of the
    ingestion `ingestion_id` when given (its continuous checks' phase)."""
    trigger = trigger_for(schedule, ingestion_id)
    if trigger is None:
        return []
    now = after or datetime.now(UTC)
    times: list[datetime] = []
    previous: datetime | None = None
    cursor = now
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, cursor)
        if fire is None:
            break
        if fire > now:
            times.append(fire.astimezone(UTC).astimezone(fire.tzinfo))  # 02:30 that a spring-forward skips: 03:30
        previous, cursor = fire, _just_after(fire)
    return times


def _just_after(moment: datetime) -> datetime:
    """One microsecond later, computed in UTC: wall-clock arithmetic in a zone ignores `fold` and would
    return the same repeated hour again at a DST fall-back."""
    return moment.astimezone(UTC) + timedelta(microseconds=1)


def describe(schedule: ScheduleConfig) -> str:
    """A sentence for people: 'Daily at 02:00 Europe/Berlin (01:00 UTC)'."""
    if schedule.mode == "manual":
        return "Manual only"
    if schedule.mode == "continuous":
        return f"Continuous: checks for new files every {schedule.interval_seconds} s"
    trigger_for(schedule)
    zone = schedule.timezone
    if schedule.frequency == "hourly":
        return f"Hourly at minute {schedule.minute or 0:02d}"
    utc = _utc_note(schedule)
    if schedule.frequency == "daily":
        return f"Daily at {schedule.time} {zone}{utc}"
    if schedule.frequency == "weekly":
        return f"Weekly on {_DAY_NAMES[_weekday(schedule)]} at {schedule.time} {zone}{utc}"
    return f"Cron '{schedule.cron_expression}' in {zone}"


def _utc_note(schedule: ScheduleConfig) -> str:
    if schedule.timezone == "UTC":
        return ""
    upcoming = next_fire_times(schedule, 1)
    return f" ({upcoming[0].astimezone(UTC):%H:%M} UTC)" if upcoming else ""


def last_fire_time(trigger: BaseTrigger, now: datetime, window: timedelta) -> datetime | None:
    """The latest fire time of `trigger` at or before `now`, looking back at most `window`.

    Every replica computes the same slot for the same fire, which makes the slot a key that
    deduplicates fires across replicas.
    """
    last = None
    fire = trigger.get_next_fire_time(None, now - window)
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, _just_after(fire))
    return last
