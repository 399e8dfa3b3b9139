"""ingestion ids are never handed out twice (SQLite: AUTOINCREMENT)

SQLite gives a new row the largest id + 1, so after the newest ingestion was deleted the next one took its id and
old links, alerts and API clients opened another ingestion. AUTOINCREMENT keeps the high-water mark in
sqlite_sequence. PostgreSQL sequences never reuse an id: nothing to do there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:40:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _recreate_ingestion(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    # Migrations run without PRAGMA foreign_keys (alembic/env.py), so the copy-and-rename keeps the rows that
    # reference ingestion.id as they are.
    with op.batch_alter_table(
        'ingestion', recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
    ):
        pass


def upgrade() -> None:
    _recreate_ingestion(True)


def downgrade() -> None:
    _recreate_ingestion(False)
