"""Numbers, sizes and times as people read them."""

from __future__ import annotations

from datetime import UTC, datetime


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def human_count(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:,.0f}"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    now = now or datetime.now(UTC)
    delta = (moment - now).total_seconds()
    span = abs(delta)
    if span < 60:
        text = "less than a minute"
    elif span < 3600:
        text = f"{span / 60:.0f} minute{'s' if round(span / 60) != 1 else ''}"
    elif span < 86400 * 2:
        text = f"{span / 3600:.0f} hour{'s' if round(span / 3600) != 1 else ''}"
    else:
        text = f"{span / 86400:.0f} days"
    return f"in {text}" if delta > 0 else f"{text} ago"


def clock(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
