"""runs numbered per ingestion; empty continuous checks counted on the ingestion instead of stored as runs

`run.number` is the run's number within its ingestion (Run #1, #2, ...): existing runs are numbered in id order.
It stays nullable (rows written by older code or tools outside the store have none); the unique index keeps two
runs of one ingestion from sharing a number.

`ingestion.empty_checks` / `empty_checks_since` / `last_empty_check_at`: a continuous ingestion's checks that found
no new file and failed nothing, counted instead of stored as runs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 02:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# UPDATE ... FROM with a window function: SQLite 3.33+ and PostgreSQL both run it; one pass over the run table.
NUMBER_EXISTING_RUNS = """
UPDATE run SET number = numbered.n
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY ingestion_id ORDER BY id) AS n FROM run) AS numbered
WHERE run.id = numbered.id
"""


def upgrade() -> None:
    op.add_column('run', sa.Column('number', sa.Integer(), nullable=True))
    op.execute(NUMBER_EXISTING_RUNS)
    op.create_index('uq_run_ingestion_number', 'run', ['ingestion_id', 'number'], unique=True)
    op.add_column('ingestion', sa.Column('empty_checks', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('ingestion', sa.Column('empty_checks_since', sa.DateTime(timezone=True), nullable=True))
    op.add_column('ingestion', sa.Column('last_empty_check_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.drop_column('last_empty_check_at')
        batch_op.drop_column('empty_checks_since')
        batch_op.drop_column('empty_checks')
    op.drop_index('uq_run_ingestion_number', table_name='run')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('number')
