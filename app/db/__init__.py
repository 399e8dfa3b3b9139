"""Metadata database: SQLModel tables, Alembic migrations and the repository behind `core.ports`."""
