"""Spark-style date and timestamp patterns (`yyyy-MM-dd HH:mm:ss`) as strptime formats.

Users copy these patterns from Spark and Auto Loader jobs (`dateFormat`, `timestampFormat`). Only the
letters with one unambiguous meaning are accepted; anything else is refused when the ingestion is saved,
never half-applied at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError

_LETTERS: dict[str, str] = {
    "yyyy": "%Y",
    "yy": "%y",
    "MM": "%m",
    "M": "%m",
    "dd": "%d",
    "d": "%d",
    "HH": "%H",
    "H": "%H",
    "hh": "%I",
    "h": "%I",
    "mm": "%M",
    "m": "%M",
    "ss": "%S",
    "s": "%S",
    "a": "%p",
    "MMM": "%b",
    "MMMM": "%B",
    "EEE": "%a",
    "EEEE": "%A",
    "XXX": "%z",
    "XX": "%z",
    "X": "%z",
    "Z": "%z",
    "ZZ": "%z",
    "xxx": "%z",
    "xx": "%z",
}
_LITERALS = set(" -/:.,_T")
SUPPORTED = "yyyy yy MM M dd d HH H hh h mm m ss s S..SSSSSS a MMM MMMM EEE EEEE XXX XX X Z, 'quoted text'"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern: the strptime format, and whether it reads fractions of a second (`%f`)."""

    strptime: str
    fraction: bool
    zone: bool


def _refuse(pattern: str, why: str) -> ConfigError:
    return ConfigError(
        f"unsupported date/time pattern '{pattern}': {why}",
        f"Use Spark pattern letters ({SUPPORTED}), e.g. yyyy-MM-dd HH:mm:ss.",
        field="format.options",
    )


def parse_pattern(pattern: str) -> Pattern:
    """The strptime form of a Spark pattern; raises ConfigError naming what is not supported."""
    out: list[str] = []
    fraction = zone = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            if end == -1:
                raise _refuse(pattern, "a quote is not closed")
            out.append(pattern[i + 1 : end].replace("%", "%%") or "'")
            i = end + 1
            continue
        j = i
        while j < len(pattern) and pattern[j] == ch:
            j += 1
        run = pattern[i:j]
        if ch == "S":
            if len(run) > 9:
                raise _refuse(pattern, "at most 9 fraction digits (S)")
            out.append("%f")
            fraction = True
        elif run in _LETTERS:
            out.append(_LETTERS[run])
            zone = zone or _LETTERS[run] == "%z"
        elif ch.isalpha():
            raise _refuse(pattern, f"'{run}' is not a supported pattern letter")
        elif ch in _LITERALS:
            out.append(run)
        else:
            raise _refuse(pattern, f"'{ch}' must be quoted ('{ch}')")
        i = j
    if not out:
        raise _refuse(pattern, "it is empty")
    return Pattern("".join(out), fraction, zone)


def strptime_format(pattern: str) -> str:
    """The strptime format of a Spark pattern (ConfigError when unsupported)."""
    return parse_pattern(pattern).strptime
