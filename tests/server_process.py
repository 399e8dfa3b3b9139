"""A real `autoloader serve` process for tests, on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.services import free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "test-password-123"
ADMIN_TOKEN = "al_test-admin-token-for-the-test-servers"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ADMIN_ENV = {
    "AUTOLOADER_ADMIN_EMAIL": ADMIN_EMAIL,
    "AUTOLOADER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "AUTOLOADER_ADMIN_TOKEN": ADMIN_TOKEN,
    "AUTOLOADER_RATE_LIMIT_PER_MINUTE": "0",
}


class ServerProcess:
    def __init__(self, env: dict[str, str], log_path: Path):
        """A server whose first admin (and automation token) are ADMIN_EMAIL / ADMIN_TOKEN unless `env` says else."""
        self.env = ADMIN_ENV | env
        self.log_path = log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not come up: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(self.base + path, timeout=10, headers=AUTH, **kwargs)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, json: Any = None) -> Any:
        response = httpx.post(self.base + path, json=json, timeout=30, headers=AUTH)
        assert response.status_code < 400, response.text
        return response.json()
