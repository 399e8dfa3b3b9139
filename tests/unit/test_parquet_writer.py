"""Which columns the embedded engine's Parquet writer keeps out of dictionaries (`core.engines.parquet_writer`)."""

from __future__ import annotations

import pyarrow as pa

from core.engines.parquet_writer import SAMPLE_MIN_ROWS, mostly_distinct_columns

ROWS = 4_000


def sample(**columns: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns)


def test_mostly_distinct_flat_columns_skip_the_dictionary() -> None:
    batch = sample(
        id=pa.array(range(ROWS)),
        key=pa.array([f"s-{i}" for i in range(ROWS)]),
        country=pa.array([("DE", "FR", "KR")[i % 3] for i in range(ROWS)]),
        half=pa.array([i % (ROWS // 2) for i in range(ROWS)]),  # exactly half distinct: kept
        over_half=pa.array([i % (ROWS // 2 + 1) for i in range(ROWS)]),
    )
    assert mostly_distinct_columns(batch) == ["id", "key", "over_half"]


def test_nulls_do_not_count_as_values() -> None:
    """A column mostly NULL, its few values distinct: too few values to judge, so it keeps the dictionary; with
    enough values, the share is of the values, not of the rows."""
    few = [i if i < SAMPLE_MIN_ROWS - 1 else None for i in range(ROWS)]
    many = [i if i < SAMPLE_MIN_ROWS * 2 else None for i in range(ROWS)]
    assert mostly_distinct_columns(sample(few=pa.array(few), many=pa.array(many))) == ["many"]


def test_nested_boolean_and_null_columns_keep_their_defaults() -> None:
    batch = sample(
        s=pa.array([{"x": i} for i in range(ROWS)]),
        items=pa.array([[i] for i in range(ROWS)]),
        flag=pa.array([i % 2 == 0 for i in range(ROWS)]),
        nothing=pa.nulls(ROWS),
    )
    assert mostly_distinct_columns(batch) == []


def test_a_small_sample_decides_nothing() -> None:
    assert mostly_distinct_columns(sample(id=pa.array(range(SAMPLE_MIN_ROWS - 1)))) == []
