"""Engine factory and session scope for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Executable, Select, event, orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, create_engine, select

from models import outbox

log = logging.getLogger(__name__)
# Every change a live page shows writes its ui_events row in its own transaction.
outbox.install()


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Build an engine for ``url``.

    SQLite gets WAL mode and a busy timeout, so the API and the worker can write to the same
    file; PostgreSQL gets a pool with pre-ping so a restarted server is noticed, and plans
    every statement for its own values (``plan_cache_mode``).
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
        # psycopg prepares a statement run 5 times on a connection; after 5 more PostgreSQL
        # may switch it to a generic plan, made for no org in particular. An org-filtered
        # search then plans as for an average org: the inbox word search went from 30 ms to
        # 159 ms on a pooled connection that way. Every execution is planned for its values.
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
    )


#: A read of several statements sees one moment: on PostgreSQL its transaction is REPEATABLE
#: READ (one snapshot for every statement) and READ ONLY. Under READ COMMITTED an inbox page
#: read a thread before a message's commit and its last message after it. SQLite, the
#: embedded default, is left as it is (its driver opens no transaction for a SELECT).
SNAPSHOT: dict[str, Any] = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


class HoldingSession(Session):
    """A session that holds every row it loads or writes until it closes.

    The identity map alone holds rows weakly: a row a use case read and let go (an org read
    for its settings, a lead for its contact) was read again by the next ``session.get`` in
    the same transaction. Held, the identity map answers it without a statement (a new lead
    and its first touch took 15 such reads). Sessions here last one transaction.
    """


@event.listens_for(HoldingSession, "loaded_as_persistent")
@event.listens_for(HoldingSession, "pending_to_persistent")
def _hold(session: Session, instance: object) -> None:
    session.info.setdefault("keepwarm_held", []).append(instance)


@contextmanager
def session_scope(engine: Engine, *, snapshot: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error; with ``snapshot``, a
    read-only one whose statements all see the same committed state (``SNAPSHOT``)."""
    with HoldingSession(engine, expire_on_commit=False) as session:
        if snapshot and engine.dialect.name == "postgresql":
            session.connection(execution_options=SNAPSHOT)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


#: SQLSTATEs that mean "run the whole transaction again": PostgreSQL broke a deadlock by
#: failing this side (40P01), or a serializable transaction lost a race (40001). Nothing the
#: transaction wrote was kept, so running it again is safe.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
#: Attempts at one transaction before the error goes to the caller (an API request gets a
#: 503, an activity its own retry policy).
TRANSACTION_ATTEMPTS = 5

T = TypeVar("T")


def retryable(error: BaseException) -> bool:
    """``True`` for a deadlock or serialization failure the database asks us to retry."""
    return (
        isinstance(error, DBAPIError)
        and getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


#: Maps an error out of a transaction to the one its caller raises (``None``: unchanged).
Translate = Callable[[BaseException], BaseException | None]


def transaction(
    engine: Engine,
    fn: Callable[..., T],
    /,
    *,
    translate: Translate | None = None,
    snapshot: bool = False,
    **kwargs: Any,
) -> T:
    """``fn(session, **kwargs)`` in one transaction, committed if it returns.

    The one place transactions run for the API and the activities. A deadlock or a
    serialization failure runs ``fn`` again in a fresh transaction, at most
    ``TRANSACTION_ATTEMPTS`` times with a short jittered backoff, so two operators (or an
    operator and a workflow) touching the same rows at once both succeed; ``fn`` must do
    nothing but database work, since it may run more than once. Any other error, or the
    last attempt's, goes to the caller, through ``translate`` when given. ``snapshot``: a
    read that must see one moment (``session_scope``).
    """
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with session_scope(engine, snapshot=snapshot) as session:
                return fn(session, **kwargs)
        except Exception as error:
            if retryable(error) and attempt < TRANSACTION_ATTEMPTS:
                pause = 0.01 * 2**attempt * (1 + random.random())
                log.warning(
                    "%s: %s (attempt %d of %d); again in %.0f ms",
                    getattr(fn, "__qualname__", "transaction"),
                    type(getattr(error, "orig", error)).__name__,
                    attempt,
                    TRANSACTION_ATTEMPTS,
                    pause * 1000,
                )
                time.sleep(pause)
                continue
            translated = translate(error) if translate is not None else None
            if translated is not None:
                raise translated from error
            raise
    raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover


#: The execution option ``lock`` and ``locking`` set: on SQLite the statement's transaction
#: takes the database's write lock first (``_sqlite_write_lock``).
WRITE_LOCK = "keepwarm_write_lock"


@event.listens_for(orm.Session, "do_orm_execute")
def _sqlite_write_lock(state: orm.ORMExecuteState) -> None:
    """SQLite has no row locks, and its driver opens a transaction only at the first write:
    the reads before it run each on its own, and another writer can commit between a read
    and the write that depends on it (two claims for one person each counting a budget of
    one as unused). A locking read there begins the transaction ``IMMEDIATE``: it takes the
    database's write lock, waiting for the current writer like any write, and holds it to
    the end, so what the transaction reads from then on stays as read."""
    if state.execution_options.get(WRITE_LOCK):
        _begin_writing(state.session)


def _begin_writing(session: orm.Session) -> None:
    """On SQLite, begin the session's transaction ``IMMEDIATE`` unless one is open."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.dbapi_connection
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Row locks are taken ``FOR NO KEY UPDATE``: they serialize writers of the row but don't
#: block the ``KEY SHARE`` lock PostgreSQL takes on a parent row when a child row that
#: references it is written (a message on a thread, a thread update after an insert in the
#: same transaction). ``FOR UPDATE`` blocked those checks, and two transactions that each
#: held one parent row and checked the other's deadlocked.
ROW_LOCK: dict[str, Any] = {"key_share": True}


Row = TypeVar("Row", bound=SQLModel)


Query = TypeVar("Query", bound=Select[Any])


def locking(query: Query) -> Query:
    """``query`` locking the rows it selects (``ROW_LOCK``) and reading them afresh: a row
    the session already holds is refreshed with what the lock waited for, not returned as
    it was read earlier in the transaction (``HoldingSession`` holds what it read)."""
    return query.with_for_update(**ROW_LOCK).execution_options(
        populate_existing=True, **{WRITE_LOCK: True}
    )


def lock(session: Session, model: type[Row], row_id: str) -> Row | None:
    """``model``'s row ``row_id``, locked until the transaction ends (``None`` if there is no
    such row). Lock rows in the order ``models/services`` states."""
    return session.get(
        model,
        row_id,
        with_for_update=ROW_LOCK,
        populate_existing=True,
        execution_options={WRITE_LOCK: True},
    )


def insert_once(session: Session, row: Row, *same: Any) -> tuple[Row, bool]:
    """Insert ``row`` unless a unique constraint says it exists: then return the row that
    matches ``same`` (the unique columns' conditions) and ``False``.

    Runs in a savepoint, so a concurrent insert of the same row leaves the transaction usable.
    On SQLite a savepoint opened outside a transaction is a transaction of its own, and its
    release would commit the row alone: the session's transaction is begun first.
    """
    _begin_writing(session)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = session.exec(select(type(row)).where(*same)).first()
        if existing is None:  # the unique violation was something else
            raise
        return existing, False
    return row, True


def add_up(
    session: Session,
    model: type[SQLModel],
    *,
    keys: tuple[str, ...],
    sums: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Insert ``rows`` into ``model``'s table, or add their ``sums`` columns to the row with
    the same ``keys`` (a unique index): one statement per row, in the order given.

    The statement is built once per dialect and table and its rows go as parameters, so
    SQLAlchemy compiles it once: a multi-row ``VALUES`` list has no cache key and was
    compiled again at every call (the lead counts' upsert was a tenth of the worker's CPU).
    """
    if rows:
        session.execute(_add_up(session.get_bind().dialect.name, model, keys, sums), rows)


@cache
def _add_up(
    dialect: str, model: type[SQLModel], keys: tuple[str, ...], sums: tuple[str, ...]
) -> Executable:
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
    table = statement.table
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )
