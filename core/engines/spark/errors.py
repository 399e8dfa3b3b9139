"""Spark Connect errors translated into the product's typed errors (message for users, action, technical detail).

Matching is on the error class / gRPC status the client exposes and, where the server gives neither, on the text:
the pyspark exception classes are only importable when pyspark is installed, so nothing here imports them.
"""

from __future__ import annotations

import re

from core.engines.base import CONFLICT_ACTION
from core.errors import (
    AutoloaderError,
    ConcurrentCommit,
    ConfigError,
    SourceNotFound,
    TableError,
    TerminalError,
    TransientError,
)

SPARK_AVRO_PACKAGE = "org.apache.spark:spark-avro_2.13"
DELTA_PACKAGE = "io.delta:delta-spark_2.13"
ICEBERG_PACKAGE = "org.apache.iceberg:iceberg-spark-runtime-<Spark major.minor>_2.13"
# The newest Spark line Iceberg publishes a runtime for (app/spark_jars.py ICEBERG_*: 4.1 with Iceberg 1.12.0);
# a runtime built for another Spark line fails at its first catalog call (ICEBERG_RUNTIME_MISMATCH).
ICEBERG_NEWEST_SPARK = "4.1"
ICEBERG_NEWEST_RUNTIME = "org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:1.12.0"
ICEBERG_RUNTIME_MISMATCH = re.compile(
    r"org[./]apache[./]iceberg\S*.*(can not implement|IncompatibleClassChangeError|NoSuchMethodError|"
    r"AbstractMethodError|NoClassDefFoundError)|(IncompatibleClassChangeError|NoSuchMethodError|AbstractMethodError|"
    r"NoClassDefFoundError).*org[./]apache[./]iceberg",
    re.DOTALL,
)

FORMAT_PACKAGES = {"avro": SPARK_AVRO_PACKAGE, "delta": DELTA_PACKAGE, "iceberg": ICEBERG_PACKAGE}

# A commit another writer's commit beat, in a way both cannot stand: nothing of it was committed (Delta's optimistic
# concurrency: `DELTA_CONCURRENT_APPEND`, `DELTA_METADATA_CHANGED`, …; Iceberg's CommitFailedException).
CONCURRENT_COMMIT = re.compile(
    r"DELTA_CONCURRENT_\w+|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED|Concurrent(Append|DeleteRead|DeleteDelete|"
    r"Transaction|Write)Exception|MetadataChangedException|ProtocolChangedException|"
    r"org\.apache\.iceberg\.exceptions\.CommitFailedException"
)

STALE_SESSION_MARKERS = (
    "NO_ACTIVE_SESSION",
    "INVALID_HANDLE.SESSION_NOT_FOUND",
    "INVALID_HANDLE.SESSION_CLOSED",
    "INVALID_HANDLE.SESSION_CHANGED",
    "SESSION_CLOSED",
)


class ClusterUnreachable(TransientError):
    code = "cluster_unreachable"


class ClusterAuthError(TerminalError):
    code = "cluster_auth_failed"


class FormatNotSupported(ConfigError):
    code = "format_not_supported"


class MalformedInput(TerminalError):
    code = "malformed_input"


def error_class(exc: BaseException) -> str:
    """The Spark error class (`PATH_NOT_FOUND`, …) of a pyspark exception, or ''."""
    method = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if not callable(method):
        return ""
    try:
        value = method()
    except Exception:  # older clients raise for errors without a class
        return ""
    return str(value) if value else ""


def grpc_status(exc: BaseException) -> str:
    """The gRPC status name (`UNAVAILABLE`, …) of a Spark Connect client error, or ''."""
    method = getattr(exc, "getGrpcStatusCode", None)
    if callable(method):
        try:
            return str(getattr(method(), "name", "") or "")
        except Exception:
            return ""
    return ""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split("\n", 1)[0][:500] if text else type(exc).__name__


def is_stale_session(exc: BaseException) -> bool:
    """The server no longer knows this session (it restarted or expired it): a new session fixes it."""
    text = f"{error_class(exc)} {exc}"
    return any(marker in text for marker in STALE_SESSION_MARKERS)


def is_unreachable(exc: BaseException) -> bool:
    if grpc_status(exc) in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return True
    text = str(exc)
    return "failed to connect" in text.lower() or "Connection refused" in text or "StatusCode.UNAVAILABLE" in text


def is_auth_failure(exc: BaseException) -> bool:
    if grpc_status(exc) in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return True
    text = str(exc)
    return "UNAUTHENTICATED" in text or "PERMISSION_DENIED" in text or "Invalid authentication token" in text


def missing_format(exc: BaseException) -> str | None:
    """The data source the cluster lacks (`delta`, `avro`, …), if that is what the error says."""
    text = str(exc)
    cls = error_class(exc)
    if "AVRO_DATA_SOURCE_NOT_ENABLED" in cls or "Failed to find data source: avro" in text:
        return "avro"
    if "DATA_SOURCE_NOT_FOUND" in cls or "DATA_SOURCE_NOT_FOUND" in text or "Failed to find data source" in text:
        for name in ("delta", "iceberg", "avro", "xml"):
            if f"data source: {name}" in text or f"data source: `{name}`" in text:
                return name
        return "unknown"
    if "CATALOG_NOT_FOUND" in cls or "Catalog 'iceberg" in text:
        return None
    return None


def spark_line(version: str) -> str:
    """'4.2' for '4.2.0' (Iceberg publishes one runtime per Spark major.minor)."""
    return ".".join(version.split(".")[:2])


def _newer_than(line: str, other: str) -> bool:
    try:
        return tuple(int(p) for p in line.split(".")) > tuple(int(p) for p in other.split("."))
    except ValueError:
        return False


def iceberg_runtime_error(cluster: str, spark_version: str, exc: BaseException | None = None) -> FormatNotSupported:
    """The cluster cannot run Iceberg: no runtime loaded, or one built for another Spark line. Names the runtime the
    cluster's Spark needs, and says when Iceberg has not published one for that Spark yet (Spark 4.2 today)."""
    line = spark_line(spark_version)
    package = f"org.apache.iceberg:iceberg-spark-runtime-{line}_2.13"
    detail = redact(f"{type(exc).__name__}: {exc}")[:4000] if exc is not None else ""
    if _newer_than(line, ICEBERG_NEWEST_SPARK):
        return FormatNotSupported(
            f"Cluster '{cluster}' runs Spark {spark_version}, for which Iceberg has published no runtime yet "
            f"({package} does not exist; the newest, {ICEBERG_NEWEST_RUNTIME}, runs only on Spark "
            f"{ICEBERG_NEWEST_SPARK}), so it cannot write Iceberg tables.",
            f"Write Iceberg tables through a Spark {ICEBERG_NEWEST_SPARK} cluster that loads {ICEBERG_NEWEST_RUNTIME} "
            "with an Iceberg catalog (docs/SPARK.md), or set this cluster's table format to delta.",
            detail=detail,
        )
    return FormatNotSupported(
        f"Cluster '{cluster}' (Spark {spark_version}) cannot write Iceberg tables: it has no Iceberg runtime for "
        f"Spark {line}.",
        f"Add {package} (spark.jars.packages) with an Iceberg catalog and "
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions to the cluster and restart it, or choose "
        "another table format.",
        detail=detail,
    )


def format_error(fmt: str, cluster: str, exc: BaseException | None = None) -> FormatNotSupported:
    package = FORMAT_PACKAGES.get(fmt)
    need = f"the package {package} (matching the cluster's Spark version)" if package else f"support for '{fmt}'"
    return FormatNotSupported(
        f"Cluster '{cluster}' cannot read or write '{fmt}': it has no {fmt} data source.",
        f"Add {need} to the cluster (spark.jars.packages) and restart it, or choose another format.",
        detail=f"{type(exc).__name__}: {exc}" if exc is not None else "",
    )


_TOKEN = re.compile(r"(token=)[^;&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Technical details are stored on runs: never with the cluster's token in them."""
    return _TOKEN.sub(r"\1***", text)


def translate(exc: BaseException, cluster: str, what: str) -> AutoloaderError:
    """A pyspark / gRPC exception raised while doing `what` on `cluster` as a typed, user-facing error."""
    if isinstance(exc, AutoloaderError):
        return exc
    detail = redact(f"{type(exc).__name__}: {exc}")[:4000]
    cls = error_class(exc)
    if is_auth_failure(exc):
        return ClusterAuthError(
            f"Cluster '{cluster}' refused the connection: authentication failed.",
            "Check the cluster's token (edit the cluster and enter the token again).",
            detail=detail,
        )
    if is_unreachable(exc):
        return ClusterUnreachable(
            f"Cluster '{cluster}' is not reachable while {what}.",
            "Check that the Spark Connect server is running and the URL (sc://host:port) is right, then try again "
            "(a run that meets this is retried automatically).",
            detail=detail,
        )
    fmt = missing_format(exc)
    if fmt is not None:
        return format_error(fmt, cluster, exc)
    if ICEBERG_RUNTIME_MISMATCH.search(str(exc)):
        return FormatNotSupported(
            f"Cluster '{cluster}' failed while {what}: its Iceberg runtime was built for another Spark version.",
            f"Load the iceberg-spark-runtime-<Spark major.minor>_2.13 matching the cluster's Spark (Iceberg has "
            f"runtimes up to Spark {ICEBERG_NEWEST_SPARK}: {ICEBERG_NEWEST_RUNTIME}), or set the cluster's table "
            "format to delta.",
            detail=detail,
        )
    if CONCURRENT_COMMIT.search(cls) or CONCURRENT_COMMIT.search(str(exc)):
        return ConcurrentCommit(
            f"Another writer committed to the table on cluster '{cluster}' while {what}, and both commits cannot "
            f"stand: {first_line(exc)}; nothing of it was committed.",
            CONFLICT_ACTION,
            detail=detail,
        )
    if "PATH_NOT_FOUND" in cls or "Path does not exist" in str(exc):
        return SourceNotFound(
            f"A path does not exist on cluster '{cluster}': {first_line(exc)}",
            "Check that the cluster sees the same files as the service (same path or bucket) and that "
            "they were not deleted.",
            detail=detail,
        )
    if "TABLE_OR_VIEW_NOT_FOUND" in cls or "SCHEMA_NOT_FOUND" in cls or "CATALOG_NOT_FOUND" in cls:
        return TableError(
            f"Cluster '{cluster}': {first_line(exc)}",
            "Check the destination catalog and database exist in the cluster's catalog.",
            detail=detail,
        )
    if "MALFORMED" in cls or "Malformed records" in str(exc) or "FAILED_READ_FILE" in cls:
        return MalformedInput(
            f"Cluster '{cluster}' could not parse the input while {what}: {first_line(exc)}",
            "Check the file format options (format, delimiter, multiline, row tag) against the files.",
            detail=detail,
        )
    return TableError(
        f"Cluster '{cluster}' failed while {what}: {first_line(exc)}",
        "See the error details; fix the cause on the cluster or in the ingestion's settings and retry.",
        detail=detail,
    )
