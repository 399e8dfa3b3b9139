"""The Dockerfile, built and run for real (podman, rootful, vfs: no Docker engine runs here; see tests/container.py).

One build, then: the image runs as a non-root user with a health check and a /data volume; the server answers its
health endpoint; a folder under the mounted /data/landing is ingested; after the container is replaced by a new one
on the same volume, the ingestion, its run and its table are still there and only a new file loads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.container import TEST_TAG, Container, build_image, image_config, missing_tools, podman
from tests.helpers import read_table, spec, write_json_files
from tests.server_process import ADMIN_TOKEN, AUTH
from tests.services import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> str:
    missing = missing_tools()
    if missing:
        message = f"{', '.join(missing)} not installed (.ci/run installs them: apt-get install podman mmdebstrap runc)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    started = time.monotonic()
    build_image()
    print(f"image built in {time.monotonic() - started:.0f} s, {image_config(TEST_TAG)['size'] / 1e6:.0f} MB")
    return TEST_TAG


def _run_once(base: str, ingestion_id: str) -> dict[str, Any]:
    run = httpx.post(f"{base}/api/v1/ingestions/{ingestion_id}/run", headers=AUTH, timeout=30).json()
    for _ in range(300):
        record: dict[str, Any] = httpx.get(base + run["url"], headers=AUTH, timeout=10).json()
        if record["status"] not in ("queued", "running"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"run {run} did not finish")


def test_image_is_non_root_with_health_check_and_data_volume(image: str) -> None:
    config = image_config(image)
    assert config["User"] == "autoloader"
    assert "/data" in config["Volumes"]
    assert "/api/v1/health" in " ".join(config["Healthcheck"]["Test"])
    assert any(e.startswith("AUTOLOADER_DATA_DIR=/data") for e in config["Env"])
    done = podman("run", "--rm", "--network", "none", image, "sh", "-c", "id -u; java -version 2>&1 || echo no-java")
    uid, java = done.stdout.split("\n", 1)
    assert uid.strip() == "1000"
    assert "no-java" in java, "the embedded image carries no Java runtime (the spark variant does)"


def test_container_ingests_a_mounted_folder_and_keeps_its_data_across_a_restart(image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    landing = data / "landing" / "events"
    write_json_files(landing, 3, 10)
    for folder in (data, data / "landing", landing):
        folder.chmod(0o777)  # the container's user (uid 1000) writes the metadata and the warehouse here
    env = {"AUTOLOADER_ADMIN_TOKEN": ADMIN_TOKEN, "AUTOLOADER_RATE_LIMIT_PER_MINUTE": "0"}
    first = Container(image, "autoloader-test-1", data, free_port(), env)
    try:
        first.start()
        assert podman("healthcheck", "run", first.name, check=False).returncode == 0, first.logs()
        body = spec("/data/landing/events").model_dump(mode="json", by_alias=True)
        created = httpx.post(f"{first.base}/api/v1/ingestions", json={**body, "activate": True}, headers=AUTH).json()
        record = _run_once(first.base, created["id"])
        assert record["status"] == "success", record
        assert record["metrics"]["records_ingested"] == 30
    finally:
        first.stop()
        first.remove()

    write_json_files(landing, 1, 10, start_id=1000, prefix="later")
    second = Container(image, "autoloader-test-2", data, free_port(), env)
    try:
        second.start()
        ingestion = httpx.get(f"{second.base}/api/v1/ingestions/{created['id']}", headers=AUTH).json()
        assert ingestion["name"] == created["name"]
        runs = httpx.get(f"{second.base}/api/v1/ingestions/{created['id']}/runs", headers=AUTH).json()
        assert [r["status"] for r in runs] == ["success"]
        record = _run_once(second.base, created["id"])
        assert record["status"] == "success" and record["metrics"]["records_ingested"] == 10, record
    finally:
        second.stop()
        second.remove()
    table_uri = ingestion["table_uri"]
    assert table_uri.startswith("/data/")
    assert read_table(str(data / table_uri.removeprefix("/data/"))).num_rows == 40
