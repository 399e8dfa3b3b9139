"""JSON numbers arrive exactly on both engines (docs/TYPES.md): a number its column cannot hold exactly is NULL there
and rescued as the number it was written as, never rounded (Spark's own JSON parser reads `1e400` into a double
column as Infinity and a 20-digit integer as a rounded double)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.domain import RunStatus
from tests.contract.test_engines import Harness, _lines, _with_policy, database_url, engine  # noqa: F401  (the suite's fixtures)
from tests.helpers import spec

LATER = [
    '{"id": 2, "amount": 1e400, "big": 1}',
    '{"id": 3, "amount": 12345678901234567890, "big": 2}',
    '{"id": 4, "amount": 0.1000000000000000055511151231257827, "big": 3}',
    '{"id": 5, "amount": 1e-400, "big": 4}',
    '{"id": 6, "amount": 2, "big": 123456789012345678901234567890}',
    '{"id": 7, "amount": "abc", "big": 1.5}',
    '{"id": 8, "amount": -0.5, "big": 5, "extra": 1e400}',
    '{"id": 9, "amount": 2.5e-3, "big": 1e2, "extra": {"a": [1, 2.50]}}',
]


@pytest.mark.reading
def test_json_numbers_are_exact_or_rescued_as_written(
    engine: Harness,  # noqa: F811
    tmp_path: Path,
) -> None:
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "amount": 1.5, "big": 12345678901234567890123}])
    ing = engine.create(_with_policy(spec(str(landing)), "rescue"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    schema = engine.services.engines.for_ingestion(ing).table_schema(ing.spec.destination)
    assert (schema.field("amount").type, schema.field("big").type) == (pa.float64(), pa.decimal128(38, 0))
    later = landing / "b.json"
    later.write_text("\n".join(LATER) + "\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    assert outcome.metrics.bad_records == 0
    rows = {r["id"]: r for r in engine.table(ing).to_pylist() if r["id"] != 1}
    got = {i: (r["amount"], _number(r["big"]), _rescued(r["_rescued_data"])) for i, r in rows.items()}
    path = str(later)
    assert got == {
        2: (None, 1, {"amount": D("1e400"), "_file_path": path}),
        3: (None, 2, {"amount": 12345678901234567890, "_file_path": path}),
        4: (None, 3, {"amount": D("0.1000000000000000055511151231257827"), "_file_path": path}),
        5: (None, 4, {"amount": D("1e-400"), "_file_path": path}),
        6: (2.0, 123456789012345678901234567890, None),
        7: (None, None, {"amount": "abc", "big": D("1.5"), "_file_path": path}),
        8: (-0.5, 5, {"extra": D("1e400"), "_file_path": path}),
        9: (0.0025, 100, {"extra": {"a": [1, D("2.5")]}, "_file_path": path}),
    }


def _number(value: Any) -> Any:
    return None if value is None else int(value)


def _rescued(text: str | None) -> Any:
    """Rescued values with numbers read exactly (Decimal), so a rounded number or a number rescued as a string
    (`"1e400"`) does not compare equal to the number written."""
    return None if text is None else json.loads(text, parse_float=D)


@pytest.mark.reading
def test_json_keys_spark_and_delta_refuse_load_into_sanitised_columns(engine: Harness, tmp_path: Path) -> None:  # noqa: F811
    """Keys with a space, dot, `=` or parentheses land in columns named with `_` (the key is recorded), on both
    engines, run after run (on Spark they were read under the stored name: all NULL, the values lost)."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "a b": 1, "x.y": "s", "k=v": 2.5, "(p)": True}])
    ing = engine.create(spec(str(landing)))
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    _lines(landing / "b.json", [{"id": 2, "a b": 3, "x.y": "t", "k=v": 1.25, "(p)": False}])
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = sorted(engine.table(ing).to_pylist(), key=lambda r: r["id"])
    got = [(r["a_b"], r["x_y"], r["k_v"], r["_p_"], r["_rescued_data"]) for r in rows]
    assert got == [(1, "s", 2.5, True, None), (3, "t", 1.25, False, None)]


@pytest.mark.reading
def test_a_key_differing_only_by_case_is_rescued(engine: Harness, tmp_path: Path) -> None:  # noqa: F811
    """A later file spells a column's key differently by case: rescued on the embedded engine; on Spark (keys
    matched by exact spelling) its file is quarantined naming the key, never loaded without the value."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "Name": "n"}])
    ing = engine.create(spec(str(landing)))
    assert engine.run(ing).status == RunStatus.SUCCESS
    _lines(landing / "b.json", [{"id": 2, "name": "m"}])
    outcome = engine.run(ing)
    if engine.kind == "spark":
        (error,) = outcome.errors
        assert error.kind == "quarantined" and "'name' (column 'Name')" in error.message, outcome.errors
        assert [r["id"] for r in engine.table(ing).to_pylist()] == [1]
        return
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = sorted(engine.table(ing).to_pylist(), key=lambda r: r["id"])
    assert [(r["Name"], _rescued(r["_rescued_data"])) for r in rows] == [
        ("n", None),
        (None, {"name": "m", "_file_path": str(landing / "b.json")}),
    ]


@pytest.mark.reading
def test_a_number_in_a_text_column_is_its_json_text(engine: Harness, tmp_path: Path) -> None:  # noqa: F811
    """A JSON number in a `string` column is stored as written (`1.50`, not `1.5`; `1E5`, not `100000.0`), as
    Spark's parser keeps it; the embedded engine stored its double's text. Rescued numbers keep theirs too."""
    landing = tmp_path / "in"
    _lines(landing / "a.json", [{"id": 1, "code": "a", "n": 1}])
    ing = engine.create(_with_policy(spec(str(landing)), "rescue"))
    assert engine.run(ing).status == RunStatus.SUCCESS
    later = landing / "b.json"
    texts = ["1.50", "1e20", "1E5", "7", "0.1", "-2.500e-3", "123456789012345678901234567890"]
    lines = [f'{{"id": {i}, "code": {text}, "n": 2}}' for i, text in enumerate(texts, start=2)]
    lines.append('{"id": 20, "code": "b", "n": 2.50, "extra": 1.50}')
    later.write_text("\n".join(lines) + "\n")
    outcome = engine.run(ing)
    assert outcome.status == RunStatus.SUCCESS, (outcome.message, outcome.errors)
    rows = {r["id"]: r for r in engine.table(ing).to_pylist() if r["id"] != 1}
    assert {i: rows[i]["code"] for i in range(2, 2 + len(texts))} == dict(enumerate(texts, start=2))
    rescued = rows[20]["_rescued_data"]
    assert '"n":2.50' in rescued.replace(" ", "") and '"extra":1.50' in rescued.replace(" ", ""), rescued
