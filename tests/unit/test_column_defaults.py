"""A backfill default is stored exactly as given or refused, naming the column, before the table is touched."""

from __future__ import annotations

from typing import Any

import pytest

from core.column_defaults import stored_default
from core.errors import ConfigError

STORED = [
    ("bigint", 5, 5),
    ("bigint", "5", 5),
    ("decimal(5,2)", "-0", "0.00"),
    ("double", 1, 1.0),
    ("float", 0.1, pytest.approx(0.1)),  # the nearest float: not refused as inexact
    ("string", 1e20, "1e+20"),
    ("string", True, "true"),
    ("string", {"a": 1}, '{"a": 1}'),
    ("boolean", False, False),
    ("date", "2024-01-01", "2024-01-01"),
    ("timestamp", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
    ("decimal(10,2)", 1.5, "1.50"),
    ("decimal(10,2)", 0.1, "0.10"),
    ("struct<a:bigint,b:string>", {"a": 2}, {"a": 2, "b": None}),
    ("array<bigint>", [3, 4], [3, 4]),
    ("array<bigint>", [], []),
    ("struct<a:bigint,b:array<string>>", {"a": 1, "b": ["x"]}, {"a": 1, "b": ["x"]}),
    ("bigint", None, None),
]

REFUSED = [
    ("bigint", 1.5, "truncated"),
    ("bigint", "abc", "plain decimal text"),
    ("bigint", "0x10", "plain decimal text"),  # pyarrow's cast read it as 16
    ("double", "NaN", "plain decimal text"),
    ("bigint", True, "boolean"),
    ("bigint", 2**63, "range"),
    ("int", 2**40, "not in range"),
    ("double", 10**400, "range"),
    ("float", 1e300, "out of the column's range"),
    ("boolean", "true", "true or false"),
    ("boolean", 1, "true or false"),
    ("date", 20240101, "as text"),
    ("date", "2024-13-45", "ISO form"),
    ("timestamp", 1700000000, "as text"),
    ("timestamp", "yesterday", "ISO form, with its zone"),
    ("timestamp", "2024-05-01 10:00", "with its zone"),
    ("decimal(10,2)", 1.555, "data loss"),
    ("struct<a:bigint>", {"a": 1.5}, 'stored as {"a": 1}'),
    ("struct<a:bigint>", {"a": 2, "c": 1}, "stored as"),
    ("struct<a:bigint>", 5, "JSON object"),
    ("bigint", {"a": 1}, "JSON object"),
    ("bigint", [1], "JSON list"),
    ("array<bigint>", [3, "x"], "'x'"),
    ("struct<a:date>", {"a": "2024-01-01"}, "only numbers, text, booleans and null"),
    ("map<string,bigint>", {"a": 1}, "map"),
]


@pytest.mark.parametrize(("type_text", "given", "stored"), STORED)
def test_a_default_the_column_holds_is_kept(type_text: str, given: Any, stored: Any) -> None:
    assert stored_default("extra", given, type_text) == stored


@pytest.mark.parametrize(("type_text", "given", "reason"), REFUSED)
def test_a_default_the_column_would_change_is_refused_naming_it(type_text: str, given: Any, reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        stored_default("extra", given, type_text)
    assert refused.value.field == "default_values.extra"
    assert f"Column extra is {type_text}" in refused.value.message and reason in refused.value.message
    assert len(refused.value.message) < 300
