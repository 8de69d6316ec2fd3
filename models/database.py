"""Engine factory and session scope for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine, select


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Build an engine for ``url``.

    SQLite gets WAL mode and a busy timeout, so the API and the worker can write to the same
    file; PostgreSQL gets a pool with pre-ping so a restarted server is noticed.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Statement parameters hold personal data; keep them out of errors, logs and histories.
        hide_parameters=True,
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


Row = TypeVar("Row", bound=SQLModel)


def insert_once(session: Session, row: Row, *same: Any) -> tuple[Row, bool]:
    """Insert ``row`` unless a unique constraint says it exists: then return the row that
    matches ``same`` (the unique columns' conditions) and ``False``.

    Runs in a savepoint, so a concurrent insert of the same row leaves the transaction usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = session.exec(select(type(row)).where(*same)).first()
        if existing is None:  # the unique violation was something else
            raise
        return existing, False
    return row, True
