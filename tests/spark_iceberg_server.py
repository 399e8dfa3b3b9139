"""A Spark 4.1 Spark Connect server with Iceberg, for the tests' `spark-iceberg` engine (one per test process).

Iceberg publishes no runtime for Spark 4.2 (the project's pyspark) yet, so Iceberg tables are written on a Spark 4.1
server — standing for a user's existing Spark 4.1 cluster with Iceberg — driven by the project's pyspark 4.2 Connect
client. The server comes from pyspark 4.1.4 in a venv of its own (`$AUTOLOADER_SPARK41_VENV`, default
~/.cache/autoloader-tests/spark-4.1/venv; never the project's .venv) and loads iceberg-spark-runtime-4.1_2.13
1.12.0 from the jar cache of tests/spark_server.py (app/spark_jars.py ICEBERG_*). Its Iceberg catalog is `iceberg`
(a Hadoop catalog: tables under `<root>/iceberg-warehouse`, no metastore), which the registered cluster names.

Both are installed on first use and cached; `python -m tests.spark_iceberg_server` does it ahead of time (.ci/test).
A machine that cannot install or start them skips the spark-iceberg cases, saying why.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from app.spark_jars import ICEBERG_JARS, ICEBERG_PYSPARK, ensure_jars
from tests.spark_server import TOKEN, SparkServer, jar_cache, scratch_root, spark_settings_of_tests

CATALOG = "iceberg"
VENV_ENV = "AUTOLOADER_SPARK41_VENV"
INSTALL_TIMEOUT_SECONDS = 900.0


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "autoloader-tests" / "spark-4.1" / "venv"
    return Path(os.environ.get(VENV_ENV, default)).expanduser()


def _spark_home(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python3*/site-packages/pyspark"))
    return found[0] if found else None


def _installed(venv: Path) -> bool:
    home = _spark_home(venv)
    if home is None or not (home / "bin" / "spark-submit").is_file():
        return False
    text = (home / "version.py").read_text()
    return f'"{ICEBERG_PYSPARK}"' in text or f"'{ICEBERG_PYSPARK}'" in text


def ensure_spark41(venv: Path | None = None) -> Path:
    """pyspark 4.1.4's SPARK_HOME, installed into its own venv the first time (~30 s, ~450 MB)."""
    venv = venv or venv_dir()
    if not _installed(venv):
        python = shutil.which("python3.11") or sys.executable
        if not (venv / "bin" / "python").exists():
            subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"pyspark=={ICEBERG_PYSPARK}"], check=True, timeout=INSTALL_TIMEOUT_SECONDS)
    home = _spark_home(venv)
    assert home is not None
    return home


def iceberg_conf(jars: list[Path], warehouse: Path) -> dict[str, str]:
    """The confs of a Spark 4.1 cluster with Iceberg (docs/SPARK.md): the runtime, its SQL extensions (MERGE,
    UPDATE, CALL), and a catalog named `iceberg`."""
    return {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        f"spark.sql.catalog.{CATALOG}": "org.apache.iceberg.spark.SparkCatalog",
        f"spark.sql.catalog.{CATALOG}.type": "hadoop",
        f"spark.sql.catalog.{CATALOG}.warehouse": str(warehouse),
        # A 4.1 server answers this conf as "3221225472b", which the 4.2 client's createDataFrame cannot parse as
        # an int; in plain bytes both read it.
        "spark.sql.session.localRelationSizeLimit": "3221225472",
    }


def _manager(root: Path, home: Path, jars: list[Path], as_users: bool) -> Any:
    """LocalClusterManager (loopback, token, Derby metastore, process group) running pyspark 4.1's spark-submit.

    Its command is the 4.2 one with the spark-submit swapped and `env` in front: the manager exports SPARK_HOME as
    the project's pyspark, which 4.1's scripts would otherwise follow. `as_users`: Spark's own settings (code
    generation on) and the manager's default driver memory, as bench/ measures; otherwise the tests' settings."""
    from app.local_spark import LocalClusterManager

    class Spark41Manager(LocalClusterManager):
        def command(self, port: int, root: Path, token: str | None) -> list[str]:
            args = super().command(port, root, token)
            # Bench runs give the workers the service's Python, where the product is installed (as on a cluster set
            # up for the CSV parsing on its workers: docs/SPARK.md); the tests keep the 4.1 venv's, without it.
            python = Path(sys.executable) if as_users else home.parents[3] / "bin" / "python"
            env = ["env", f"SPARK_HOME={home}", f"PYSPARK_PYTHON={python}"]
            conf = [
                x for k, v in iceberg_conf(jars, root / "iceberg-warehouse").items() for x in ("--conf", f"{k}={v}")
            ]
            return [*env, str(home / "bin" / "spark-submit"), *args[1:], *conf]

    if as_users:
        return Spark41Manager(root, lake_formats=False)
    return Spark41Manager(root, lake_formats=False, driver_memory="1g", extra_conf=spark_settings_of_tests())


_lock = threading.Lock()
_server: SparkServer | None = None
_failure: str | None = None


def spark_iceberg_server() -> SparkServer:
    """Start this process's Spark 4.1 + Iceberg server once; skip (with the reason) when it cannot be had."""
    global _server, _failure
    pytest.importorskip("pyspark.sql.connect.session", reason="pyspark not installed: pip install -e '.[spark]'")
    with _lock:
        if _server is None and _failure is None:
            try:
                _server = _start()
            except Exception as exc:
                _failure = f"no Spark {ICEBERG_PYSPARK} + Iceberg server here ({type(exc).__name__}: {exc})"[:500]
        if _server is None:
            pytest.skip(_failure or "no Spark 4.1 server")
        return _server


def _start() -> SparkServer:
    server, manager = start()
    atexit.register(manager.stop_all)
    return server


def start(as_users: bool = False) -> tuple[SparkServer, Any]:
    """A new server and the manager that stops it (`stop_all`); bench/bench_spark.py runs one `as_users`."""
    from app.local_spark import free_port

    home = ensure_spark41()
    jars = ensure_jars(jar_cache(), ICEBERG_JARS)
    root = scratch_root("autoloader-spark41-")
    manager = _manager(root, home, jars, as_users)
    port = free_port()
    try:
        manager.ensure_running("iceberg", port, TOKEN, timeout=120.0)
    except BaseException:
        manager.stop_all()
        raise
    return SparkServer(port, TOKEN, root), manager


def register_cluster(services: Any, name: str) -> int:
    """The Spark 4.1 server registered as a cluster writing Iceberg tables into its `iceberg` catalog."""
    from app.db.models import ClusterCreate

    server = spark_iceberg_server()
    body = ClusterCreate(name=name, connect_url=server.url, token=server.token, table_format="iceberg", catalog=CATALOG)
    return int(services.clusters.create(body).id)


def main() -> int:
    """Install pyspark 4.1 and fetch the Iceberg runtime ahead of the tests (no server is started)."""
    print(ensure_spark41())
    for path in ensure_jars(jar_cache(), ICEBERG_JARS):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
