"""One local Spark Connect server for the whole test session (started on first use, stopped at exit).

It is started with a token, so tests can check a wrong token too. Shared by tests/contract and
tests/integration through a module-level singleton (a session fixture in two modules would start two).
It loads the Delta/S3/Avro jars from a per-machine cache (fetched from Maven Central the first time; .ci/test
fetches them before pytest): `$AUTOLOADER_SPARK_JARS`, else ~/.cache/autoloader-tests/spark-jars.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TOKEN = "test-spark-token"


def jar_cache() -> Path:
    return Path(os.environ.get("AUTOLOADER_SPARK_JARS", Path.home() / ".cache" / "autoloader-tests" / "spark-jars"))


@dataclass(frozen=True, slots=True)
class SparkServer:
    port: int
    token: str
    root: Path

    @property
    def url(self) -> str:
        """`localhost`, not 127.0.0.1: the client sends a token in clear text only to localhost."""
        return f"sc://localhost:{self.port}"


_lock = threading.Lock()
_server: SparkServer | None = None


def spark_settings_of_tests() -> dict[str, str]:
    """Spark settings of every server the tests start.

    - Session time zone America/New_York: a self-managed cluster's sessions take its JVM's zone, and the product's
      results must not depend on it (its sessions set UTC; session.py `_MEANING`). Without that, timestamp
      partition values and date-to-timestamp widening changed (tests in tests/contract/test_engines.py).
    - Code generation off (expressions interpreted): the tests run many short queries, each on a few rows, often in
      a new session; compiling generated Java code for each is most of their CPU on a 2-core machine, and their
      results do not depend on it. Measured in the session notes. AUTOLOADER_TEST_SPARK_CODEGEN=1 keeps Spark's
      defaults there (what a user's cluster runs)."""
    zone = {"spark.sql.session.timeZone": "America/New_York"}
    if os.environ.get("AUTOLOADER_TEST_SPARK_CODEGEN") == "1":
        return zone
    return {**zone, "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def scratch_root(prefix: str) -> Path:
    """A temporary directory for a Spark server's files, removed when the test process exits.

    Registered before the server's own stop, so (atexit runs last-in first-out) it is removed after the server
    stopped. A standalone cluster leaves about 1.4 GB there per run."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, True)
    return root


def spark_server() -> SparkServer:
    """Start the shared server once; skip when pyspark is not installed."""
    global _server
    pytest.importorskip("pyspark.sql.connect.session", reason="pyspark not installed: pip install -e '.[spark]'")
    from app.local_spark import LocalClusterManager, free_port

    with _lock:
        if _server is None:
            root = scratch_root("autoloader-spark-")
            manager = LocalClusterManager(root, jar_cache=jar_cache(), extra_conf=spark_settings_of_tests())
            port = free_port()
            manager.ensure_running("test", port, TOKEN)
            atexit.register(manager.stop_all)
            _server = SparkServer(port, TOKEN, root)
        return _server


def register_cluster(services: Any, name: str, table_format: str) -> int:
    """The shared server registered as a cluster of `services` writing `table_format` tables; returns its id."""
    from app.db.models import ClusterCreate

    server = spark_server()
    body = ClusterCreate(name=name, connect_url=server.url, token=server.token, table_format=table_format)
    return int(services.clusters.create(body).id)
