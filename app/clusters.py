"""Spark clusters: the registry (app.db.models.Cluster), test connection, and the local cluster the server runs itself.

A `remote` cluster is any Spark Connect endpoint (`sc://host:port`). A `local` cluster is a Spark Connect server
started by this process from the installed pyspark package, on loopback, with a persistent catalog (Hive metastore
in Derby) and warehouse under `<data dir>/spark/cluster-<id>`; it is started on first use and stopped with the
service.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlmodel import col

from app.db.models import Cluster, ClusterCreate, ClusterPublic, ClusterUpdate
from app.db.models import Ingestion as IngestionRow
from app.db.repository import save_named
from core.engines.spark import TABLE_FORMATS, ClusterCheck, ClusterTarget, SparkEngine
from core.engines.spark_errors import ClusterUnreachable
from core.errors import ConfigError, Conflict, NotFound

if TYPE_CHECKING:
    from app.db.repository import SqlStore

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
KINDS = ("remote", "local")
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


class ConnectionTest(BaseModel):
    """The API's answer to POST /clusters/{id}/test."""

    ok: bool
    reachable: bool
    spark_version: str | None
    table_format: str
    format_ok: bool
    message: str
    action: str
    seconds: float
    error_code: str | None = None


# --- the local cluster ---------------------------------------------------------------------------------------------
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
    """

    def __init__(self, root: Path, *, master: str = "local[2]", driver_memory: str = "2g", ui: bool = False):
        self.root = Path(root)
        self.master = master
        self.driver_memory = driver_memory
        self.ui = ui
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()

    def command(self, port: int, root: Path, token: str | None) -> list[str]:
        home = spark_home()
        java_options = f"-Dderby.system.home={root / 'metastore'}"
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
        }
        if token:
            conf["spark.connect.authenticate.token"] = token
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


# --- the registry ----------------------------------------------------------------------------------------------------
def validate_url(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme != "sc" or not parsed.hostname:
        raise ConfigError(
            f"'{url}' is not a Spark Connect URL.", "Use sc://host:port, e.g. sc://spark:15002.", field="connect_url"
        )
    return url.strip()


def validate_fields(values: dict[str, Any]) -> None:
    if "name" in values and not str(values["name"] or "").strip():
        raise ConfigError("A cluster needs a name.", "Enter a name, e.g. spark-prod.", field="name")
    if values.get("kind") is not None and values["kind"] not in KINDS:
        raise ConfigError(f"Unknown cluster kind '{values['kind']}'.", "Use remote or local.", field="kind")
    if values.get("table_format") is not None and values["table_format"] not in TABLE_FORMATS:
        raise ConfigError(
            f"Unknown table format '{values['table_format']}'.", "Use delta, iceberg or parquet.", field="table_format"
        )
    if values.get("price_per_hour") is not None and values["price_per_hour"] < 0:
        raise ConfigError("The price per hour cannot be negative.", "Enter 0 or more.", field="price_per_hour")


def to_public(row: Cluster) -> ClusterPublic:
    return ClusterPublic.model_validate({**row.model_dump(), "has_token": bool(row.token_encrypted)})


class ClusterService:
    """CRUD over registered clusters, test connection, and one engine (one pooled session) per cluster."""

    def __init__(self, store: SqlStore, data_dir: Path):
        self.store = store
        self.local = LocalClusterManager(Path(data_dir) / "spark")
        self._engines: dict[int, tuple[ClusterTarget, SparkEngine]] = {}
        self._lock = threading.Lock()

    # --- CRUD ---------------------------------------------------------------------------------------------------
    def list(self) -> list[ClusterPublic]:
        with self.store.session() as s:
            rows = s.execute(select(Cluster).order_by(col(Cluster.name))).scalars().all()
        return [to_public(r) for r in rows]

    def _row(self, cluster_id: int) -> Cluster:
        with self.store.session() as s:
            row = s.get(Cluster, cluster_id)
        if row is None:
            raise NotFound(f"Cluster {cluster_id} does not exist.", "List clusters with GET /api/v1/clusters.")
        return row

    def get(self, cluster_id: int) -> ClusterPublic:
        return to_public(self._row(cluster_id))

    def create(self, body: ClusterCreate, actor: str = "api") -> ClusterPublic:
        values = body.model_dump(exclude={"token"})
        validate_fields(values)
        if body.kind == "local" and not body.connect_url:
            values["connect_url"] = f"sc://localhost:{free_port()}"
        values["connect_url"] = validate_url(values["connect_url"])
        row = Cluster(**values, token_encrypted=self.store.secrets.encrypt(body.token) if body.token else None)
        row = self._save(row)
        self.store.audit("create", "cluster", row.id, actor, name=row.name)
        return to_public(row)

    def update(self, cluster_id: int, body: ClusterUpdate, actor: str = "api") -> ClusterPublic:
        values = body.model_dump(exclude_unset=True, exclude={"token"})
        validate_fields(values)
        if values.get("connect_url") is not None:
            values["connect_url"] = validate_url(values["connect_url"])
        row = self._row(cluster_id)
        for key, value in values.items():
            if value is not None:
                setattr(row, key, value)
        if "token" in body.model_fields_set:
            row.token_encrypted = self.store.secrets.encrypt(body.token) if body.token else None
        row = self._save(row)
        self._forget(cluster_id)
        self.store.audit("update", "cluster", cluster_id, actor, fields=sorted(body.model_fields_set))
        return to_public(row)

    def _save(self, row: Cluster) -> Cluster:
        with self.store.session() as s:
            save_named(s, row, "A cluster")
            return row

    def delete(self, cluster_id: int, actor: str = "api") -> None:
        with self.store.session() as s:
            row = s.get(Cluster, cluster_id)
            if row is None:
                raise NotFound(f"Cluster {cluster_id} does not exist.", "List clusters with GET /api/v1/clusters.")
            used = s.execute(select(func.count()).where(col(IngestionRow.cluster_id) == cluster_id)).scalar()
            if used:
                raise Conflict(
                    f"{used} ingestion(s) use cluster '{row.name}'.", "Delete or move those ingestions first."
                )
            s.delete(row)
            s.commit()
        self._forget(cluster_id)
        self.local.stop(f"cluster-{cluster_id}")
        self.store.audit("delete", "cluster", cluster_id, actor)

    # --- engines ------------------------------------------------------------------------------------------------
    def target(self, cluster_id: int) -> ClusterTarget:
        row = self._row(cluster_id)
        token = self.store.secrets.decrypt(row.token_encrypted) if row.token_encrypted else None
        return ClusterTarget(row.name, row.connect_url, token, row.table_format, row.catalog, row.kind)

    def engine(self, cluster_id: int) -> SparkEngine:
        """The cluster's engine (its pooled session); a local cluster is started first if it is not running."""
        target = self.target(cluster_id)
        if target.kind == "local":
            port = urlparse(target.connect_url).port or 15002
            self.local.ensure_running(f"cluster-{cluster_id}", port, target.token)
        with self._lock:
            cached = self._engines.get(cluster_id)
            if cached is not None and cached[0] == target:
                return cached[1]
            engine = SparkEngine(target)
            old = self._engines.get(cluster_id)
            self._engines[cluster_id] = (target, engine)
        if old is not None:
            old[1].close()
        return engine

    def _forget(self, cluster_id: int) -> None:
        with self._lock:
            cached = self._engines.pop(cluster_id, None)
        if cached is not None:
            cached[1].close()

    def test(self, cluster_id: int) -> ConnectionTest:
        """Reachable or not (in seconds), the Spark version, and whether the table format is usable."""
        try:
            check = self.engine(cluster_id).check()
        except ClusterUnreachable as exc:
            check = ClusterCheck(False, None, self.target(cluster_id).table_format, False, exc.message, exc.action)
            check.error_code = exc.code
        return ConnectionTest(ok=check.reachable and check.format_ok, **asdict(check))

    def close(self) -> None:
        with self._lock:
            engines = [engine for _, engine in self._engines.values()]
            self._engines.clear()
        for engine in engines:
            engine.close()
        self.local.stop_all()
