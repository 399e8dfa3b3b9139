"""`autoloader db backup FILE` / `db restore FILE`: the metadata database in one portable file.

A backup is always a SQLite database file at the migration revision of the database it was made from:

* from SQLite, by SQLite's online backup API (one read transaction: consistent while a server writes, WAL included);
* from PostgreSQL, by copying every table through SQLAlchemy inside one REPEATABLE READ, READ ONLY transaction (one
  snapshot, as pg_dump takes) into a SQLite file migrated to the same revision.

Why not pg_dump: it is not in the image, it must be at least as new as the server (a trap at the worst moment), and
its dump restores into PostgreSQL only. One format for both backends needs no client tools, can be opened with any
SQLite tool, and restores across backends (SQLite → PostgreSQL is the move from the embedded default to production).

Restore checks the backup's revision is one this code knows, refuses a target that holds data unless forced, puts
the rows back (SQLite: the backup API again; PostgreSQL: the same table copy, then the id sequences) and applies the
migrations since. What a backup does not hold: the tables themselves (the warehouse) and the master key that
encrypts stored credentials.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from core.domain import Ingestion, IngestionStatus
from core.errors import AutoloaderError, ConfigError, Conflict
from core.storage import open_storage
from core.table_files import files_the_table_holds
from core.wording import counted

if TYPE_CHECKING:
    from app.bootstrap import Container
    from app.secrets_box import SecretBox
    from app.settings import Settings

VERSION_TABLE = "alembic_version"
SEEDED_TABLES = frozenset({VERSION_TABLE, "tenant"})
"""Tables a freshly migrated database already has rows in (the first tenant): they alone do not make it 'in use'."""
COUNTED = {"ingestion": "ingestion(s)", "run": "run(s)", "file_ledger": "ledger row(s)", "app_user": "user(s)"}
_CHUNK = 2_000


@dataclass(slots=True)
class Contents:
    """What a metadata database holds: its revision and its row count per table."""

    revision: str | None
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def in_use(self) -> bool:
        return any(n for name, n in self.rows.items() if name not in SEEDED_TABLES) or self.rows.get("tenant", 0) > 1

    def describe(self) -> str:
        return ", ".join(f"{self.rows.get(table, 0):,} {label}" for table, label in COUNTED.items())


# --- the two sides --------------------------------------------------------------------------------------------------
def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise ConfigError(f"{url} is an in-memory database: there is nothing to back up.", "Use a database file.")
    return Path(parsed.database)


def contents(conn: Connection) -> Contents:
    tables = inspect(conn).get_table_names()
    if VERSION_TABLE not in tables:
        return Contents(None, {t: _count(conn, t) for t in tables})
    revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return Contents(revision, {t: _count(conn, t) for t in tables if t != VERSION_TABLE})


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(table)}")).scalar_one())


def _contents_of(url: str) -> Contents:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return contents(conn)
    finally:
        engine.dispose()


def check_known(revision: str | None, what: str) -> str:
    """The revision, if this code's migrations know it: a backup or database from a newer release is refused."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from app.db.database import alembic_config

    if revision is None:
        raise ConfigError(
            f"{what} is not an Autoloader metadata database (it has no {VERSION_TABLE} table).",
            "Give a file made by `autoloader db backup`.",
        )
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    except CommandError:
        raise ConfigError(
            f"{what} is at migration revision {revision}, which this Autoloader does not know "
            "(a newer release wrote it).",
            "Use an Autoloader at least as new as the one that wrote it.",
        ) from None
    return revision


def _migrate(url: str, revision: str) -> None:
    from alembic import command
    from app.db.database import alembic_config

    command.upgrade(alembic_config(url), revision)


# --- the table copy (any backend to any backend, both at the same revision) -----------------------------------------
def copy_order(names: Iterable[str]) -> list[str]:
    """Parents before children: the model's order, then any table it does not know (none today), by name."""
    from sqlmodel import SQLModel

    import app.db.models  # noqa: F401  (registers the tables)

    present = set(names) - {VERSION_TABLE}
    known = [t.name for t in SQLModel.metadata.sorted_tables if t.name in present]
    return known + sorted(present - set(known))


def _typed_table(name: str, source: Connection, target: Connection) -> Table:
    """The columns both sides have, typed as the model types them (so each backend's values convert: JSON text to
    objects, 0/1 to booleans, timestamps), or as the target reflects a column the model no longer has."""
    from sqlmodel import SQLModel

    model = SQLModel.metadata.tables.get(name)
    in_source = {c["name"] for c in inspect(source).get_columns(name)}
    columns = []
    for reflected in inspect(target).get_columns(name):
        column = reflected["name"]
        if column in in_source:
            typed = model.c[column].type if model is not None and column in model.c else reflected["type"]
            columns.append(Column(column, typed))
    return Table(name, MetaData(), *columns)


def copy_rows(source: Connection, target: Connection) -> None:
    """Every row of every table (the target's seeded rows replaced), in chunks; then PostgreSQL's id sequences."""
    order = copy_order(inspect(source).get_table_names())
    missing = set(order) - set(inspect(target).get_table_names())
    if missing:
        raise ConfigError(f"Tables {sorted(missing)} are missing from the target.", "Report this as a bug.")
    for name in reversed(order):
        target.execute(text(f"DELETE FROM {target.dialect.identifier_preparer.quote(name)}"))
    for name in order:
        table = _typed_table(name, source, target)
        result = source.execution_options(yield_per=_CHUNK).execute(select(table))
        for chunk in result.partitions():
            target.execute(insert(table), [dict(row._mapping) for row in chunk])
    if target.dialect.name == "postgresql":
        _reset_sequences(target, order)


def _reset_sequences(conn: Connection, tables: list[str]) -> None:
    """Ids were copied as they were: each table's sequence continues after its largest one."""
    for name in tables:
        quoted = conn.dialect.identifier_preparer.quote(name)
        if "id" not in {c["name"] for c in inspect(conn).get_columns(name)}:
            continue
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": quoted}).scalar()
        if sequence:
            conn.execute(
                text(f"SELECT setval(:s, COALESCE((SELECT MAX(id) FROM {quoted}), 0) + 1, false)"), {"s": sequence}
            )


# --- backup ---------------------------------------------------------------------------------------------------------
def backup(url: str, file: Path) -> Contents:
    """Write the metadata database at `url` into `file` (replaced whole, never left half-written)."""
    file = file.expanduser().resolve()
    source = sqlite_path(url)
    if source is not None and source.resolve() == file:
        raise ConfigError(f"{file} is the metadata database itself.", "Write the backup to another file.")
    if source is not None and not source.exists():
        raise ConfigError(f"There is no metadata database at {source}.", "Check AUTOLOADER_DATA_DIR.")
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)  # owner only from the start, as secret.key: it holds the encrypted credentials
    try:
        if source is not None:
            _sqlite_backup(source, partial)
        else:
            _logical_backup(url, partial)
        made = _contents_of(f"sqlite:///{partial}")
        check_known(made.revision, f"The database at {make_url(url).render_as_string(hide_password=True)}")
        os.chmod(partial, 0o600)
        os.replace(partial, file)
    finally:
        partial.unlink(missing_ok=True)
    return made


def _sqlite_backup(source: Path, file: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(file) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    src.close()
    dst.close()


def _logical_backup(url: str, file: Path) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as probe:
            revision = check_known(contents(probe).revision, "The metadata database")
        target_url = f"sqlite:///{file}"
        _migrate(target_url, revision)
        target = create_engine(target_url)
        try:
            snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with snapshot as src, src.begin(), target.begin() as dst:
                copy_rows(src, dst)
        finally:
            target.dispose()
    finally:
        engine.dispose()


# --- restore --------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Restored:
    backup: Contents
    revision: str


def restore(file: Path, url: str, force: bool = False) -> Restored:
    """Put the backup in `file` into the database at `url`, then apply the migrations since its revision."""
    from app.db.database import upgrade

    file = file.expanduser().resolve()
    if not file.is_file():
        raise ConfigError(
            f"There is no backup file at {file}.", "Give the path of a file made by `autoloader db backup`."
        )
    made = _read_backup(file)
    revision = check_known(made.revision, f"The backup {file}")
    _refuse_in_use(url, force)
    target = sqlite_path(url)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(file) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        src.close()
        dst.close()
    else:
        _logical_restore(file, url, revision)
    upgrade(url)
    return Restored(made, _contents_of(url).revision or "")


def _read_backup(file: Path) -> Contents:
    try:
        return _contents_of(f"sqlite:///{file}")
    except DBAPIError:
        raise ConfigError(
            f"{file} is not a SQLite database, so not a backup of Autoloader's metadata.",
            "Give a file made by `autoloader db backup`.",
        ) from None


def _refuse_in_use(url: str, force: bool) -> None:
    shown = make_url(url).render_as_string(hide_password=True)
    target = sqlite_path(url)
    if target is not None and not target.exists():
        return
    current = _contents_of(url)
    if current.in_use and not force:
        raise Conflict(
            f"The metadata database {shown} is not empty ({current.describe()}): restoring would replace it.",
            "Restore into an empty database, or add --force to replace its content (stop every server using it "
            "first; `autoloader db backup` it before if it may still be needed).",
        )


def _logical_restore(file: Path, url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _drop_metadata_tables(conn)
        _migrate(url, revision)
        source = create_engine(f"sqlite:///{file}")
        try:
            with source.connect() as src, engine.begin() as dst:
                copy_rows(src, dst)
        finally:
            source.dispose()
    finally:
        engine.dispose()


def _drop_metadata_tables(conn: Connection) -> None:
    """Autoloader's own tables only: anything else in the schema is left alone."""
    present = set(inspect(conn).get_table_names())
    for name in [*reversed(copy_order(present)), VERSION_TABLE]:
        if name in present:
            conn.execute(text(f"DROP TABLE {conn.dialect.identifier_preparer.quote(name)} CASCADE"))


# --- after a restore ------------------------------------------------------------------------------------------------
def settle_tables_ahead_of_ledger(container: Container) -> list[str]:
    """Ingestions whose table holds batches the restored ledger does not (files loaded after the backup was made,
    which would load a second time), settled: the source files whose rows the table holds (by `_source_file`) are
    recorded as loaded; where that cannot be told (no lineage column, the source out of reach) the ingestion is
    paused instead, so no schedule loads them twice. Returns what was done, one line each. Ingestions on a
    cluster are not asked (their engine may not be running)."""
    done = []
    for ingestion in container.store.list_ingestions():
        if ingestion.spec.cluster_id is not None:
            continue
        engine = container.engines.for_ingestion(ingestion)
        committed = engine.committed_version(ingestion.spec.destination, ingestion.app_id) or 0
        recorded = container.store.max_batch_seq(ingestion.id)
        if committed <= recorded:
            continue
        where = f"'{ingestion.name}' ({ingestion.spec.destination.full_name}: batch {committed} in the table, "
        where += f"{recorded} in the ledger)"
        try:
            adopted = _record_files_the_table_holds(container, ingestion)
        except AutoloaderError as exc:
            _pause(container, ingestion)
            done.append(f"{where}: paused, the files loaded after the backup cannot be told ({exc.message})")
            continue
        if adopted is None:
            _pause(container, ingestion)
            done.append(
                f"{where}: paused, the table has no _source_file column to tell the files loaded after the backup; "
                "restore the table from the backup's time, or run a full refresh, then resume"
            )
            continue
        done.append(f"{where}: {counted(adopted, 'file')} the table holds recorded as loaded, not loaded again")
    return done


def _pause(container: Container, ingestion: Ingestion) -> None:
    if ingestion.status == IngestionStatus.ACTIVE:
        container.ingestions.pause(ingestion.id)


def _record_files_the_table_holds(container: Container, ingestion: Ingestion) -> int | None:
    """Record as loaded the source's files that the ledger lacks and the table holds rows of; how many (None: the
    table has no `_source_file` column to tell)."""
    spec = ingestion.spec
    if not spec.destination.lineage_columns:
        return None
    engine = container.engines.for_ingestion(ingestion)
    known = set(container.store.known_files(ingestion.id))
    listed = list(open_storage(spec.source, container.guards).list_files(spec.source.file_pattern))
    entries = files_the_table_holds(engine, spec, listed, known)
    container.store.upsert_files(ingestion.id, None, entries)
    return len(entries)


def credentials_the_key_cannot_open(engine: Engine, box: SecretBox) -> tuple[int, int]:
    """(stored secrets, how many of them the current master key cannot decrypt): a restore onto another key shows."""
    from sqlmodel import Session

    from app.db.models import Cluster, Ingestion
    from core.config import SECRET_FIELDS

    secrets: list[str] = []
    with Session(engine) as s:
        for source in s.execute(select(Ingestion.source)).scalars():  # type: ignore[call-overload]
            credentials = (source or {}).get("credentials") or {}
            secrets += [credentials[key] for key in SECRET_FIELDS if credentials.get(key)]
        secrets += [t for t in s.execute(select(Cluster.token_encrypted)).scalars() if t]  # type: ignore[call-overload]
    failed = 0
    for secret in secrets:
        try:
            box.decrypt(secret)
        except ConfigError:
            failed += 1
    return len(secrets), failed


def describe_exclusions(settings: Settings) -> list[str]:
    """What the command says a backup leaves out."""
    key = "AUTOLOADER_SECRET_KEY" if settings.secret_key else f"the key file {settings.data_dir / 'secret.key'}"
    return [
        "not in the backup:",
        f"  - the tables themselves (the warehouse {settings.resolved_warehouse}): back it up with its storage, "
        "at the same time as the metadata",
        f"  - the master key ({key}): stored credentials can only be decrypted with the same key; "
        "keep a copy of it apart from this file",
    ]
