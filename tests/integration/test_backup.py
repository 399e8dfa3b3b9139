"""`autoloader db backup` / `db restore`: backup → wipe → restore → runs continue exactly once, on SQLite, on
PostgreSQL (a database of its own on 127.0.0.1:5432, dropped after) and from a SQLite backup into PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.cli import main
from app.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.helpers import read_table, spec, write_json_files
from tests.server_process import ADMIN_EMAIL, ADMIN_PASSWORD


@pytest.fixture
def fresh_pg_databases() -> Iterator[Any]:
    """Makes empty PostgreSQL databases with new names; drops them after the test."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    made: list[str] = []

    def make() -> str:
        name = f"autoloader_backup_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _url(kind: str, state_dir: Path, fresh_pg: Any) -> str:
    return f"sqlite:///{state_dir / 'data' / 'autoloader.db'}" if kind == "sqlite" else fresh_pg()


def _use(monkeypatch: pytest.MonkeyPatch, state_dir: Path, url: str) -> Settings:
    """The CLI's settings: this data dir (key in AUTOLOADER_SECRET_KEY) and metadata database."""
    monkeypatch.setenv("AUTOLOADER_DATA_DIR", str(state_dir / "data"))
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", url)
    monkeypatch.setenv("AUTOLOADER_SECRET_KEY", "test-secret-key")
    return Settings()


def _load(settings: Settings, landing: Path, **spec_overrides: Any) -> None:
    """An admin and the `events` ingestion (`spec_overrides` on the first call), activated and run over what
    `landing` holds."""
    from app.bootstrap import build

    services = build(settings)
    try:
        if services.accounts.needs_setup():
            services.accounts.setup_first_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
            events = spec(str(landing), table="events", name="events", **spec_overrides)
            services.ingestions.create(events, activate=True)
        services.runs.run_now("events")
    finally:
        services.close()


def _backed_up_then_loaded_again(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **spec_overrides: Any
) -> tuple[Settings, Path, Path]:
    """`events` loads 2 files, the metadata is backed up, then one more file loads (a batch the backup does not
    know): the settings, the landing folder and the backup file."""
    landing, file = tmp_path / "landing", state_dir / "metadata.backup"
    write_json_files(landing, count=2, records=10)
    settings = _use(monkeypatch, state_dir, f"sqlite:///{state_dir / 'data' / 'autoloader.db'}")
    _load(settings, landing, **spec_overrides)
    assert main(["db", "backup", str(file)]) == 0
    write_json_files(landing, count=1, records=10, start_id=20)
    _load(settings, landing)
    return settings, landing, file


def _wipe(url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.mark.parametrize(
    ("origin", "target"),
    [
        ("sqlite", "sqlite"),
        pytest.param("postgres", "postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite", "postgres", marks=pytest.mark.postgres),  # the move to production
    ],
)
def test_backup_wipe_restore_then_runs_continue_exactly_once(
    origin: str,
    target: str,
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    from app.bootstrap import build

    fresh_pg = request.getfixturevalue("fresh_pg_databases") if "postgres" in (origin, target) else None
    landing, file = tmp_path / "landing", state_dir / "backups" / "metadata.db"
    write_json_files(landing, count=3, records=50)
    origin_url = _url(origin, state_dir, fresh_pg)
    _load(_use(monkeypatch, state_dir, origin_url), landing)

    assert main(["db", "backup", str(file)]) == 0
    said = capsys.readouterr().out
    assert "1 ingestion(s), 1 run(s), 3 ledger row(s), 1 user(s)" in said
    assert file.stat().st_mode & 0o777 == 0o600  # it holds the encrypted credentials: owner only, as secret.key
    assert "the tables themselves" in said and "stored credentials can only be decrypted with the same key" in said

    target_url = origin_url if target == origin else _url(target, state_dir, fresh_pg)
    _wipe(target_url)
    settings = _use(monkeypatch, state_dir, target_url)
    assert main(["db", "restore", str(file)]) == 0
    said = capsys.readouterr().out
    assert "restored 1 ingestion(s), 1 run(s), 3 ledger row(s), 1 user(s)" in said
    assert " ! " not in said  # the table and the ledger agree

    write_json_files(landing, count=1, records=50, start_id=150)
    services = build(settings)
    try:
        outcome = services.runs.run_now("events")
        assert (outcome.run_id, outcome.metrics.files_processed, outcome.metrics.records_ingested) == (2, 1, 50)
        ingestion = services.store.find_ingestion("events")
        ids = read_table(services.engines.table_uri(ingestion.spec.destination, 1)).column("id").to_pylist()
    finally:
        services.close()
    assert sorted(ids) == list(range(200))


def test_restore_refuses_a_database_in_use_and_says_when_the_tables_are_ahead(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, landing, file = _backed_up_then_loaded_again(state_dir, tmp_path, monkeypatch)
    capsys.readouterr()

    assert main(["db", "restore", str(file)]) == 2
    assert "is not empty (1 ingestion(s), 2 run(s), 3 ledger row(s), 1 user(s))" in capsys.readouterr().err
    assert main(["db", "restore", "--force", str(file)]) == 0
    said = capsys.readouterr().out
    assert "restored 1 ingestion(s), 1 run(s), 2 ledger row(s)" in said
    assert "'events' (main.raw.events: batch 2 in the table, 1 in the ledger): 1 file the table holds recorded" in said
    write_json_files(landing, count=1, records=10, start_id=30, prefix="after")
    _load(settings, landing)  # found by an outsider: the file loaded after the backup was loaded a second time
    ids = read_table(str(state_dir / "data" / "warehouse" / "main" / "raw" / "events")).column("id").to_pylist()
    assert sorted(ids) == list(range(40))

    (state_dir / "not-a-backup").write_text("hello")
    assert main(["db", "restore", "--force", str(state_dir / "not-a-backup")]) == 2
    assert "is not a SQLite database" in capsys.readouterr().err
    with sqlite3.connect(file) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    assert main(["db", "restore", "--force", str(file)]) == 2
    assert "at migration revision 9999, which this Autoloader does not know" in capsys.readouterr().err


def test_restore_pauses_an_ingestion_whose_table_cannot_tell_the_files_loaded_after_the_backup(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without lineage columns the table cannot say which files it holds: a schedule would load them twice."""
    from app.bootstrap import build

    settings, _, file = _backed_up_then_loaded_again(
        state_dir, tmp_path, monkeypatch, destination={"lineage_columns": False}
    )
    capsys.readouterr()

    assert main(["db", "restore", "--force", str(file)]) == 0
    said = capsys.readouterr().out
    assert "'events' (main.raw.events: batch 2 in the table, 1 in the ledger): paused, the table has no " in said
    assert "restore the table from the backup's time, or run a full refresh, then resume" in said
    services = build(settings)
    try:
        assert services.store.find_ingestion("events").status == "paused"
    finally:
        services.close()


def test_restore_on_another_master_key_says_the_credentials_do_not_decrypt(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.bootstrap import build

    file = state_dir / "metadata.backup"
    settings = _use(monkeypatch, state_dir, f"sqlite:///{state_dir / 'data' / 'autoloader.db'}")
    services = build(settings)
    credentials = {"type": "access_key", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t"}
    source = {"type": "s3", "path": "s3://bucket/landing/", "region": "eu-west-1", "credentials": credentials}
    services.ingestions.create(spec("/unused", name="s3-draft", source=source))  # a draft: nothing is reached
    services.close()
    assert main(["db", "backup", str(file)]) == 0
    assert main(["db", "restore", "--force", str(file)]) == 0
    assert "do not decrypt" not in capsys.readouterr().out
    monkeypatch.setenv("AUTOLOADER_SECRET_KEY", "another-key")
    assert main(["db", "restore", "--force", str(file)]) == 0
    assert "1 of 1 stored credential(s) do not decrypt with this key" in capsys.readouterr().out
