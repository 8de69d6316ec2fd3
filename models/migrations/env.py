"""Alembic environment: runs on SQLite (batch mode) and PostgreSQL alike."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.database import make_engine

config = context.config
url: str = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or ""


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations over a connection."""
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
