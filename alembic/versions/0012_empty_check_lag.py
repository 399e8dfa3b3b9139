"""empty check lag: how late the last empty continuous check started after its slot

`ingestion.last_empty_check_lag_seconds`: empty checks are folded into a count, not stored as runs (0009), so the
scheduler lag metric read only stored runs and went stale for continuous ingestions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_empty_check_lag_seconds', sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep its AUTOINCREMENT (0008)
    with op.batch_alter_table('ingestion', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('last_empty_check_lag_seconds')
