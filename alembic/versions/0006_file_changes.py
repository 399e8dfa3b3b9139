"""file ledger: the loaded version of a changed file (previous size and etag) and the hash of the bytes loaded

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('file_ledger') as batch:
        batch.add_column(sa.Column('previous_size', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('previous_etag', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch.add_column(sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('file_ledger') as batch:
        batch.drop_column('content_hash')
        batch.drop_column('previous_etag')
        batch.drop_column('previous_size')
