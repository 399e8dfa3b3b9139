"""Build and run the product's image with podman where no Docker engine runs (the `polyglot` machines).

What this machine needs, found by trying (and why each setting is here):
- no registry of base images is reachable, so the base image is a Debian bookworm root file system made by
  `mmdebstrap` from Debian's packages (cached as a tarball) and imported into podman;
- podman runs rootful on a store of its own under CACHE with the `overlay` driver (with `vfs` every instruction
  copied the whole ~900 MB file system: 7 to 8 minutes a build instead of 2), the `runc` runtime with the `cgroupfs`
  manager (crun refuses the hybrid cgroup layout), and explicit ulimits (the defaults exceed the sandbox's hard
  limits);
- pip inside the build goes through a TLS-inspecting proxy, so the host's CA bundle is mounted and named by the
  Dockerfile's PIP_CERT build argument;
- containers use the host network (no CNI bridge here); the product listens on a free loopback port.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("AUTOLOADER_TEST_IMAGE_CACHE", Path.home() / ".cache" / "autoloader-tests" / "image"))
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_IMAGE = "localhost/autoloader-base:bookworm"
TOOLS = ("podman", "mmdebstrap", "runc")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    conf = CACHE / "containers.conf"
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    env = os.environ | {"CONTAINERS_CONF": str(conf)}
    store = ["--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run"), "--storage-driver", "overlay"]
    done = subprocess.run(["podman", *store, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def base_image() -> str:
    """The Debian bookworm + Python 3.11 base, built once per machine and kept in podman's store."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    tarball = CACHE / "bookworm-python.tar"
    if not tarball.is_file():
        if tarball.is_dir():  # left by a version of this code that let mmdebstrap write a folder
            shutil.rmtree(tarball)
        partial = CACHE / "bookworm-python.partial.tar"  # mmdebstrap picks its output format from the suffix
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(partial)],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        partial.rename(tarball)
    podman("import", str(tarball), BASE_IMAGE, timeout=600)
    return BASE_IMAGE


TEST_TAG = "localhost/autoloader:test"


@contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time on the machine: .ci/test starts one in the background while the suite runs, and the
    image test waits for it here, then finds every layer cached (about 3 s)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_image(tag: str = TEST_TAG, variant: str = "embedded") -> str:
    """`podman build` of the repository's Dockerfile, in Docker format (OCI images drop HEALTHCHECK)."""
    with _build_lock():
        return _build(tag, variant)


def _build(tag: str, variant: str) -> str:
    args = ["build", "--format", "docker", "--network", "host", "-t", tag]
    args += ["--build-arg", f"BASE_IMAGE={base_image()}", "--build-arg", f"VARIANT={variant}"]
    ca_bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if ca_bundle and Path(ca_bundle).is_file():
        args += ["-v", f"{ca_bundle}:/etc/ssl/build-ca.crt:ro", "--build-arg", "PIP_CERT=/etc/ssl/build-ca.crt"]
    podman(*args, str(ROOT), timeout=1800)
    return tag


def image_config(tag: str) -> dict[str, Any]:
    inspected = json.loads(podman("image", "inspect", tag).stdout)[0]
    return {"size": inspected["Size"], "Healthcheck": inspected.get("Healthcheck") or {}, **inspected["Config"]}


class Container:
    """One `podman run -d` of the image with a host folder as /data, on a loopback port."""

    def __init__(self, image: str, name: str, data_dir: Path, port: int, env: dict[str, str]):
        self.image, self.name, self.data_dir, self.port, self.env = image, name, data_dir, port, env
        self.base = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 120) -> Container:
        podman("rm", "-f", self.name, check=False)
        env = self.env | {"AUTOLOADER_HOST": "127.0.0.1", "AUTOLOADER_PORT": str(self.port)}
        flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        podman("run", "-d", "--name", self.name, "--network", "host", *flags,
               "-v", f"{self.data_dir}:/data", self.image)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = podman("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()
            if state not in ("running", "created", "configured"):
                raise AssertionError(f"container {self.name} is {state}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"container {self.name} did not answer /api/v1/health:\n{self.logs()}")

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-4000:]

    def stop(self) -> None:
        podman("stop", "-t", "20", self.name, check=False, timeout=60)

    def remove(self) -> None:
        podman("rm", "-f", self.name, check=False, timeout=60)


if __name__ == "__main__":
    # `python -m tests.container build`: .ci/test builds the image in the background while the other tests run.
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m tests.container build")
    if missing_tools():
        sys.exit(f"not building the image: {', '.join(missing_tools())} not installed")
    started = time.monotonic()
    build_image()
    print(f"built {TEST_TAG} in {time.monotonic() - started:.0f} s")
