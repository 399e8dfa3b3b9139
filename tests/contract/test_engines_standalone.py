"""The core engine conformance cases on a real multi-process cluster (#13 item 5): a Spark standalone master, two
workers and a Spark Connect server attached to it (tests/spark_standalone.py), writing Delta tables. The other
cases run on the single-JVM local server (test_engines.py); these are the ones where executors in other processes
could change the outcome: incremental exactly-once loads, merge, schema evolution, and a crash between the table
write and the ledger update.

The test functions are test_engines.py's own, collected here with this module's `engine` fixture.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.test_engines import (
    Harness,
    database_url,  # noqa: F401  (the fixture: SQLite metadata)
    test_crash_between_table_write_and_ledger_update,
    test_incremental_loads_never_duplicate,
    test_merge_upserts_or_says_clearly_why_not,
    test_new_column_under_auto_merge,
)
from tests.spark_standalone import standalone_cluster

CASES = (
    test_incremental_loads_never_duplicate,
    test_merge_upserts_or_says_clearly_why_not,
    test_new_column_under_auto_merge,
    test_crash_between_table_write_and_ledger_update,
)
pytestmark = pytest.mark.slow


@pytest.fixture
def engine(services: Any) -> Harness:
    from app.db.models import ClusterCreate

    server = standalone_cluster().server
    body = ClusterCreate(name="standalone", connect_url=server.url, token=server.token, table_format="delta")
    cluster = services.clusters.create(body)
    return Harness("spark", services, cluster.id, f"t_{uuid.uuid4().hex[:10]}", "delta")


def test_tasks_run_in_the_two_worker_processes(services: Any) -> None:
    """The cluster is what it claims: tasks run in two executor JVMs, neither of them the driver's."""
    from pyspark.sql import SparkSession

    cluster = standalone_cluster()
    spark = SparkSession.builder.remote(f"{cluster.server.url}/;token={cluster.server.token}").getOrCreate()
    pid = "java_method('java.lang.ProcessHandle', 'current')"
    try:
        assert spark.conf.get("spark.master") == cluster.master_url
        executors = {row[0] for row in spark.range(0, 64, 1, 8).selectExpr(f"{pid} AS pid").distinct().collect()}
    finally:
        spark.stop()
    assert cluster.driver_pid is not None
    assert len(executors) == 2 and str(cluster.driver_pid) not in executors, (cluster.driver_pid, executors)
