"""Shared fixtures: metadata databases (SQLite and PostgreSQL), services, API client, storage servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import REAPPEARED_STATE_LOG, REMOVED_STATE, remove_state
from tests.services import *  # noqa: F403  (seaweedfs and friends)

PG_ADMIN_URL = os.environ.get("AUTOLOADER_TEST_PG_ADMIN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("AUTOLOADER_TEST_PG_DB", "autoloader_test")
DATABASES = [p.strip() for p in os.environ.get("AUTOLOADER_TEST_DATABASES", "sqlite,postgres").split(",") if p.strip()]


TESTS_DATA = Path(__file__).resolve().parent / "data"
TEST_EGRESS_ALLOW = "127.0.0.1,::1,localhost"
"""SeaweedFS, the webhook and SMTP listeners and the Spark Connect servers of the tests all run on loopback."""


@pytest.fixture(scope="session", autouse=True)
def reach_of_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What the tests' servers may reach, for this process and the servers and CLIs it starts (they inherit the
    environment): every test's tmp_path (pytest's base temp folder) and tests/data are local roots, loopback is an
    allowed egress address. The metadata state lives outside these roots (`state_dir`): a root may not hold it.
    Tests of the guards themselves pass their own `local_roots` and `egress_allow`."""
    values = {
        "AUTOLOADER_LOCAL_ROOTS": f"{tmp_path_factory.getbasetemp()},{TESTS_DATA}",
        "AUTOLOADER_EGRESS_ALLOW": TEST_EGRESS_ALLOW,
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Name (in REAPPEARED_STATE_LOG, as xdist workers print nowhere) and remove the state folders written to after
    their fixture removed them."""
    back = {path: owner for path, owner in REMOVED_STATE.items() if path.exists()}
    if not back:
        return
    with REAPPEARED_STATE_LOG.open("a") as log:
        for path, owner in back.items():
            log.write(f"{path} of {owner} exists again, holding {sorted(p.name for p in path.iterdir())}\n")
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for a test's data dir and SQLite metadata DB, outside the local roots of the tests."""
    path = Path(tempfile.mkdtemp(prefix="autoloader-state-"))
    yield path
    remove_state(path, request.node.nodeid)


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_database() -> str:
    """The PostgreSQL test database (created if missing). Under CI a missing server fails the run."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": PG_DATABASE}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
        admin.dispose()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    return _pg_url(PG_DATABASE)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[str]:
    """A fresh, empty metadata database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{state_dir / 'meta.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def settings(state_dir: Path, database_url: str):  # type: ignore[no-untyped-def]
    """Local roots and egress allow come from the environment (`reach_of_the_tests`)."""
    from app.settings import Settings

    return Settings(
        data_dir=state_dir / "data",
        database_url=database_url,
        secret_key="test-secret-key",
        heartbeat_seconds=0.5,
        stale_run_seconds=30,
        rate_limit_per_minute=0,
    )


@pytest.fixture
def services(settings):  # type: ignore[no-untyped-def]
    from app.bootstrap import build

    svc = build(settings)
    yield svc
    svc.close()


@pytest.fixture
def api(services):  # type: ignore[no-untyped-def]
    """A TestClient over the real v1 routes and error handlers (the same ones mounted in NiceGUI's app)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.api import mount_api

    app = FastAPI()
    mount_api(app, services)
    with TestClient(app, raise_server_exceptions=False, headers=admin_headers(services)) as client:
        yield client


def admin_headers(services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Sign in as the first tenant's admin (created on first use) and return its API token's header."""
    from tests.server_process import ADMIN_EMAIL, ADMIN_PASSWORD

    if services.accounts.needs_setup():
        services.accounts.setup_first_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    _, admin = services.accounts.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    token = services.accounts.create_token(admin, admin.user_id, "tests").token
    return {"Authorization": f"Bearer {token}"}


def clean_env() -> dict[str, str]:
    """Environment for a child server/CLI process: no pytest variables (NiceGUI reads them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
