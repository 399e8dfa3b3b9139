"""JSON values Spark's own parser reads (integer, boolean and nested columns), checked value by value.

Spark's JSON reader in PERMISSIVE mode hands a record with one value its column cannot hold over whole: the value
is NULL, the other columns load (Spark 4's partial results) and the record's raw text is in the corrupt-record
column. The embedded engine (and Auto Loader's rescued data column) rescue only that value, under its key. Here the
raw text of such a record is parsed again per column: the column alone with a corrupt-record field says whether that
column failed; the value, parsed as a VARIANT, says what it was (a string stays a string). All of it runs only for
records that failed somewhere (a CASE WHEN), so clean records cost nothing more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.engines.spark.text_rules import canonical, json_value

_FAILED = "__al_failed"
_JSON_NUMBER_TOKEN = r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?=\s*[,}])"
# The embedded engine takes a whole number written with a fraction or exponent (`1.0`, `1e2`) into an integer
# column when a double holds it exactly (core/formats/conform.py); beyond 2**53 it is rescued.
_EXACT_DOUBLE_INTEGER = 2**53
_INTEGER_TYPES = ("byte", "short", "integer", "long")  # Spark's type names


@dataclass(frozen=True, slots=True)
class Checked:
    """A natively read column's value, whether it failed to read, and its rescued JSON (NULL when it fit)."""

    value: Any
    failed: Any
    rescued: Any


def check(raw: Any, key: str, current: Any, spark_type: Any, options: dict[str, str]) -> Checked:
    """The column read under `key` as `spark_type`, for a record whose raw text is `raw` (NULL: the record parsed
    cleanly and `current` stands). A value the type cannot hold is NULL and comes back as its JSON text."""
    from pyspark.sql.connect import functions as F
    from pyspark.sql.types import StringType, StructField, StructType, VariantType

    alone = StructType([StructField(key, spark_type), StructField(_FAILED, StringType())])
    probe = F.from_json(raw, alone, {**options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": _FAILED})
    failed = probe.getField(_FAILED).isNotNull()
    variant = F.from_json(raw, StructType([StructField(key, VariantType())])).getField(key)
    as_text = F.from_json(raw, StructType([StructField(key, StringType())])).getField(key)
    # A value a VARIANT cannot hold (nesting too deep) still comes back, as Spark's text of it.
    text = F.coalesce(exact_json(raw, key, variant), json_value(as_text))
    whole = _whole_number(text, variant, spark_type) if spark_type.typeName() in _INTEGER_TYPES else None
    kept = F.lit(None).cast(spark_type) if whole is None else whole
    # Each expression opens with the cheap test, alone in its first condition: Spark computes a subexpression shared
    # with a first condition for every row, so the parsing above stays in branches clean records never reach.
    clean = raw.isNull()
    value = F.when(clean, current).otherwise(F.when(failed, kept).otherwise(probe.getField(key)))
    rescued = F.when(clean, F.lit(None).cast("string")).otherwise(F.when(failed & kept.isNull(), text))
    return Checked(value.cast(spark_type), F.when(clean, F.lit(False)).otherwise(failed), rescued)


def exact_json(raw: Any, key: str, variant: Any) -> Any:
    """The JSON text of `key`'s value in `raw`: the VARIANT's JSON (strings quoted, integers and decimals exact), but
    for a number a VARIANT holds as a double (an exponent, more than 38 digits) the number as written in `raw`,
    which a double would round (`1e400` is not Infinity)."""
    from pyspark.sql.connect import functions as F

    as_json = F.to_json(variant)
    pattern = '"' + re.escape(key) + r'"\s*:\s*' + _JSON_NUMBER_TOKEN
    written = F.regexp_extract(raw, pattern, 1)
    same = written.try_cast("double") == F.try_variant_get(variant, "$", "double")
    double = F.schema_of_variant(variant) == "DOUBLE"
    return F.when(double & (written != "") & same, written).otherwise(as_json)


def _whole_number(text: Any, variant: Any, spark_type: Any) -> Any:
    """A number written with a fraction or exponent whose value is a whole number an integer column holds (as the
    embedded engine takes it), else NULL."""
    from pyspark.sql.connect import functions as F

    kind = F.schema_of_variant(variant)
    number = kind.startswith("DECIMAL") | (kind == "DOUBLE")
    whole = text.try_cast("decimal(38,0)")
    exact = number & (canonical(text) == canonical(whole.cast("string")))
    small = F.abs(whole) < F.lit(_EXACT_DOUBLE_INTEGER)
    return F.when(exact & small, whole.try_cast(spark_type.simpleString()))


def rescued_object(entries: list[tuple[str, Any]]) -> Any:
    """A JSON object string of the entries whose JSON text is not NULL; NULL when all are."""
    from pyspark.sql.connect import functions as F

    if not entries:
        return F.lit(None).cast("string")
    members = [F.concat(F.lit(json.dumps(name) + ":"), value) for name, value in entries]
    joined = F.concat_ws(",", *members)
    return F.when(joined != "", F.concat(F.lit("{"), joined, F.lit("}")))
