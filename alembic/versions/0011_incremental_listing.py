"""incremental listing: where a run may start listing, and when it last listed every file

`ingestion.listed_through`: every file whose path sorts at or before it is in the ledger (NULL: list fully).
`ingestion.full_listing_at`: when a run last listed every file (source.full_listing_interval_hours).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 02:55:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listed_through', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('full_listing_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep its AUTOINCREMENT (0008)
    with op.batch_alter_table('ingestion', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('full_listing_at')
        batch_op.drop_column('listed_through')
