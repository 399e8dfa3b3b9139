"""A 100 MB single value loads into a table every reader can open, with the value exact.

Untruncated Parquet statistics put the value twice (min and max) into the data file's footer, which pyarrow then
refused to open ("Couldn't deserialize thrift"). RSS and seconds are figures for bench/bench_huge_value.py, not
asserts here.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from tests.conftest import clean_env, run_cli
from tests.helpers import spec

VALUE_BYTES = 100_000_000


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """About the table the engine writes, not the metadata database: SQLite only."""
    return f"sqlite:///{state_dir / 'meta.db'}"


@pytest.fixture(scope="module")
def huge_value() -> str:
    """Base64 text of random bytes, so compression does not shrink it away."""
    return base64.b64encode(random.Random(6).randbytes(VALUE_BYTES * 3 // 4)).decode("ascii")


def load_with_cli(services: Any, settings: Any, landing: Path, fmt: str) -> str:
    ingestion = services.ingestions.create(spec(str(landing), table=f"huge_{fmt}", format={"type": fmt}), activate=True)
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
    }
    result = run_cli("run", ingestion.name, env=env, timeout=600)
    assert result.returncode == 0 and "quarantined" not in result.stdout, result.stdout + result.stderr
    return str(services.embedded.table_uri(ingestion.spec.destination))


def assert_readable_and_exact(uri: str, value: str) -> None:
    for data_file in Path(uri).rglob("*.parquet"):
        metadata = pq.read_metadata(data_file)  # raised on the 100 MB footer before the fix
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                stats = metadata.row_group(group).column(column).statistics
                if stats is not None and stats.has_min_max:
                    longest = max(len(v) if isinstance(v, str | bytes) else 0 for v in (stats.min, stats.max))
                    assert longest <= 1024, f"{metadata.schema.column(column).name}: statistics not truncated"
    table = DeltaTable(uri).to_pyarrow_table()
    blobs = dict(zip(table.column("id").to_pylist(), table.column("blob").to_pylist(), strict=True))
    assert blobs[2] == "small"
    assert blobs[1] == value  # exact, not the truncated statistic
    log = b"".join(p.read_bytes() for p in (Path(uri) / "_delta_log").glob("*.json"))
    assert len(log) < 64 * 1024, "the Delta log's file statistics carry the huge value"


@pytest.mark.slow
def test_a_100_mb_json_string_loads_readable_and_exact(
    services: Any, settings: Any, tmp_path: Path, huge_value: str
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    rows = [{"id": 2, "blob": "small"}, {"id": 1, "blob": huge_value}]
    (landing / "huge.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert_readable_and_exact(load_with_cli(services, settings, landing, "json"), huge_value)


@pytest.mark.slow
def test_a_100_mb_csv_field_loads_readable_and_exact(
    services: Any, settings: Any, tmp_path: Path, huge_value: str
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "huge.csv").write_text(f"id,blob\n2,small\n1,{huge_value}\n")
    assert_readable_and_exact(load_with_cli(services, settings, landing, "csv"), huge_value)


def _longest_statistic(uri: str) -> int:
    longest = 0
    for data_file in Path(uri).rglob("*.parquet"):
        metadata = pq.read_metadata(data_file)
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                stats = metadata.row_group(group).column(column).statistics
                if stats is not None and stats.has_min_max:
                    longest = max(
                        longest, *(len(v) if isinstance(v, str | bytes) else 0 for v in (stats.min, stats.max))
                    )
    return longest


def test_table_rewrites_keep_statistics_truncated(tmp_path: Path) -> None:
    """The other writes of the embedded engine (a type widening's rewrite, a column fill) use the same writer
    settings as the loads. delta-rs truncates by default, but a WriterProperties without
    `statistics_truncate_length` turns that off (the cause of the 100 MB footers): this fails if the shared settings
    ever lose it."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from core.config import DestinationConfig
    from core.engines.embedded import EmbeddedEngine
    from core.engines.parquet_writer import WRITER_PROPERTIES

    engine = EmbeddedEngine(str(tmp_path / "warehouse"))
    destination = DestinationConfig(table="wide")
    uri = engine.table_uri(destination)
    data = pa.table({"n": pa.array([1, 2], pa.int32()), "text": ["x" * 3000, "y"], "_source_file": ["a", "b"]})
    write_deltalake(uri, data, writer_properties=WRITER_PROPERTIES)
    engine.widen_columns(destination, [pa.field("n", pa.int64())])
    assert _longest_statistic(uri) <= 64
    engine.fill_column(destination, "text", "z" * 3000)
    assert _longest_statistic(uri) <= 64
