"""tenants, users, API tokens, console sessions; every ingestion, cluster, notification and audit entry belongs to a
tenant (existing rows to the first one); names are unique per tenant

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:21:52.769438
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _cluster_without_unique_name() -> sa.Table:
    """The cluster table as 0001 made it, minus its unnamed UNIQUE(name): the batch copy rebuilds it from this."""
    return sa.Table(
        'cluster', sa.MetaData(),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('connect_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('table_format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('catalog', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('price_per_hour', sa.Float(), nullable=False),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_encrypted', sa.Text(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def upgrade() -> None:
    op.create_table('tenant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', name='uq_tenant_name')
    )
    op.execute(sa.text("INSERT INTO tenant (id, name, created_at) VALUES (1, 'default', CURRENT_TIMESTAMP)"))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text("SELECT setval(pg_get_serial_sequence('tenant', 'id'), 1)"))
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('instance_admin', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('last_login_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name='fk_app_user_tenant'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email', name='uq_app_user_email')
    )
    op.create_index('ix_app_user_tenant_id', 'app_user', ['tenant_id'], unique=False)
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('last_used_at', TS, nullable=True),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ondelete='CASCADE', name='fk_api_token_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash', name='uq_api_token_hash')
    )
    op.create_index('ix_api_token_user_id', 'api_token', ['user_id'], unique=False)
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ondelete='CASCADE', name='fk_user_session_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash', name='uq_user_session_hash')
    )
    op.create_index('ix_user_session_user_id', 'user_session', ['user_id'], unique=False)

    for table in ('audit_log', 'notification'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=False, server_default='1'))
            batch_op.create_index(f'ix_{table}_tenant_id', ['tenant_id'], unique=False)
            batch_op.create_foreign_key(f'fk_{table}_tenant', 'tenant', ['tenant_id'], ['id'])

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text('ALTER TABLE cluster DROP CONSTRAINT IF EXISTS cluster_name_key'))
        cluster = op.batch_alter_table('cluster', schema=None)
    else:
        cluster = op.batch_alter_table('cluster', copy_from=_cluster_without_unique_name(), recreate='always')
    with cluster as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_cluster_tenant_id', ['tenant_id'], unique=False)
        batch_op.create_unique_constraint('uq_cluster_tenant_name', ['tenant_id', 'name'])
        batch_op.create_foreign_key('fk_cluster_tenant', 'tenant', ['tenant_id'], ['id'])

    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('created_by', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_ingestion_name')
        batch_op.create_index('ix_ingestion_name', ['name'], unique=False)
        batch_op.create_index('ix_ingestion_tenant_id', ['tenant_id'], unique=False)
        batch_op.create_unique_constraint('uq_ingestion_tenant_name', ['tenant_id', 'name'])
        batch_op.create_foreign_key('fk_ingestion_created_by', 'app_user', ['created_by'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_ingestion_tenant', 'tenant', ['tenant_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('ingestion', schema=None) as batch_op:
        batch_op.drop_constraint('fk_ingestion_tenant', type_='foreignkey')
        batch_op.drop_constraint('fk_ingestion_created_by', type_='foreignkey')
        batch_op.drop_constraint('uq_ingestion_tenant_name', type_='unique')
        batch_op.drop_index('ix_ingestion_tenant_id')
        batch_op.drop_index('ix_ingestion_name')
        batch_op.create_index('ix_ingestion_name', ['name'], unique=True)
        batch_op.drop_column('created_by')
        batch_op.drop_column('tenant_id')
    with op.batch_alter_table('cluster', schema=None) as batch_op:
        batch_op.drop_constraint('fk_cluster_tenant', type_='foreignkey')
        batch_op.drop_constraint('uq_cluster_tenant_name', type_='unique')
        batch_op.drop_index('ix_cluster_tenant_id')
        batch_op.drop_column('tenant_id')
        batch_op.create_unique_constraint('cluster_name_key', ['name'])
    for table in ('notification', 'audit_log'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_tenant', type_='foreignkey')
            batch_op.drop_index(f'ix_{table}_tenant_id')
            batch_op.drop_column('tenant_id')
    op.drop_index('ix_user_session_user_id', table_name='user_session')
    op.drop_table('user_session')
    op.drop_index('ix_api_token_user_id', table_name='api_token')
    op.drop_table('api_token')
    op.drop_index('ix_app_user_tenant_id', table_name='app_user')
    op.drop_table('app_user')
    op.drop_table('tenant')
