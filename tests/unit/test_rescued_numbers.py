"""Numbers keep the text they were written as wherever the Python path or `_rescued_data` writes JSON again: a
number in a `string` column, rescued values merged with more, ignored columns dropped from `_rescued_data`, unfit
partition values added to it (`json.loads` there made `1e400` inf, written `Infinity`, which is not JSON, and
`1.50` became `1.5`)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from core.formats.conform import RESCUED, drop_rescued_keys, json_text, loads, merge_rescued
from core.formats.partitions import rescue_text

NUMBERS = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True).filter(
    lambda text: text != "-0"  # an integer: Python's parser reads it as 0 (a known difference, docs/TYPES.md)
)


@given(st.lists(NUMBERS, min_size=1, max_size=4))
def test_parsed_numbers_are_written_back_as_they_were(texts: list[str]) -> None:
    document = '{"a":[' + ",".join(texts) + '],"b":{"c":' + texts[0] + "}}"
    assert json_text(loads(document)) == document
    assert json_text(loads(texts[0])) == texts[0]


def test_merged_rescued_values_keep_their_numbers() -> None:
    assert merge_rescued('{"a":1e400,"b":1.50}', {"c": 1}) == '{"a":1e400,"b":1.50,"c":1}'


def test_dropping_an_ignored_column_keeps_the_other_numbers() -> None:
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1, 2]), pa.array(['{"a":1e400,"b":1.50,"x":1}', '{"x":2}'])], names=["id", RESCUED]
    )
    assert drop_rescued_keys(batch, frozenset({"x"})).column(1).to_pylist() == ['{"a":1e400,"b":1.50}', None]


def test_unfit_partition_values_join_rescued_numbers_as_written() -> None:
    rescued = pa.array(['{"a":1e400,"b":[1.50]}', None])
    assert rescue_text(rescued, {"p": "x"}).to_pylist() == ['{"a":1e400,"b":[1.50],"p":"x"}', '{"p":"x"}']
