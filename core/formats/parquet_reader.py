"""Parquet files into Arrow batches, row group by row group."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from core.formats.conform import RESCUED, conform_batch
from core.formats.nesting import MAX_COLUMN_DEPTH, deepest_column
from core.formats.streams import ARROW_ERRORS, DEEP_ACTION, FileReadStats, Source, bad_file, empty_file

_PARQUET_BATCH_ROWS = 65_536


def parquet_file(source: Source, path: str) -> pq.ParquetFile:
    try:
        parquet = pq.ParquetFile(source)
        deep = deepest_column(parquet.schema_arrow)
    except ARROW_ERRORS as exc:
        if source.error is not None:
            raise
        if source.bytes == 0 or "size is 0" in str(exc):
            raise empty_file(path) from None
        raise bad_file(path, "Parquet", _reason(exc)) from None
    if deep is not None:
        raise bad_file(
            path,
            "Parquet",
            f"column '{deep}' nests structs and lists more than {MAX_COLUMN_DEPTH} levels deep, more than a table "
            "column can hold",
            DEEP_ACTION,
        )
    return parquet


def _reason(exc: BaseException) -> BaseException | str:
    """Arrow's words for a corrupt file, said in the file's terms where Arrow's are a library's."""
    text = str(exc)
    if "deserialize thrift" in text:
        return "its metadata (the footer at the end of the file) is corrupt"
    if "magic bytes not found" in text:
        return "it does not end with the Parquet marker (PAR1): it is cut short or not a Parquet file"
    return exc


def read_parquet(source: Source, path: str, schema: pa.Schema, stats: FileReadStats) -> Iterator[pa.RecordBatch]:
    data_schema = pa.schema([f for f in schema if f.name != RESCUED])
    parquet = parquet_file(source, path)
    for raw in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        batch = conform_batch(raw, data_schema)
        stats.records += batch.num_rows
        yield batch
