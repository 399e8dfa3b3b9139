"""A commit another writer's beat, as Spark Connect reports it, is `concurrent_commit` (transient: the pipeline writes
the batch again), not a table error telling the user to fix the cluster.

The exceptions are stand-ins with the shape of pyspark's Spark Connect exceptions (`getCondition()` and the server's
message): a Delta or Iceberg conflict cannot be made to happen on demand on the local Spark server (two Spark
commits racing is timing), so the texts are those Delta and Iceberg raise."""

from __future__ import annotations

import pytest

from core.engines.spark.errors import translate


class _SparkConnectError(Exception):
    """pyspark.errors.exceptions.connect.SparkConnectGrpcException's shape: the error class and the message."""

    def __init__(self, condition: str | None, message: str):
        super().__init__(message)
        self._condition = condition

    def getCondition(self) -> str | None:
        return self._condition


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "DELTA_METADATA_CHANGED",
            "[DELTA_METADATA_CHANGED] MetadataChangedException: The metadata of the Delta table has been changed by a "
            "concurrent update. Please try the operation again.",
        ),
        (
            "DELTA_CONCURRENT_APPEND.WITHOUT_HINT",
            "[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] ConcurrentAppendException: Files were added to the root of the "
            "table by a concurrent update. Please try the operation again.",
        ),
        (
            "DELTA_CONCURRENT_TRANSACTION",
            "[DELTA_CONCURRENT_TRANSACTION] ConcurrentTransactionException: This error occurs when multiple streaming "
            "queries are using the same checkpoint to write into this table.",
        ),
        (None, "org.apache.iceberg.exceptions.CommitFailedException: Cannot commit: stale table metadata"),
    ],
)
def test_a_commit_beaten_by_another_writers_is_a_concurrent_commit(condition: str | None, message: str) -> None:
    error = translate(_SparkConnectError(condition, message), "c1", "loading batch 3")
    assert (error.code, error.transient) == ("concurrent_commit", True), error
    assert "cluster 'c1'" in error.message and "nothing of it was committed" in error.message


def test_other_table_failures_stay_table_errors() -> None:
    error = translate(_SparkConnectError("DELTA_TABLE_NOT_FOUND", "[DELTA_TABLE_NOT_FOUND] t"), "c1", "loading")
    assert error.code == "table_error"
