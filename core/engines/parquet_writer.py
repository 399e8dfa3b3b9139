"""The Parquet writer settings of the embedded engine's Delta writes, and which columns skip the dictionary.

Row groups of 128k rows and 64 MiB files bound what the Parquet writer buffers per file (delta-rs defaults measured
~400 MiB extra RSS on a 1 GiB CSV load).

Min/max statistics are cut to 64 bytes (arrow-rs's column index default). Untruncated, a 100 MB value went into the
Parquet footer (twice when it is a column chunk's min and max: pyarrow could not open the file) and into the Delta
log's file statistics (a 100 MB commit every reader loads). bench/bench_huge_value.py measures it.

Compression is named: WriterProperties without it writes uncompressed Parquet (delta-rs compresses with Snappy only
when given no properties at all), and Snappy is Spark's and Delta's default.

Dictionaries: the writer hashes every value of a column into a dictionary until the dictionary outgrows its page
limit, then falls back to plain encoding for the rest of the column chunk. A column of mostly distinct values (ids,
timestamps, session keys, amounts) pays for that hashing and gains nothing. The limit is 256 KiB (arrow-rs: 1 MiB;
writing a 1 GiB CSV's rows took 10.3 s with 1 MiB and 5.5 s with 256 KiB, bench/bench_writer.py), and a column
whose values are mostly distinct in the first batch written (`MOSTLY_DISTINCT`) skips the dictionary: on the same
rows 4.8 → 3.8 CPU seconds and 406 → 389 MiB of Parquet (six of its sixteen columns skip it). A column sampled
wrongly costs only size or time, never correctness: any encoding reads back the same values.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import ColumnProperties, WriterProperties

STATISTICS_TRUNCATE_LENGTH = 64
DICTIONARY_PAGE_BYTES = 256 * 1024
ROW_GROUP_ROWS = 131_072
TARGET_FILE_SIZE = 64 * 1024 * 1024
# A column whose share of distinct values in the sample exceeds this skips the dictionary; a sample of fewer rows
# says too little about the column (and a small write costs little either way).
MOSTLY_DISTINCT = 0.5
SAMPLE_MIN_ROWS = 1_000


def writer_properties(sample: pa.RecordBatch | None = None) -> WriterProperties:
    """The writer settings, with the dictionary turned off for the columns `sample` shows to be mostly distinct."""
    skipped = mostly_distinct_columns(sample) if sample is not None else []
    return WriterProperties(
        max_row_group_size=ROW_GROUP_ROWS,
        dictionary_page_size_limit=DICTIONARY_PAGE_BYTES,
        compression="SNAPPY",
        statistics_truncate_length=STATISTICS_TRUNCATE_LENGTH,
        column_properties={name: ColumnProperties(dictionary_enabled=False) for name in skipped} or None,
    )


def mostly_distinct_columns(sample: pa.RecordBatch) -> list[str]:
    """The top-level columns of flat type (nested columns are written leaf by leaf, and a boolean's dictionary
    holds two values) whose non-null values in `sample` are mostly distinct."""
    if sample.num_rows < SAMPLE_MIN_ROWS:
        return []
    names = []
    for column, field in zip(sample.columns, sample.schema, strict=True):
        if pa.types.is_nested(field.type) or pa.types.is_boolean(field.type) or pa.types.is_null(field.type):
            continue
        values = sample.num_rows - column.null_count
        if values >= SAMPLE_MIN_ROWS and _distinct(column) > MOSTLY_DISTINCT * values:
            names.append(field.name)
    return names


def _distinct(column: pa.Array) -> int:
    """The number of distinct values, or 0 for a type Arrow cannot count (dictionary, view or extension arrays:
    the column then keeps its dictionary)."""
    try:
        return int(pc.count_distinct(column).as_py())
    except pa.ArrowNotImplementedError:
        return 0


WRITER_PROPERTIES = writer_properties()
