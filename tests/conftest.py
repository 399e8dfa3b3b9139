"""Shared fixtures: metadata databases (SQLite and PostgreSQL), services, API client, storage servers."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.services import *  # noqa: F403  (seaweedfs and friends)

PG_ADMIN_URL = os.environ.get("AUTOLOADER_TEST_PG_ADMIN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("AUTOLOADER_TEST_PG_DB", "autoloader_test")
DATABASES = [p.strip() for p in os.environ.get("AUTOLOADER_TEST_DATABASES", "sqlite,postgres").split(",") if p.strip()]


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
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
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
def settings(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    from app.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key",
        heartbeat_seconds=0.5,
        stale_run_seconds=30,
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
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def clean_env() -> dict[str, str]:
    """Environment for a child server/CLI process: no pytest variables (NiceGUI reads them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
