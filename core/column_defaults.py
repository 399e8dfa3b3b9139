"""The value a new column is backfilled with, as that column will store it, checked before the table is touched.

The engines' UPDATE casts whatever literal it is given: a fraction into a bigint was truncated, `20240101` into a
date became the year 57385 (the table could no longer be read), a number into a timestamp was read as
microseconds, and text a column cannot hold failed after the column had been added. So each default goes through
pyarrow's safe cast here, and one that would not be stored exactly as given is refused, naming the column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from typing import Any

import pyarrow as pa

from core.errors import ConfigError
from core.formats.types import parse_type


def stored_default(column: str, value: Any, type_text: str) -> Any:
    """`value` (a JSON value) as `column` of type `type_text` will hold it: text for text, ISO text for dates,
    times and timestamps, decimal text for decimals, and plain JSON values (numbers, booleans, text, lists,
    objects) otherwise. Raises ConfigError naming `default_values.<column>` when the column cannot hold it."""
    data_type = parse_type(type_text)
    if value is None:
        return None
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return value if isinstance(value, str) else json.dumps(value)
    try:
        stored = _converted(value, data_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError) as exc:
        raise _refused(column, value, type_text, _reason(exc, data_type)) from None
    if isinstance(stored, dt.date | dt.time):  # datetime is a date
        return stored.isoformat()
    if isinstance(stored, decimal.Decimal):
        return str(stored)
    if pa.types.is_floating(data_type):  # a float keeps the nearest value it has (0.1), but not an overflow
        if not math.isfinite(stored):
            raise _refused(column, value, type_text, "the number is out of the column's range")
        return stored
    if not _same(value, stored):
        raise _refused(column, value, type_text, f"it would be stored as {json.dumps(stored)}")
    return stored


def _converted(value: Any, data_type: pa.DataType) -> Any:
    _check_shape(value, data_type)
    if isinstance(value, dict | list):
        return pa.array([value], type=data_type)[0].as_py()
    if isinstance(value, str) and _numeric(data_type) and not _NUMBER_TEXT.fullmatch(value):
        raise TypeError("give a number, or its plain decimal text")
    if isinstance(value, float) and pa.types.is_decimal(data_type):
        value = repr(value)  # through text, so that 0.1 is 0.1 and not the double nearest to it
    return pa.array([value]).cast(data_type, safe=True)[0].as_py()


def _check_shape(value: Any, data_type: pa.DataType) -> None:
    """Refuse (TypeError) a JSON value of another kind than the column: pyarrow's cast would take some of them."""
    if pa.types.is_map(data_type) or pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        raise TypeError("a map or binary column cannot take a default here")
    if isinstance(value, bool) and not pa.types.is_boolean(data_type):
        raise TypeError("true and false fit only a boolean column")
    if pa.types.is_boolean(data_type) and not isinstance(value, bool):
        raise TypeError("give true or false")
    if pa.types.is_temporal(data_type) and not isinstance(value, str):
        raise TypeError("give a date, time or timestamp as text, e.g. 2024-01-01 or 2024-01-01T00:00:00Z")
    if pa.types.is_nested(data_type) and not _plain_type(data_type):
        raise TypeError("a nested default may hold only numbers, text, booleans and null")
    if pa.types.is_struct(data_type) != isinstance(value, dict):
        raise TypeError("a struct column takes a JSON object, and only a struct column does")
    if pa.types.is_nested(data_type) != isinstance(value, dict | list):
        raise TypeError("an array column takes a JSON list, and only an array column does")


_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
"""Number text as a person writes it: pyarrow's cast also took `0x10` (16) for an integer column."""


def _numeric(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type))


def _reason(exc: Exception, data_type: pa.DataType) -> str:
    if isinstance(exc, TypeError):
        return str(exc)
    if isinstance(exc, OverflowError):
        return "the number is out of the column's range"
    if pa.types.is_timestamp(data_type):
        zone = ", with its zone" if data_type.tz else ""
        return f"it is not a timestamp in ISO form{zone}, e.g. 2024-01-01T00:00:00{'Z' if data_type.tz else ''}"
    if pa.types.is_date(data_type):
        return "it is not a date in ISO form, e.g. 2024-01-01"
    return str(exc).split("\n")[0].split(": tried to convert")[0].rstrip(".")


def _plain_type(data_type: pa.DataType) -> bool:
    """Whether every leaf of a nested type is a number, text or boolean (what both engines' SQL literals take)."""
    if pa.types.is_struct(data_type):
        return all(_plain_type(data_type.field(i).type) for i in range(data_type.num_fields))
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return _plain_type(data_type.value_type)
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
    )


def _same(given: Any, stored: Any) -> bool:
    """Whether `stored` holds `given` unchanged; a struct's fields left out of `given` are stored as null."""
    if isinstance(given, dict):
        return (
            isinstance(stored, dict)
            and set(given) <= set(stored)
            and all(_same(v, stored[k]) for k, v in given.items())
            and all(stored[k] is None for k in set(stored) - set(given))
        )
    if isinstance(given, list):
        return (
            isinstance(stored, list)
            and len(given) == len(stored)
            and all(_same(g, s) for g, s in zip(given, stored, strict=True))
        )
    if isinstance(given, str) and not isinstance(stored, str):
        return True  # text parsed into the column's type: the cast refused anything it could not parse
    return bool(given == stored and isinstance(given, bool) == isinstance(stored, bool))


def _refused(column: str, value: Any, type_text: str, reason: str) -> ConfigError:
    shown = json.dumps(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConfigError(
        f"Column {column} is {type_text} and cannot hold the default {shown}: {reason}.",
        f"Give {column} a default of its type ({type_text}), or choose auto_merge to leave old rows empty.",
        field=f"default_values.{column}",
    )
