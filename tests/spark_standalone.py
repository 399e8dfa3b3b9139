"""A real multi-process Spark cluster for the tests: a standalone master and two workers started from the pyspark
package, each its own JVM, with a Spark Connect server whose driver runs its tasks on the workers' executors.

Everything binds to loopback; the web UIs get free loopback ports (the standalone daemons cannot turn theirs off).
Started on first use, stopped at exit. The Connect server is the product's own local-cluster launcher
(app/local_spark.py) given the master's URL, so it loads the same Delta jars, which Spark ships to the executors.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.spark_server import TOKEN, SparkServer, jar_cache, scratch_root, spark_settings_of_tests

WORKERS = 2
WORKER_MEMORY = "1536m"


@dataclass
class StandaloneCluster:
    master_url: str
    server: SparkServer
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    driver_pid: int | None = None
    """The Connect server's JVM (spark-class execs java in place of the launcher's shell)."""

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


LEAN_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""JIT and GC options of this cluster's six JVMs (master, workers, executors, Connect driver) on a 2-core machine: its
tests move a few rows each, so C2's compiler threads and the parallel collector only compete for the cores. Measured
on this module alone: 178 s at 1.37 busy cores with them, 267 s at 1.87 without. The long-lived local servers keep
the defaults: a full run with these options on every test JVM spent 1,101 s in test_engines.py (mostly their cases)
against 791 s without, though its total was 132 s shorter."""

_lock = threading.Lock()
_cluster: StandaloneCluster | None = None


def _daemon(root: Path, name: str, args: list[str], jvm_options: str) -> subprocess.Popen[bytes]:
    from app.local_spark import LOOPBACK, spark_home

    home = spark_home()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env |= {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": LOOPBACK, "SPARK_LOCAL_DIRS": str(root / "tmp")}
    if jvm_options:
        env.setdefault("JAVA_TOOL_OPTIONS", jvm_options)  # the executors a worker forks inherit it
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    log = open(root / f"{name}.log", "ab")  # noqa: SIM115  (owned by the child process)
    try:
        return subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()


def _wait_for(check: object, what: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s; log {log}:\n{tail}")


def _workers_registered(root: Path, count: int) -> bool:
    text = (root / "master.log").read_text(errors="replace") if (root / "master.log").exists() else ""
    return text.count("Registering worker") >= count


def standalone_cluster(settings_of_tests: bool = True) -> StandaloneCluster:
    """Start the master, the workers and the Connect server once; skip when pyspark is not installed.

    `settings_of_tests`: the lean JVM options (LEAN_JVM) on all six JVMs and the servers' test settings
    (spark_settings_of_tests: code generation off). Without them (bench/bench_sizing.py) the cluster runs on the
    JVM's and Spark's defaults, as a user's does. The sizing bench's 256 MiB loads with both: JSON 118 s; with
    code generation off alone: JSON 40-49 s, CSV 86-95 s, Parquet 123-140 s; on the defaults 26-35 s, 38-41 s and
    30-34 s."""
    jvm_options = LEAN_JVM if settings_of_tests else ""
    global _cluster
    pytest.importorskip("pyspark.sql.connect.session", reason="pyspark not installed: pip install -e '.[spark]'")
    from app.local_spark import LOOPBACK, LocalClusterManager, free_port, port_open

    with _lock:
        if _cluster is not None:
            return _cluster
        root = scratch_root("autoloader-standalone-")
        port = free_port()
        master_url = f"spark://{LOOPBACK}:{port}"
        master = ["org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port)]
        processes = [_daemon(root, "master", [*master, "--webui-port", str(free_port())], jvm_options)]
        cluster = StandaloneCluster(master_url, SparkServer(0, TOKEN, root), processes)
        atexit.register(cluster.stop)
        _wait_for(lambda: port_open(port), "the standalone master", root / "master.log")
        for index in range(WORKERS):
            work = root / f"worker-{index}"
            work.mkdir()
            worker = ["org.apache.spark.deploy.worker.Worker", master_url, "--host", LOOPBACK, "--cores", "1"]
            limits = ["--memory", WORKER_MEMORY, "--work-dir", str(work), "--webui-port", str(free_port())]
            processes.append(_daemon(root, f"worker-{index}", [*worker, *limits], jvm_options))
        _wait_for(lambda: _workers_registered(root, WORKERS), f"{WORKERS} workers", root / "master.log")
        manager = LocalClusterManager(
            root / "connect",
            master=master_url,
            driver_memory="1g",
            jar_cache=jar_cache(),
            java_options=jvm_options,
            extra_conf=spark_settings_of_tests() if settings_of_tests else {},
        )
        connect_port = free_port()
        started = manager.ensure_running("standalone", connect_port, TOKEN, timeout=120)
        atexit.register(manager.stop_all)
        cluster.server = SparkServer(connect_port, TOKEN, root)
        cluster.driver_pid = started.process.pid if started.process is not None else None
        _cluster = cluster
        return cluster
