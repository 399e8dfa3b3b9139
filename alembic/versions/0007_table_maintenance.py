"""table maintenance: the per-ingestion setting and a record of each compaction and vacuum

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 19:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maintenance', sa.JSON(), nullable=False, server_default='{}'))

    op.create_table('maintenance_run',
    sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('retention_hours', sa.Integer(), nullable=False),
    sa.Column('files_before', sa.Integer(), nullable=True),
    sa.Column('files_after', sa.Integer(), nullable=True),
    sa.Column('bytes_before', sa.BigInteger(), nullable=True),
    sa.Column('bytes_after', sa.BigInteger(), nullable=True),
    sa.Column('files_removed', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ingestion_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['ingestion_id'], ['ingestion.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ingestion_id', 'scheduled_for', name='uq_maintenance_slot')
    )
    with op.batch_alter_table('maintenance_run', schema=None) as batch_op:
        batch_op.create_index('ix_maintenance_ingestion_created', ['ingestion_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('maintenance_run', schema=None) as batch_op:
        batch_op.drop_index('ix_maintenance_ingestion_created')

    op.drop_table('maintenance_run')
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.drop_column('maintenance')
