"""Start-up's migration check: a database at head is seen with one query (no alembic import, see
tests/integration/test_cli_imports.py); anything else still goes through alembic."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from alembic import command
from app.db.database import alembic_config, at_head, make_engine, script_heads, upgrade


def _version(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        engine.dispose()


def test_the_scripts_heads_are_alembics_heads() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script_heads() == set(scripts.get_heads())


def test_heads_of_a_branch_and_its_merge(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("revision = 'a'\ndown_revision = None\n")
    (tmp_path / "b.py").write_text("revision: str = 'b'\ndown_revision: str | None = 'a'\n")
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert script_heads(tmp_path) == {"b", "c"}
    (tmp_path / "d.py").write_text("revision = 'd'\ndown_revision = ('b', 'c')\n")
    assert script_heads(tmp_path) == {"d"}
    (tmp_path / "odd.py").write_text("REVISION = make_one()\n")
    assert script_heads(tmp_path) == frozenset()  # unreadable: the caller asks alembic


def test_a_database_behind_head_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = make_engine(url)
    assert not at_head(engine)  # no alembic_version table yet
    (head,) = script_heads()
    previous = ScriptDirectory.from_config(alembic_config(url)).get_revision(head).down_revision
    assert isinstance(previous, str)
    command.upgrade(alembic_config(url), previous)
    assert _version(url) == {previous} and not at_head(engine)

    upgrade(url, engine)

    assert _version(url) == {head} and at_head(engine)
    engine.dispose()
