"""JSON values a column cannot hold are rescued value by value on both engines (docs/TYPES.md): the misfit value goes
to `_rescued_data` under its key, as written (a string stays a string, a number keeps its digits), with the file's
path, and the record's other columns load. On Spark, a record with an integer, boolean or nested misfit was rescued
whole (every raw key in `_rescued_data`, loaded values repeated there, a nested value half loaded)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.domain import RunStatus
from tests.contract.test_engines import Harness, _lines, _with_policy, database_url, engine  # noqa: F401  (the suite's fixtures)
from tests.helpers import spec

WHOLE_RECORD_ON_SPARK = (
    "on Spark a record with a value that does not fit is rescued whole (its raw text), not value by value: the "
    "column-by-column re-parse (b1e2446) made plans too deep for Spark Connect ('Exceeded upb_DecodeOptions_MaxDepth' "
    "with partition columns) and Spark 4.1's code generator, so it was taken out; docs/TYPES.md"
)


def _whole_record_on_spark(harness: Harness) -> None:
    """Skipped, not run as an expected failure: each case takes ~90 s on the local cluster in CI."""
    if harness.kind == "spark":
        pytest.skip(WHOLE_RECORD_ON_SPARK)


MISFITS = [
    '{"id": 2, "n": "abc", "flag": true, "s": "x"}',
    '{"id": 3, "n": 1.5, "flag": false, "s": "x"}',
    '{"id": 4, "n": 1.0, "flag": true, "s": "x"}',
    '{"id": 5, "n": 12345678901234567890, "flag": true, "s": "x"}',
    '{"id": 6, "n": true, "flag": "yes", "s": "x"}',
    '{"id": 7, "n": "5", "flag": "true", "s": "x"}',
    '{"id": 8, "n": {"a": 1}, "flag": 1, "s": "x"}',
    '{"id": 9, "n": [1, 2], "flag": [true], "s": "x"}',
    '{"id": 10, "n": 1e2, "flag": null, "s": "x"}',
    '{"id": 11, "n": -0, "flag": "TRUE", "s": "x"}',
    '{"id": 12, "n": 9007199254740993.0, "flag": false, "s": "x"}',
    '{"id": 13, "n": "", "flag": "", "s": "x"}',
    '{"id": 14, "n": 1e400, "flag": false, "s": "x"}',
]


@pytest.mark.reading
def test_integer_and_boolean_misfits_are_rescued_value_by_value(
    engine: Harness,  # noqa: F811
    tmp_path: Path,
) -> None:
    _whole_record_on_spark(engine)
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "n": 1, "flag": True, "s": "y"}])
    ing = engine.create(_with_policy(spec(str(landing)), "rescue"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    later = landing / "b.json"
    later.write_text("\n".join(MISFITS) + "\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.bad_records == 0
    rows = {r["id"]: r for r in engine.table(ing).to_pylist() if r["id"] != 1}
    got = {i: (r["n"], r["flag"], r["s"], _rescued(r["_rescued_data"])) for i, r in rows.items()}
    path = {"_file_path": str(later)}
    assert got == {
        2: (None, True, "x", {"n": "abc", **path}),
        3: (None, False, "x", {"n": D("1.5"), **path}),
        4: (1, True, "x", None),
        5: (None, True, "x", {"n": 12345678901234567890, **path}),
        6: (None, None, "x", {"n": True, "flag": "yes", **path}),
        7: (None, None, "x", {"n": "5", "flag": "true", **path}),
        8: (None, None, "x", {"n": {"a": 1}, "flag": 1, **path}),
        9: (None, None, "x", {"n": [1, 2], "flag": [True], **path}),
        10: (100, None, "x", None),
        11: (0, None, "x", {"flag": "TRUE", **path}),
        12: (None, False, "x", {"n": D("9007199254740993.0"), **path}),
        13: (None, None, "x", {"n": "", "flag": "", **path}),
        14: (None, False, "x", {"n": D("1e400"), **path}),
    }


@pytest.mark.reading
def test_nested_misfits_are_rescued_as_the_whole_value(
    engine: Harness,  # noqa: F811
    tmp_path: Path,
) -> None:
    _whole_record_on_spark(engine)
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "p": {"a": 1}, "l": [1]}])
    ing = engine.create(_with_policy(spec(str(landing)), "rescue"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    later = landing / "b.json"
    later.write_text(
        "\n".join(
            [
                '{"id": 2, "p": {"a": "x"}, "l": [1, 2]}',
                '{"id": 3, "p": {"a": 1.5}, "l": [1, "x"]}',
                '{"id": 4, "p": "str", "l": 7}',
                '{"id": 5, "p": {"a": 3}, "l": [true]}',
            ]
        )
        + "\n"
    )
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = sorted(engine.table(ing).to_pylist(), key=lambda r: r["id"])
    path = {"_file_path": str(later)}
    assert [(r["p"], r["l"], _rescued(r["_rescued_data"])) for r in rows] == [
        ({"a": 1}, [1], None),
        (None, [1, 2], {"p": {"a": "x"}, **path}),
        (None, None, {"p": {"a": D("1.5")}, "l": [1, "x"], **path}),
        (None, None, {"p": "str", "l": 7, **path}),
        ({"a": 3}, None, {"l": [True], **path}),
    ]


@pytest.mark.reading
def test_keys_differing_only_by_case_in_one_batch_are_rescued_or_set_aside(engine: Harness, tmp_path: Path) -> None:  # noqa: F811
    """Both spellings in the first run's files: the first is the column. The embedded engine rescues the others under
    their own spelling; Spark, whose JSON reader matches keys by exact spelling, would read them under no column
    (their values were lost, the run succeeded), so their file is quarantined with the keys named."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "Name": "n"}])
    _lines(landing / "b.json", [{"id": 2, "name": "m", "NAME": 3, "Id": {"x": 1}}])
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    rows = sorted(engine.table(ing).to_pylist(), key=lambda r: r["id"])
    if engine.kind == "spark":
        assert [(r["id"], r["Name"], r["_rescued_data"]) for r in rows] == [(1, "n", None)]
        (error,) = outcome.errors
        assert error.kind == "quarantined" and error.file == str(landing / "b.json"), outcome.errors
        assert "'name' (column 'Name')" in error.message and "only by case" in error.message, error.message
        return
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    path = {"_file_path": str(landing / "b.json")}
    assert [(r["id"], r["Name"], _rescued(r["_rescued_data"])) for r in rows] == [
        (1, "n", None),
        (2, None, {"name": "m", "NAME": 3, "Id": {"x": 1}, **path}),
    ]


def _rescued(text: str | None) -> Any:
    """Rescued values with numbers read exactly (Decimal): a rounded number, or a number rescued as a string, does
    not compare equal to the value written."""
    return None if text is None else json.loads(text, parse_float=D)
