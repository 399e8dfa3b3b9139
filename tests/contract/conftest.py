"""Fixtures of the SQL-only store contracts: a migrated, empty database per metadata backend (SQLite, PostgreSQL)
and the SQL store on it. tests/contract/test_metadata_store.py has its own `store` (SQL and in-memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.db.database import make_engine, upgrade
from app.db.repository import SqlStore
from app.secrets_box import SecretBox
from tests.conftest import DATABASES
from tests.contract.test_metadata_store import _database_url


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database_url(request.param, request, tmp_path) as found:
        yield found


@pytest.fixture
def db(url: str) -> Iterator[Engine]:
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(db: Engine) -> SqlStore:
    return SqlStore(db, SecretBox("test-secret-key"))
