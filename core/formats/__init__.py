"""File formats for the embedded engine: decompression, type names, type unification and readers.

Importing this package tells pyarrow not to import pandas when it converts a Python value (`arrow_pandas`):
every reader is under it, so the setting is made before any of them runs (none converts a value at import).
"""

from core.formats.arrow_pandas import skip_pandas_probe
from core.formats.compression import detect_compression, open_decompressed
from core.formats.conform import drop_rescued_keys
from core.formats.readers import (
    MALFORMED,
    RESCUED,
    FileReadStats,
    cast_array,
    conform_batch,
    csv_columns,
    infer_file_schema,
    json_text,
    output_schema,
    read_file,
)
from core.formats.types import VALID_TYPES, apply_hints, parse_type, schema_from_json, schema_to_json, type_name
from core.formats.unify import (
    normalize_schema,
    normalize_type,
    nulls_to_string,
    nulls_to_table_types,
    unify_schemas,
    unify_types,
)

skip_pandas_probe()

__all__ = [
    "MALFORMED",
    "RESCUED",
    "VALID_TYPES",
    "FileReadStats",
    "apply_hints",
    "cast_array",
    "conform_batch",
    "csv_columns",
    "detect_compression",
    "drop_rescued_keys",
    "infer_file_schema",
    "json_text",
    "normalize_schema",
    "normalize_type",
    "nulls_to_string",
    "nulls_to_table_types",
    "open_decompressed",
    "output_schema",
    "parse_type",
    "read_file",
    "schema_from_json",
    "schema_to_json",
    "type_name",
    "unify_schemas",
    "unify_types",
]
