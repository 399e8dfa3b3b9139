"""Engine creation and start-up migrations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"
CONNECT_TIMEOUT_SECONDS = 5
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pre-ping replaces connections a database restart broke; the timeouts keep a call to an unreachable database
    # from hanging a run or /health (the run's retries, app/db/retrying.py, then decide how long to wait).
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if url.startswith("postgresql") else {}
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=30, connect_args=connect_args
    )


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def script_heads(versions: Path = ALEMBIC_DIR / "versions") -> frozenset[str]:
    """The head revisions of the migration scripts, read from their `revision` / `down_revision` lines: what
    alembic's own script directory would say (a test checks it), without importing alembic. Empty when a script
    cannot be read that way, so the caller falls back to alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.glob("*.py"):
        source = script.read_text()
        revision = _REVISION.search(source)
        down = _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return frozenset()
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents)


def at_head(engine: Engine) -> bool:
    """Whether the database's alembic_version rows are exactly the scripts' heads. False when the table is missing
    or unreadable: alembic then decides (and creates it). A database that cannot be reached raises here, as alembic
    would."""
    heads = script_heads()
    if not heads:
        return False
    with engine.connect() as conn:
        try:
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        except DBAPIError:
            return False
    return current == heads


def upgrade(url: str, engine: Engine | None = None) -> None:
    """Apply every pending migration (run at start-up and by `autoloader db upgrade`). A database already at head is
    seen with one query, without importing alembic (about 0.2 s of every `autoloader run`); `engine`, when given,
    is used for that query instead of a connection of its own."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    probe = engine or make_engine(url)
    try:
        if at_head(probe):
            return
    finally:
        if engine is None:
            probe.dispose()
    from alembic import command

    command.upgrade(alembic_config(url), "head")
