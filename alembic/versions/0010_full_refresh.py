"""full refresh: the ingestion's refresh marker

`ingestion.full_refresh_after`: NULL when no full refresh is under way; -1 once one is requested (the next run
starts it); N >= 0 once a run started it, N being the table's committed batch (Delta application transaction) at
that moment. The refresh is done when the table holds a batch above N: that batch replaced the table's content.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('full_refresh_after', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep its AUTOINCREMENT (0008)
    with op.batch_alter_table('ingestion', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('full_refresh_after')
