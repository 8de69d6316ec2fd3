"""Alembic migrations match the tables on SQLite and PostgreSQL, and go down and up again."""

from __future__ import annotations

from alembic import command

from models.migrate import alembic_config


def test_migrations_match_the_models(any_db_url: str) -> None:
    # any_db_url is already at head; `check` fails if the tables drifted from the migrations.
    command.check(alembic_config(any_db_url))


def test_downgrade_to_base_and_back(sqlite_url: str) -> None:
    config = alembic_config(sqlite_url)

    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
