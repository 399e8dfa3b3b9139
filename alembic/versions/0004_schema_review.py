"""schema review

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 23:09:33.456015
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schema_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('files', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('schema_version', schema=None) as batch_op:
        batch_op.drop_column('resolved_by')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('files')

