"""The embedded engine hands the Delta writer batches of many rows, not one per small file (issue #14)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from core.engines.embedded import coalesced

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("_source_file", pa.string())])


def _batch(first: int, rows: int) -> pa.RecordBatch:
    ids = list(range(first, first + rows))
    return pa.RecordBatch.from_pydict({"id": ids, "_source_file": [f"f{i}" for i in ids]}, schema=SCHEMA)


def _batches(sizes: list[int]) -> list[pa.RecordBatch]:
    batches, first = [], 0
    for rows in sizes:
        batches.append(_batch(first, rows))
        first += rows
    return batches


def test_small_batches_are_joined_and_a_large_one_passes_as_it_is() -> None:
    large = _batch(1000, 50)
    out = list(coalesced([*_batches([3, 4, 5]), large, *_batches([2])], rows=10))
    assert [b.num_rows for b in out] == [12, 50, 2]
    assert out[1] is large


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=30), st.integers(min_value=1, max_value=64))
def test_every_row_comes_out_once_in_order(sizes: list[int], rows: int) -> None:
    out = list(coalesced(_batches(sizes), rows=rows))
    assert pa.Table.from_batches(out, SCHEMA).column("id").to_pylist() == list(range(sum(sizes)))
    assert all(b.num_rows >= rows for b in out[:-1])
    assert len(out) <= len(sizes)
