"""ingestion revision: a counter of saved settings, for edits made from a stale form

`ingestion.revision` moves by one at every save of the settings (not at status changes). An edit sent with the
revision it was read at (the console's edit page; the API's If-Match) is refused once another save came in
between: two tabs editing one ingestion lost the first save without a word.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep its AUTOINCREMENT (0008)
    with op.batch_alter_table('ingestion', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('revision')
