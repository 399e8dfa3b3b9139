"""Rules about the embedded engine's warehouse: no source may overlap it (core/guards.TablesLocation), and the
store's failures become typed errors in one plain line (core/engines/warehouse_errors)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import SourceConfig
from core.engines.warehouse_errors import plain_reason, store_failure
from core.errors import OutOfSpace, StorageAuthError, StorageUnavailable, says_out_of_space
from core.guards import TablesLocation

MINIO = "http://127.0.0.1:9000"


def _s3(path: str, endpoint: str | None = MINIO) -> SourceConfig:
    return SourceConfig(type="s3", path=path, endpoint_url=endpoint)


@pytest.mark.parametrize(
    ("path", "overlaps"),
    [
        ("s3://lake/", True),  # the whole bucket holds the warehouse
        ("s3://lake/wh/", True),
        ("s3://lake/wh/main/raw/t/", True),  # inside a table
        ("s3://lake/wh-landing/", False),  # a sibling whose name starts alike
        ("s3://lake/incoming/", False),
        ("s3://other/wh/", False),
    ],
)
def test_an_s3_source_overlaps_the_warehouse_by_folder(path: str, overlaps: bool) -> None:
    assert TablesLocation("s3://lake/wh", MINIO).overlaps(_s3(path)) is overlaps


def test_buckets_of_one_name_on_two_services_do_not_overlap() -> None:
    tables = TablesLocation("s3://lake/wh", MINIO)
    assert not tables.overlaps(_s3("s3://lake/", "http://127.0.0.1:9999"))
    assert not tables.overlaps(_s3("s3://lake/", None))  # AWS itself
    assert TablesLocation("s3a://lake/wh").overlaps(_s3("s3://lake/", None))


@pytest.mark.parametrize(
    ("warehouse_endpoint", "source_endpoint"),
    [
        (MINIO, "http://localhost:9000/"),
        ("http://LOCALHOST:9000", MINIO),
        (None, "https://s3.amazonaws.com"),
        (None, "https://s3.eu-west-1.amazonaws.com"),
        ("https://s3.us-east-1.amazonaws.com", None),
        ("https://minio.example:443", "https://minio.example"),
        (MINIO, "http://127.1:9000"),  # found by the third attack round: each passes the egress rule as loopback
        (MINIO, "http://localhost.:9000"),
        (MINIO, "http://[::ffff:127.0.0.1]:9000"),
        (MINIO, "http://2130706433:9000"),
        (MINIO, "http://0x7f000001:9000"),
        (MINIO, "http://127.0.0.2:9000"),
        (MINIO, "http://0.0.0.0:9000"),
    ],
)
def test_one_service_spelled_two_ways_is_one_service(warehouse_endpoint: str | None, source_endpoint: str) -> None:
    """Found by an attack helper: the endpoints were compared as strings, so the guard let the same store through."""
    assert TablesLocation("s3://lake/wh", warehouse_endpoint).overlaps(_s3("s3://lake/", source_endpoint))


def test_an_azure_source_in_either_form_is_compared() -> None:
    tables = TablesLocation("abfss://data@acct.dfs.core.windows.net/wh")
    azure = {"type": "azure_blob", "credentials": {"type": "account_key", "account_key": "a2V5"}}
    assert tables.overlaps(SourceConfig(**azure, path="https://acct.blob.core.windows.net/data/"))
    assert tables.overlaps(SourceConfig(**azure, path="abfss://data@acct.dfs.core.windows.net/wh/t/"))
    assert not tables.overlaps(SourceConfig(**azure, path="https://other.blob.core.windows.net/data/"))
    assert not tables.overlaps(SourceConfig(**azure, path="https://acct.blob.core.windows.net/landing/"))


def test_an_upper_case_scheme_is_compared() -> None:
    assert TablesLocation("S3://lake/wh", MINIO).overlaps(_s3("s3://lake/"))


def test_local_and_other_stores(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    tables = TablesLocation(str(warehouse))
    assert tables.overlaps(SourceConfig(type="local", path=str(tmp_path)))
    assert tables.overlaps(SourceConfig(type="local", path=str(warehouse / "main" / "raw" / "t")))
    assert not tables.overlaps(SourceConfig(type="local", path=str(tmp_path / "landing")))
    relative = TablesLocation(os.path.relpath(warehouse))  # the default, ./data/warehouse, is relative
    assert relative.overlaps(SourceConfig(type="local", path=str(tmp_path)))
    gcs = TablesLocation("gs://lake/wh")
    assert gcs.overlaps(SourceConfig(type="gcs", path="gs://lake/"))
    assert not gcs.overlaps(_s3("s3://lake/", None))
    azure = TablesLocation("abfss://data@acct.dfs.core.windows.net/wh")
    assert azure.overlaps(SourceConfig(type="azure_blob", path="abfss://data@acct.dfs.core.windows.net/"))
    assert not azure.overlaps(SourceConfig(type="azure_blob", path="abfss://data@acct.dfs.core.windows.net/in/"))


DELTA_FORBIDDEN = (
    "Kernel error -> The operation lacked the necessary privileges to complete for path wh/t/_delta_log/x\n"
    "          \x1b[31m↳\x1b[0m Error performing GET http://127.0.0.1:1/wh/t?X-Amz-Signature=abcdef123 - Forbidden"
)
DELTA_DOWN = (
    "Kernel error -> Generic S3 error\n   \x1b[31m↳\x1b[0m Error performing list request\n"
    "   \x1b[31m↳\x1b[0m Connection refused (os error 111)"
)


def test_refused_credentials_are_terminal_and_name_the_settings() -> None:
    error = store_failure(OSError(DELTA_FORBIDDEN), "s3://lake/wh/t", {"AWS_ENDPOINT_URL": MINIO})
    assert isinstance(error, StorageAuthError)
    assert "s3://lake/wh/t" in error.message and MINIO in error.message
    assert "AUTOLOADER_WAREHOUSE_STORAGE_OPTIONS" in error.action
    assert "\x1b" not in error.message and "abcdef123" not in error.message


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            "unauthorized_logins",
            DELTA_DOWN.replace("list request", "GET http://127.0.0.1:1/b/wh/unauthorized_logins/x"),
        ),
        ("forbidden", "Error performing GET http://127.0.0.1:1/b/wh/forbidden/_delta_log - Connection refused"),
    ],
)
def test_a_table_named_like_a_refusal_is_not_a_refusal(table: str, message: str) -> None:
    """Found by an attack helper: the words were looked for in the whole message, paths and URLs included."""
    error = store_failure(OSError(message), f"s3://b/wh/{table}", {})
    assert isinstance(error, StorageUnavailable)


def test_a_table_named_like_a_timeout_is_not_a_timeout() -> None:
    message = "Generic LocalFileSystem error: /tmp/wh/api_timeouts/part-0.parquet not found"
    assert store_failure(OSError(message), "/tmp/wh/api_timeouts", {}) is None


def test_a_store_that_does_not_answer_is_transient() -> None:
    error = store_failure(OSError(DELTA_DOWN), "s3://lake/wh/t", {})
    assert isinstance(error, StorageUnavailable) and error.transient
    assert store_failure(ValueError("Schema error: field id is int64, not string"), "s3://lake/wh/t", {}) is None
    missing = "Generic S3 error: Error performing GET http://127.0.0.1:1/wh/t/part-0.parquet - status: 404 Not Found"
    assert store_failure(OSError(missing), "s3://lake/wh/t", {}) is None  # a table missing a file: not a retry


@pytest.mark.parametrize(
    "message",
    [
        "Failed to parse parquet: External: Generic LocalFileSystem error: Unable to copy data to file: "
        "No space left on device (os error 28)",  # delta-rs on a full local disk (tests/integration/test_out_of_space)
        "Generic LocalFileSystem error: Unable to open file /wh/t/part-1.parquet: Disk quota exceeded (os error 122)",
        "Generic MicrosoftAzure error: Error performing PUT - status: 507 Insufficient Storage",
    ],
)
def test_a_full_store_is_out_of_space_and_transient(message: str) -> None:
    error = store_failure(OSError(message), "/mnt/lake/wh/main/raw/t", {})
    assert isinstance(error, OutOfSpace) and error.transient and error.code == "out_of_space"
    assert "/mnt/lake/wh/main/raw/t" in error.message and "Free space" in error.action


def test_a_warehouse_named_like_a_full_disk_is_not_one() -> None:
    location = "/tmp/no space left on device/main/raw/t"
    message = f"Generic LocalFileSystem error: {location}/part-0.parquet not found"
    assert store_failure(OSError(message), location, {}) is None


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("(sqlite3.OperationalError) database or disk is full", True),
        ('could not extend file "base/16384/16397": No space left on device', True),  # PostgreSQL
        ("(psycopg2.OperationalError) connection to server at 127.0.0.1 failed: Connection refused", False),
        ("(sqlite3.OperationalError) database is locked", False),
    ],
)
def test_the_databases_words_for_a_full_disk(text: str, full: bool) -> None:
    assert says_out_of_space(text) is full


def test_plain_reason_hides_secret_option_values() -> None:
    text = plain_reason(OSError("bad key s3cr3t-value in request"), {"AWS_SECRET_ACCESS_KEY": "s3cr3t-value"})
    assert text == "OSError: bad key *** in request"


def test_the_warehouse_endpoint_may_come_from_the_environment() -> None:
    """Found by an attack helper: with the endpoint only in AWS_ENDPOINT_URL (which delta-rs reads), the guard took
    the warehouse for AWS and let a source on the same local server reload the tables' own files."""
    from app.bootstrap import warehouse_endpoint

    assert warehouse_endpoint({"AWS_ALLOW_HTTP": "true"}, {"AWS_ENDPOINT_URL": MINIO}) == MINIO
    assert warehouse_endpoint({"AWS_ENDPOINT_URL": MINIO}, {"AWS_ENDPOINT_URL": "http://other:1"}) == MINIO
    assert warehouse_endpoint({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}) is None
    tables = TablesLocation("s3://lake/wh", warehouse_endpoint({}, {"AWS_ENDPOINT_URL_S3": MINIO}))
    assert tables.overlaps(_s3("s3://lake/"))
