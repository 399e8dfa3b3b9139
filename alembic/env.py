from __future__ import annotations

from sqlalchemy import engine_from_config, pool, text
from sqlmodel import SQLModel

import app.db.models  # noqa: F401  (registers the tables)
from alembic import context

config = context.config
target_metadata = SQLModel.metadata
MIGRATION_LOCK = 7_204_211
"""PostgreSQL advisory lock id held while migrating: replicas started at once on an empty database took turns
creating `alembic_version` and one crashed (duplicate key on pg_type). SQLite's writer lock serialises already."""


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":  # released when the migration's transaction ends
                connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
