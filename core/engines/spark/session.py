"""Reaching a cluster: its connection details, the pooled Spark Connect session, and "test connection"."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.engines.spark.errors import is_auth_failure, is_stale_session, is_unreachable, translate
from core.errors import AutoloaderError, ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

INSTALL_HINT = "pip install -e '.[spark]'"


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """What the engine needs to know about a registered cluster."""

    name: str
    connect_url: str
    token: str | None = None
    table_format: str = "delta"
    catalog: str = "spark_catalog"
    kind: str = "remote"
    csv_on_workers: bool = True
    """Whether CSV may be parsed on the cluster's Python workers (`reading.Reader.workers_parse`)."""

    def url(self) -> str:
        """The Spark Connect URL with the token as a parameter (`sc://host:port/;token=…`)."""
        url = self.connect_url.rstrip("/")
        if not self.token:
            return url
        base, _, params = url.partition("/;")
        return f"{base}/;{params};token={self.token}" if params else f"{base}/;token={self.token}"


@dataclass(slots=True)
class ClusterCheck:
    """The answer of "test connection"."""

    reachable: bool
    spark_version: str | None = None
    table_format: str = ""
    format_ok: bool = False
    message: str = ""
    action: str = ""
    seconds: float = 0.0
    error_code: str | None = None


def require_pyspark() -> None:
    try:
        import pyspark.sql.connect.session  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "The Spark engine needs pyspark with Spark Connect support, which is not installed.",
            f"Install the Spark extra: {INSTALL_HINT}",
            detail=repr(exc),
        ) from None


def connect_session(target: ClusterTarget) -> Any:
    """A new Spark Connect session whose retries are bounded: a dead cluster fails in seconds, not 10 minutes."""
    from pyspark.sql.connect.client.retries import DefaultPolicy
    from pyspark.sql.connect.session import SparkSession

    session = SparkSession.builder.remote(target.url()).create()
    session.client.set_retry_policies([DefaultPolicy(max_retries=3, initial_backoff=50, max_backoff=500)])
    _set_session_confs(session)
    return session


_MEANING = {"spark.sql.session.timeZone": "UTC", "spark.sql.variable.substitute": "false"}
"""Confs the results depend on. A self-managed cluster's session zone is its JVM's: a timestamp partition value
was written as that zone's wall-clock text (two instants in the hour a DST change repeats became one), and a date
widened to a timestamp became that zone's midnight. Variable substitution rewrote `${...}` inside the SQL literals
that carry data (partition values, table properties, backfill defaults)."""

# The JVM compiles no method over 8,000 bytes of bytecode (HugeMethodLimit); Spark keeps a stage's generated code as
# one method up to 65,535. A batch's text rules make such a method: the JVM then interprets it, and converting a
# 256 MiB CSV took 33 s instead of 13 s. At the JVM's own limit Spark generates code per operator for those stages.
_HUGE_METHOD_LIMIT = {"spark.sql.codegen.hugeMethodLimit": "8000"}

# A Hive metastore refuses a partition filter on a column whose name starts with `_` (its filter grammar's names
# start with a letter or digit): a parquet table read for its batch column's value failed
# (INTERNAL_ERROR_HIVE_METASTORE_PARTITION_FILTER). Spark then fetches the table's partitions and filters them itself,
# as SHOW PARTITIONS does for every batch already.
_PARTITION_FILTER_FALLBACK = {"spark.sql.hive.metastorePartitionPruningFallbackOnException": "true"}


def _set_session_confs(session: Any) -> None:
    """The confs results depend on (_MEANING), then those that only make the cluster faster. A cluster that refuses
    one (a managed service may) runs without it, with a warning for the first kind."""
    for key, value in {**_MEANING, **_HUGE_METHOD_LIMIT, **_PARTITION_FILTER_FALLBACK}.items():
        try:
            session.conf.set(key, value)
        except Exception as exc:
            if is_unreachable(exc) or is_auth_failure(exc):
                raise
            level = logging.WARNING if key in _MEANING else logging.INFO
            log.log(level, "the cluster refused %s=%s; running without it", key, value, exc_info=True)


def make_active(spark: Any) -> None:
    """Make `spark` the calling thread's active session (and the default one when that was stopped).

    Spark Connect looks the session up by thread in places (a plan that carries a session is rebuilt with the
    active one, and raises "No active Spark session found" without one); runs execute on worker threads, and a
    session stopped earlier in the process (a cluster deleted, a server restarted) would otherwise stay the
    thread's active session. pyspark has no public setter, so a pyspark without these attributes is left alone.
    """
    cls = type(spark)
    try:
        cls._active_session.session = spark
        with cls._lock:
            default = cls._default_session
            if default is None or default.is_stopped:
                cls._default_session = spark
    except AttributeError:
        log.debug("this pyspark has no active-session attributes", exc_info=True)


class PooledSession:
    """One Spark Connect session per cluster, shared by all runs, and recreated when the server lost it."""

    def __init__(self, target: ClusterTarget, connect: Callable[[ClusterTarget], Any] = connect_session):
        self.target = target
        self._connect = connect
        self._session: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._connect(self.target)
            return self._session

    def _drop(self, stale: Any) -> None:
        with self._lock:
            if self._session is stale:
                self._session = None
        try:
            stale.client.close()
        except Exception:
            log.debug("closing a stale Spark Connect client failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            try:
                session.stop()
            except Exception:
                log.debug("stopping the Spark Connect session failed", exc_info=True)

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run `fn(spark)`; a session the server no longer knows is replaced once; errors come out typed."""
        for attempt in range(2):
            spark: Any = None
            try:
                spark = self.get()
                make_active(spark)
                return fn(spark)
            except AutoloaderError:
                raise
            except Exception as exc:
                if spark is not None and (is_stale_session(exc) or is_unreachable(exc) or is_auth_failure(exc)):
                    self._drop(spark)
                if attempt == 0 and spark is not None and is_stale_session(exc):
                    continue
                raise translate(exc, self.target.name, what) from exc
        raise AssertionError("unreachable")

    def check(self, probe_format: Callable[[Any], None]) -> ClusterCheck:
        """Test connection: reachable, Spark version, and whether `probe_format(spark)` finds the table format."""
        started = time.monotonic()
        fmt = self.target.table_format
        try:
            version = self.call("testing the connection", lambda spark: str(spark.version))
        except AutoloaderError as exc:
            return ClusterCheck(False, None, fmt, False, exc.message, exc.action, time.monotonic() - started, exc.code)
        try:
            self.call("checking the table format", probe_format)
        except AutoloaderError as exc:
            return ClusterCheck(
                True, version, fmt, False, exc.message, exc.action, time.monotonic() - started, exc.code
            )
        message = f"Connected: Spark {version}; table format {fmt} is available."
        return ClusterCheck(True, version, fmt, True, message, "", time.monotonic() - started)
