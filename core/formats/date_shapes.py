"""Dates and times written in a shape the default rules keep as text (`2012/01/31`, `31.01.2012`, `01/31/2012 10:00`):
the Spark pattern that would read a sampled text column as a date or timestamp, for Test & Preview to suggest.

Only the ISO shapes are typed without a pattern (docs/TYPES.md); these are the usual others. Day and month are told
apart by a value over 12 in one position; when no value tells, both orders are offered and the user picks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from core.formats.patterns import strptime_format

_TIME = r"(?:(?P<tsep>[ T])(?P<time>\d{1,2}:\d{2}(?P<seconds>:\d{2})?))?"
_YEAR_FIRST = re.compile(r"^(?P<a>\d{4})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{1,2})" + _TIME + "$")
_YEAR_LAST = re.compile(r"^(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{4})" + _TIME + "$")
_MONTHS = 12


@dataclass(frozen=True, slots=True)
class DateShape:
    """What a column's sampled text needs: the option (`date_format` or `timestamp_format`) and the patterns that
    read every sampled value (two when the day and month order cannot be told)."""

    option: str
    patterns: tuple[str, ...]
    example: str


def date_shape(values: list[str]) -> DateShape | None:
    """The shape every one of `values` (non-empty text) has, or None when they are not all dates in one shape."""
    if not values:
        return None
    matches = [_YEAR_FIRST.match(v) or _YEAR_LAST.match(v) for v in values]
    if not all(matches) or len({(m.re, m["sep"], bool(m["time"]), bool(m["seconds"])) for m in matches if m}) != 1:
        return None
    first = matches[0]
    assert first is not None
    sep, clock = first["sep"], ":ss" if first["seconds"] else ""
    before_time = " " if first["tsep"] == " " else "'T'"
    time = f"{before_time}HH:mm{clock}" if first["time"] else ""
    if first.re is _YEAR_FIRST:
        orders = [f"yyyy{sep}MM{sep}dd"]
    else:
        day_first = any(int(m["a"]) > _MONTHS for m in matches if m)
        month_first = any(int(m["b"]) > _MONTHS for m in matches if m)
        if day_first and month_first:
            return None
        candidates = ((f"dd{sep}MM{sep}yyyy", month_first), (f"MM{sep}dd{sep}yyyy", day_first))
        orders = [order for order, ruled_out in candidates if not ruled_out]
    patterns = tuple(order + time for order in orders if _reads_all(order + time, values))
    if not patterns:
        return None
    return DateShape("timestamp_format" if time else "date_format", patterns, values[0])


def _reads_all(pattern: str, values: list[str]) -> bool:
    form = strptime_format(pattern)
    try:
        for value in values:
            datetime.strptime(value, form)
    except ValueError:
        return False
    return True
