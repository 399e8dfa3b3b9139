"""scheduling: fire slots, retries, next fire time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:55:47.104227
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_fire_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('retry_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('not_before', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint('uq_run_retry_of', ['retry_of'])
        batch_op.create_unique_constraint('uq_run_slot', ['ingestion_id', 'scheduled_for'])



def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_constraint('uq_run_slot', type_='unique')
        batch_op.drop_constraint('uq_run_retry_of', type_='unique')
        batch_op.drop_column('not_before')
        batch_op.drop_column('retry_of')
        batch_op.drop_column('attempt')
        batch_op.drop_column('scheduled_for')

    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.drop_column('next_fire_at')

