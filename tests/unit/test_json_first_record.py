"""Inference's one Arrow parse of a JSON-lines sample (core/formats/json_reader.py `_FirstRecord`) gives what the two
parses it replaced gave: Arrow's own typing, with the columns it typed as timestamps read again as text.

Generated samples mix keys in changing orders, strings that are ISO dates and timestamps (which Arrow types as
timestamps), numbers, nulls, nested objects, keys missing from the first line and keys whose kind changes between
lines (which Arrow refuses either way)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.config import FormatConfig
from core.errors import AutoloaderError
from core.formats.json_reader import _FirstRecord, infer_json_parsed

FORMAT = FormatConfig.model_validate({"type": "json"})

VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.floats(-10, 10, allow_nan=False).map(lambda v: round(v, 2)),
    st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01", "2024-05-01 10:00:00", "x", "", "2024-13-01"]),
    st.fixed_dictionaries({"a": st.sampled_from(["2024-05-01T10:00:00Z", "y"])}),
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from(["id", "at", "name", "day", "n"]), VALUES, max_size=5), min_size=1, max_size=6
)


def outcome(data: bytes, hint: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """What inference makes of the sample (schema, the parse handed on for loading), or the error it raises; without
    `hint`, `_FirstRecord` never hints (the code before it: Arrow's typing, then a second parse for timestamps)."""
    with monkeypatch.context() as patch:
        if not hint:
            patch.setattr(_FirstRecord, "of", classmethod(lambda cls, data: cls()))
        try:
            schema, parsed = infer_json_parsed(data, "sample.json", FORMAT)
        except AutoloaderError as exc:
            return ("error", exc.message)
    return schema, parsed


def check(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    hinted, plain = outcome(data, True, monkeypatch), outcome(data, False, monkeypatch)
    assert hinted[0] == plain[0]
    if isinstance(plain[1], pa.Table):
        assert isinstance(hinted[1], pa.Table) and hinted[1].equals(plain[1])
    else:
        assert hinted[1] == plain[1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, blank_first=st.booleans())
@example(
    records=[{"n": 1, "at": "2024-05-01T10:00:00Z", "name": "x"}, {"n": 2.5, "day": "2024-05-01", "name": None}],
    blank_first=False,
)
@example(records=[{"at": "2024-05-01T10:00:00Z"}, {"id": 1, "at": "2024-05-02T10:00:00Z"}], blank_first=True)
@example(
    records=[{"at": "x"}, {"at": 5}], blank_first=False
)  # a kind that changes: Arrow refuses the sample with the hint or without
def test_one_parse_infers_what_two_did(
    records: list[dict[str, Any]], blank_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = ("\n" if blank_first else "") + "".join(json.dumps(r) + "\n" for r in records)
    check(data.encode(), monkeypatch)


@pytest.mark.parametrize(
    "data",
    [
        b'[["at", "2024-05-01T10:00:00Z"]]\n',  # an array, not an object: no hint
        b'{"at": "2024-05-01T10:00:00Z", "at": 5}\n{"at": "2024-05-01T10:00:00Z"}\n',  # a key twice: no hint
        b'{"at": "2024-05-01T10:00:00Z"\n{"at": "2024-05-02T10:00:00Z"}\n',  # a first line that is not JSON
        b'{"at": "2024-05-01T10:00:00Z", "pad": "' + b"x" * 70_000 + b'"}\n{"at": "2024-05-02T10:00:00Z"}\n',  # long
        b' \r\n\t{"at": "2024-05-01T10:00:00Z", "n": 1}\r\n{"n": 2.5}\r\n',  # blank lead, CRLF line ends
    ],
)
def test_odd_first_lines_infer_as_before(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    check(data, monkeypatch)


def test_the_hint_keeps_the_order_of_first_appearance() -> None:
    data = b'{"n": 1, "at": "2024-05-01T10:00:00Z", "name": "x"}\n{"extra": 2, "n": 2}\n'
    schema, parsed = infer_json_parsed(data, "sample.json", FORMAT)
    assert schema.names == ["n", "at", "name", "extra"]
    assert parsed is not None and parsed.column_names == ["n", "at", "name", "extra"]
