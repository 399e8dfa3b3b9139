"""The local Spark cluster: a Spark Connect server this process starts itself from the installed pyspark package, on
loopback, with a persistent catalog (Hive metastore in Derby) and warehouse under `<data dir>/spark/cluster-<id>`.
It is started on first use and stopped with the server.

It loads the Delta and spark-avro jars (app/spark_jars.py; fetched from Maven Central once into a
cache) and makes `spark_catalog` Delta's catalog. Iceberg is not loaded: no Iceberg release runs on Spark 4.2 yet
(docs/SPARK.md)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.spark_jars import default_cache, ensure_jars
from core.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def lake_conf(jars: list[Path]) -> dict[str, str]:
    """Spark confs that load `jars` and turn on Delta in `spark_catalog` (parquet tables keep working there)."""
    return {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError:
        raise ConfigError(
            "A local Spark cluster needs pyspark, which is not installed.", "Install it: pip install -e '.[spark]'"
        ) from None
    return Path(pyspark.__file__).parent


@dataclass(slots=True)
class LocalServer:
    port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None


class LocalClusterManager:
    """Starts and stops Spark Connect servers from the pyspark package (`bin/spark-submit --class …Server`).

    The server runs in its own process group (`start_new_session`) so that it can be stopped as a whole and does
    not die with a terminal; Spark's UI is off and every socket binds to loopback.

    `root` is `<data dir>/spark`; the jars are cached in `jar_cache` (default: `spark_jars.default_cache`).
    `lake_formats=False` starts a bare pyspark server (parquet only; tests of a cluster without Delta use it).
    `java_options` are added to the driver's JVM options and `extra_conf` to its Spark settings (both empty here;
    the tests' servers use them).
    """

    def __init__(
        self,
        root: Path,
        *,
        master: str = "local[2]",
        driver_memory: str = "2g",
        ui: bool = False,
        lake_formats: bool = True,
        jar_cache: Path | None = None,
        java_options: str = "",
        extra_conf: dict[str, str] | None = None,
    ):
        self.root = Path(root)
        self.extra_conf = dict(extra_conf or {})
        self.master = master
        self.java_options = java_options
        self.driver_memory = driver_memory
        self.ui = ui
        self.lake_formats = lake_formats
        self.jar_cache = jar_cache if jar_cache is not None else default_cache(self.root.parent)
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()

    def command(self, port: int, root: Path, token: str | None) -> list[str]:
        home = spark_home()
        java_options = f"-Dderby.system.home={root / 'metastore'} {self.java_options}".strip()
        conf = {
            "spark.connect.grpc.binding.port": str(port),
            "spark.connect.grpc.binding.address": LOOPBACK,
            "spark.driver.bindAddress": LOOPBACK,
            "spark.driver.host": LOOPBACK,
            "spark.ui.enabled": str(self.ui).lower(),
            "spark.sql.warehouse.dir": str(root / "warehouse"),
            "spark.sql.catalogImplementation": "hive",
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={root / 'metastore' / 'metastore_db'};create=true"
            ),
            "spark.driver.extraJavaOptions": java_options,
            "spark.driver.memory": self.driver_memory,
            "spark.sql.shuffle.partitions": "4",
            # Delta rebuilds a table's state from its log in this many tasks (50 by default): on one machine that is
            # most of a small commit's time. Measured (bench-like probe, 6 appends + reads of a 100-row table on the
            # local cluster under load): 124-209 s with the default, 17-24 s with 1.
            "spark.databricks.delta.snapshotPartitions": "1",
            # Delta's VACUUM lists a table's folder in this many tasks (10,000 by default): minutes on one machine.
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
        }
        if token:
            conf["spark.connect.authenticate.token"] = token
        if self.lake_formats:
            conf |= lake_conf(ensure_jars(self.jar_cache))
        conf |= self.extra_conf
        args = [str(home / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS, "--name", f"autoloader-{port}"]
        args += ["--master", self.master]
        for key, value in conf.items():
            args += ["--conf", f"{key}={value}"]
        return args

    def ensure_running(self, key: str, port: int, token: str | None = None, timeout: float = 90.0) -> LocalServer:
        """Start the server for `key` unless its port already answers; wait until it accepts connections."""
        with self._lock:
            server = self._servers.get(key)
            if server is not None and server.process is not None and server.process.poll() is None:
                return server
            root = self.root / key
            server = LocalServer(port, root)
            if not port_open(port):
                server.process = self._spawn(port, root, token)
            self._servers[key] = server
        self._wait(server, timeout)
        return server

    def _spawn(self, port: int, root: Path, token: str | None) -> subprocess.Popen[bytes]:
        for sub in ("metastore", "warehouse", "logs", "pids", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
        env |= {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOG_DIR": str(root / "logs"),
            "SPARK_PID_DIR": str(root / "pids"),
            "SPARK_LOCAL_IP": LOOPBACK,
            "SPARK_LOCAL_DIRS": str(root / "tmp"),
            "PYSPARK_PYTHON": sys.executable,
        }
        log_file = open(root / "logs" / "server.log", "ab")  # noqa: SIM115  (owned by the child process)
        log.info("starting local Spark Connect server on %s:%s (data in %s)", LOOPBACK, port, root)
        try:
            return subprocess.Popen(
                self.command(port, root, token),
                cwd=root,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log_file.close()

    def _wait(self, server: LocalServer, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(server.port):
                return
            if server.process is not None and server.process.poll() is not None:
                break
            time.sleep(0.25)
        from core.engines.spark import ClusterUnreachable  # the Spark engine's modules import Arrow

        raise ClusterUnreachable(
            f"The local Spark cluster did not start on port {server.port}.",
            "Check Java 17+ is installed and read the server log.",
            detail=f"log: {server.root / 'logs' / 'server.log'}",
        )

    def stop(self, key: str, timeout: float = 15.0) -> None:
        with self._lock:
            server = self._servers.pop(key, None)
        if server is None or server.process is None or server.process.poll() is not None:
            return
        pgid = server.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            server.process.wait(5)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for key in list(self._servers):
            self.stop(key)
