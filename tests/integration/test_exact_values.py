"""Property: every value of every input record can be read back exactly from the Delta table.

Random JSON-lines and CSV files full of edge values (leading-zero and 20+ digit integers, 1e400, NaN/inf
text, floats with 17+ significant digits, unicode, empty strings, nested values, keys differing only by
case, ISO-8601 timestamps of several shapes, booleans, nulls) are spread over a random sequence of files
and 1-3 runs of one ingestion with default options (schema policy `rescue` or `auto_merge`). After the
runs, for every input record and every key, either

* the table column named exactly like the key holds a value equal to the input, compared canonically:
  a CSV field's exact text against str() of an integer; against a float, the number the text denotes (the
  float's shortest round-trip text must denote exactly that number; integer text must keep its digits;
  NaN/inf spellings match NaN/inf); booleans without regard to case; the same instant for timestamps
  (text without a zone is UTC, as the readers take it); the ISO text for dates. For JSON, equal as JSON
  values; a JSON number or boolean in a string column counts when the text denotes exactly that value
  (`AS_TEXT`, as Spark stores it). docs/TYPES.md's rules also count: a double holds the text that is its
  shortest or its 17-digit form, and CSV's missing-value markers (`NA`, `null`...) are NULL in typed columns; or
* that row's `_rescued_data` holds it under the key, exactly (the JSON value; for CSV the field's text).

A CSV empty string is written quoted (`""`), a NULL as an empty unquoted field. Timestamps have at most
six fractional digits (Delta keeps microseconds).

Every run must succeed: not failed, no error of kind "internal", no quarantined file (the files are well
formed), no file held for schema review except on an incompatible type change under auto_merge (which falls back
to pause: those files and the later runs' wait for review), every file processed, and every
record lands as exactly one row of its file.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import permutations
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from core.domain import FileStatus, RunStatus
from core.formats.text_types import TYPED_NULL_MARKERS
from tests.helpers import read_table, spec

RESCUED = "_rescued_data"
KEYS = ["id", "Id", "ID", "name", "val", "ts", "flag", "obj"]
"""Top-level keys: three differ only by case."""
NESTED_KEYS = ["a", "b", "c"]

# ---------------------------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Num:
    """A JSON number kept as its exact source text (1e400, 0.12345678901234567891, 123456789012345678901)."""

    text: str

    def __repr__(self) -> str:
        return self.text


def dump_json(value: Any) -> str:
    """JSON text of a generated value, numbers written exactly as their source text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Num):
        return value.text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


UNICODE = [
    "😀",
    "👩‍👩‍👧",  # ZWJ sequence
    "שלום",  # RTL
    "مرحبا بالعالم",  # RTL with a space
    "e\u0301",  # combining acute accent
    "a\u0308\u0323",  # two combining marks
    "\u200fRTL mark",
    "Ünïcödé ß",
    "日本語",
]
_TEXT_ALPHABET = st.characters(
    codec="utf-8", categories=["L", "M", "N", "P", "S", "Zs"], exclude_characters="\x85\u2028\u2029"
)

small_ints = st.integers(-(2**63), 2**63 - 1)
big_ints = st.one_of(
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**19, 10**20]),
    st.integers(10**19, 10**25).flatmap(lambda n: st.sampled_from([n, -n])),
)


@st.composite
def long_decimals(draw: st.DrawFn) -> str:
    """Decimal text with 17-21 significant digits (more than a double holds)."""
    digits = str(draw(st.integers(10**16, 10**21 - 1)))
    point = draw(st.integers(0, len(digits) - 1))
    text = (digits[:point] or "0") + "." + digits[point:]
    return ("-" if draw(st.booleans()) else "") + text


plain_floats = st.floats(allow_nan=False, allow_infinity=False).map(repr)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """ISO-8601 text: date-only, or date-time with or without fraction, naive, Z or an offset."""
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)))
    if draw(st.integers(0, 5)) == 0:
        return moment.date().isoformat()
    sep = draw(st.sampled_from(["T", "T", " "]))
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    digits = draw(st.sampled_from([0, 0, 1, 3, 6]))
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + draw(st.sampled_from(["", "Z", "+02:00", "-05:30", "+00:00"]))


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    small_ints.map(lambda n: Num(str(n))),
    big_ints.map(lambda n: Num(str(n))),
    plain_floats.map(Num),
    long_decimals().map(Num),
    st.sampled_from(["1e400", "-1e400"]).map(Num),
    st.sampled_from(UNICODE),
    st.just(""),
    st.text(_TEXT_ALPHABET, max_size=6),
    timestamps(),
)
nested = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(NESTED_KEYS), children, max_size=3),
    ),
    max_leaves=6,
).filter(lambda v: isinstance(v, list | dict))

JSON_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "int": small_ints.map(lambda n: Num(str(n))),
    "bigint": big_ints.map(lambda n: Num(str(n))),
    "zero_padded_text": st.integers(0, 99999).map(lambda n: f"0{n}"),
    "float": plain_floats.map(Num),
    "long_float": long_decimals().map(Num),
    "huge": st.sampled_from(["1e400", "-1e400"]).map(Num),
    "unicode": st.one_of(st.sampled_from(UNICODE), st.text(_TEXT_ALPHABET, max_size=8)),
    "empty": st.just(""),
    "timestamp": timestamps(),
    "bool": st.booleans(),
    "null": st.none(),
    "nested": nested,
}

CSV_KINDS: dict[str, st.SearchStrategy[str | None]] = {
    "int": small_ints.map(str),
    "zero_padded": st.integers(0, 99999).map(lambda n: f"0{n}"),
    "bigint": big_ints.map(str),
    "float": plain_floats,
    "long_float": long_decimals(),
    "nan_inf": st.sampled_from(["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "INF"]),
    "unicode": st.one_of(st.sampled_from(UNICODE), st.text(_TEXT_ALPHABET, min_size=1, max_size=8)),
    "empty": st.just(""),  # written quoted: an empty string, not NULL
    "timestamp": timestamps(),
    "bool": st.sampled_from(["true", "false", "True", "FALSE"]),
    "null": st.none(),  # written as an empty unquoted field
}


# ---------------------------------------------------------------------------------------------------------------------
# Scenarios


@dataclass
class InputFile:
    name: str
    records: list[dict[str, Any]]
    text: str


@dataclass
class Scenario:
    fmt: str
    policy: str
    runs: list[list[InputFile]] = field(default_factory=list)

    def __repr__(self) -> str:
        lines = [f"Scenario(format={self.fmt}, on_schema_change={self.policy})"]
        for number, files in enumerate(self.runs, 1):
            lines.append(f"  run {number}:")
            for f in files:
                lines.append(f"    {f.name}:")
                lines.extend(f"      | {line}" for line in f.text.splitlines())
        return "\n".join(lines)


def _csv_field(text: str | None, quote_all: bool) -> str:
    if text is None:
        return ""
    if quote_all or text == "" or any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(records: list[dict[str, str | None]], quote_all: bool) -> str:
    header = list(dict.fromkeys(k for r in records for k in r))
    lines = [",".join(header)]
    lines += [",".join(_csv_field(r.get(k), quote_all) for k in header) for r in records]
    return "\n".join(lines) + "\n"


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    fmt = draw(st.sampled_from(["json", "csv"]))
    policy = draw(st.sampled_from(["rescue", "auto_merge"]))
    kinds = JSON_KINDS if fmt == "json" else CSV_KINDS
    # Mostly one kind per key (typed columns), sometimes any kind (type clashes between rows and files).
    key_kind = {k: draw(st.sampled_from(sorted(kinds))) for k in KEYS}
    any_value = st.one_of(*kinds.values())

    def value_for(key: str) -> st.SearchStrategy[Any]:
        return st.one_of(kinds[key_kind[key]], kinds[key_kind[key]], kinds[key_kind[key]], any_value)

    scenario = Scenario(fmt, policy)
    for run in range(draw(st.integers(1, 3))):
        files = []
        for index in range(draw(st.integers(1, 2))):
            records = []
            for _ in range(draw(st.integers(1, 4))):
                keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
                records.append({k: draw(value_for(k)) for k in keys})
            name = f"r{run}-f{index}.{fmt}"
            if fmt == "json":
                text = "\n".join(dump_json(r) for r in records) + "\n"
            else:
                header = list(dict.fromkeys(k for r in records for k in r))
                for r in records:  # a row of only NULLs in a one-column file is a blank line: give it a value
                    if all(r.get(k) is None for k in header):
                        r[header[0]] = "x"
                text = csv_text(records, draw(st.booleans()))
            files.append(InputFile(name, records, text))
        scenario.runs.append(files)
    return scenario


# ---------------------------------------------------------------------------------------------------------------------
# Canonical comparison


def _instant(text: str) -> datetime | None:
    """The instant ISO-8601 text denotes (naive and date-only text taken as UTC), or None."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _exact_number(value: Any) -> Decimal | None:
    """The exact number a table or rescued value denotes (a float by its shortest round-trip text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def _same_double(text: str, actual: Any) -> bool:
    """docs/TYPES.md: a double holds `text` when the text is the double's shortest or its 17-digit (`%.17g`) form."""
    if not isinstance(actual, float) or not math.isfinite(actual):
        return False
    return Decimal(text) in (Decimal(actual), Decimal(repr(actual)), Decimal(f"{actual:.17g}"))  # exact value too


def _text_time_equal(text: str, actual: Any) -> bool:
    if isinstance(actual, datetime):
        moment = _instant(text)
        return moment is not None and moment == _as_utc(actual)
    if isinstance(actual, date):
        return actual.isoformat() == text
    return False


_PLAIN_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
"""Number text without leading zeros or exponent: the only JSON strings a decimal column may hold."""


def json_in_column(expected: Any, actual: Any) -> bool:
    """A JSON input value against a table value (struct fields absent in the input read as NULL)."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(actual, str) and not isinstance(expected, str):
        return _json_text_of(expected, actual)  # AS_TEXT: a text column (or element) holds the exact JSON text
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, Num):
        number = _exact_number(actual)
        return number is not None and (number == Decimal(expected.text) or _same_double(expected.text, actual))
    if isinstance(expected, str):
        if isinstance(actual, Decimal):  # docs/TYPES.md: number text read into a decimal column, digits kept
            return re.fullmatch(_PLAIN_NUMBER, expected) is not None and Decimal(expected) == actual
        return actual == expected if isinstance(actual, str) else _text_time_equal(expected, actual)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(json_in_column(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(json_in_column(expected.get(k), actual.get(k)) for k in set(expected) | set(actual))
    raise TypeError(type(expected))


def json_exact(expected: Any, rescued: Any) -> bool:
    """A JSON input value against a value parsed from `_rescued_data` (numbers as int/Decimal)."""
    if expected is None or rescued is None:
        return expected is None and rescued is None
    if isinstance(expected, bool) or isinstance(rescued, bool):
        return expected is rescued
    if isinstance(expected, Num):
        return isinstance(rescued, int | Decimal) and Decimal(rescued) == Decimal(expected.text)
    if isinstance(expected, str):
        return rescued == expected
    if isinstance(expected, list):
        return (
            isinstance(rescued, list)
            and len(rescued) == len(expected)
            and all(json_exact(e, r) for e, r in zip(expected, rescued, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(rescued, dict)
            and set(rescued) == set(expected)
            and all(json_exact(expected[k], rescued[k]) for k in expected)
        )
    raise TypeError(type(expected))


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_NAN_TEXT = {"nan"}
_INF_TEXT = {"inf", "infinity", "+inf", "+infinity"}


def csv_in_column(text: str | None, actual: Any, typed: bool = False) -> bool:
    """A CSV field's text (None: an empty unquoted field) against a table value; in a `typed` (not text) column
    an empty quoted field and the missing-value markers are NULL (docs/TYPES.md)."""
    if text is None or actual is None:
        return actual is None and (text is None or (typed and (text == "" or text in TYPED_NULL_MARKERS)))
    if isinstance(actual, bool):
        return text.lower() == str(actual).lower()
    if isinstance(actual, int):
        return text == str(actual)
    if isinstance(actual, float | Decimal):
        if isinstance(actual, float) and math.isnan(actual):
            return text.lower() in _NAN_TEXT
        if isinstance(actual, float) and math.isinf(actual):
            lowered = text.lower()
            return lowered.lstrip("-") in _INF_TEXT and lowered.startswith("-") == (actual < 0)
        if _INT_TEXT.fullmatch(text):  # integer text: its digits must come back (no leading zeros lost)
            return actual == int(actual) and str(int(actual)) == text.lstrip("+")
        try:
            return Decimal(text) == _exact_number(actual) or _same_double(text, actual)
        except InvalidOperation:
            return False
    if isinstance(actual, str):
        return actual == text
    if isinstance(actual, date):
        return _text_time_equal(text, actual)
    return False


def _parse_rescued(text: str | None) -> dict[str, Any] | str:
    if text is None:
        return {}
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=lambda c: f"<non-JSON constant {c}>")
    except ValueError as exc:
        return f"<not JSON: {exc}>"
    return value if isinstance(value, dict) else f"<not an object: {text}>"


def _json_text_of(expected: Any, actual: Any) -> bool:
    """True when a string column holds the JSON text of a non-string JSON value (its type is lost)."""
    if not isinstance(actual, str) or isinstance(expected, str) or expected is None:
        return False
    try:
        return json_exact(expected, json.loads(actual, parse_float=Decimal))
    except ValueError:
        return False


LOST = "lost"
"""Neither the column nor `_rescued_data` holds the value."""
AS_TEXT = "as_text"
"""A JSON number, boolean, array or object is in a string column as its JSON text: the digits are there but
not the JSON type (`1` and `"1"` read back the same). docs/TYPES.md calls this no schema change."""


def record_problems(
    fmt: str, record: dict[str, Any], row: dict[str, Any], columns: list[str], typed: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Why `record` is not reconstructable from `row`, as (LOST or AS_TEXT, explanation); empty when it is."""
    rescued = _parse_rescued(row.get(RESCUED))
    if isinstance(rescued, str):
        return [(LOST, f"{RESCUED} is {rescued}: {row.get(RESCUED)!r}")]
    problems = []
    for key, value in record.items():
        in_column = key in columns and (
            json_in_column(value, row[key]) if fmt == "json" else csv_in_column(value, row[key], key in typed)
        )
        if in_column:
            continue
        if key in rescued:
            if json_exact(value, rescued[key]) if fmt == "json" else rescued[key] == value:
                continue
        elif value is None and (key not in columns or row[key] is None):
            continue
        shown = dump_json(value) if fmt == "json" else repr(value)
        column = repr(row[key]) if key in columns else "<no such column>"
        kind = AS_TEXT if fmt == "json" and key in columns and _json_text_of(value, row[key]) else LOST
        problems.append(
            (
                kind,
                f"key {key!r}: input {shown}; column {column}; {RESCUED}[{key!r}] = "
                + (repr(rescued[key]) if key in rescued else "<absent>"),
            )
        )
    return problems


def _check_table(scenario: Scenario, uri: str, waiting: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    table = read_table(uri)
    columns = table.column_names
    rows_by_file: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        rows_by_file.setdefault(Path(row["_source_file"]).name, []).append(row)
    schema = "table schema: " + ", ".join(f"{f.name}: {f.type}" for f in table.schema)
    typed = frozenset(f.name for f in table.schema if not pa.types.is_string(f.type))
    missing: list[str] = []
    problems: list[tuple[str, str]] = []
    for files in scenario.runs:
        for f in files:
            if f.name in waiting:
                assert f.name not in rows_by_file, f"{f.name} is held for review but has rows in the table"
                continue
            rows = rows_by_file.get(f.name, [])
            if len(rows) != len(f.records):
                missing.append(f"{f.name}: {len(f.records)} records but {len(rows)} rows: {rows}")
                continue
            # Row order within a file is not part of the contract: any order that matches will do.
            first: list[tuple[str, str]] | None = None
            for order in permutations(rows):
                found = [
                    (kind, f"{f.name} record {i}: {text}")
                    for i, (record, row) in enumerate(zip(f.records, order, strict=True))
                    for kind, text in record_problems(scenario.fmt, record, row, columns, typed)
                ]
                if not found:
                    break
                first = first if first is not None else found
            else:
                problems.extend(first or [])
    # Separate assertions, so that Hypothesis reports (and shrinks) each kind of failure on its own.
    assert not missing, schema + "\n" + "\n".join(missing)
    lost = [text for kind, text in problems if kind == LOST]
    assert not lost, f"values neither in their column nor in {RESCUED}:\n{schema}\n" + "\n".join(lost)
    # AS_TEXT is accepted: a string column keeps a JSON number or boolean as its exact text, as Spark does
    # (docs/TYPES.md); `record_problems` has checked that the text denotes exactly the input value.


# ---------------------------------------------------------------------------------------------------------------------
# The test


def _run_summary(outcome: Any) -> str:
    errors = "; ".join(f"[{e.kind}] {e.message} (file {e.file})" for e in outcome.errors)
    return f"status={outcome.status} message={outcome.message!r} metrics={outcome.metrics} errors={errors}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
def test_every_input_value_is_reconstructable(services, tmp_path: Path, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    # `services` and `tmp_path` are shared by the examples: each example has its own folder and table.
    note(repr(scenario))
    table = f"exact_{uuid.uuid4().hex[:12]}"
    landing = tmp_path / table
    landing.mkdir()
    ingestion = services.ingestions.create(
        spec(
            str(landing),
            table=table,
            format={"type": scenario.fmt, "schema": {"on_schema_change": scenario.policy}},
        ),
        activate=True,
    )
    waiting: set[str] = set()
    for number, files in enumerate(scenario.runs, 1):
        for f in files:
            (landing / f.name).write_text(f.text, encoding="utf-8")
        outcome = services.runs.run_now(ingestion.name)
        summary = f"run {number}: {_run_summary(outcome)}"
        assert outcome.status != RunStatus.FAILED, summary
        assert not [e for e in outcome.errors if e.kind == "internal"], summary
        assert outcome.metrics.files_quarantined == 0, summary
        assert outcome.status == RunStatus.SUCCESS, summary
        held = _held(services, ingestion.id)
        if outcome.schema_pending:
            # Only an incompatible type change under auto_merge falls back to pause (PRODUCT.md); the held files
            # wait for review, and the ingestion with them: the later runs' files are not loaded either.
            assert scenario.policy == "auto_merge" and held, summary
            assert "incompatible type change" in outcome.message and "safe widening" not in outcome.message, summary
            waiting = held | {f.name for later in scenario.runs[number:] for f in later}
            break
        assert outcome.metrics.files_processed == len(files), summary
    _check_table(scenario, services.embedded.table_uri(ingestion.spec.destination), waiting)


def _held(services: Any, ingestion_id: int) -> set[str]:
    known = services.store.known_files(ingestion_id)
    return {Path(path).name for path, seen in known.items() if seen.status == FileStatus.HELD}
