"""Senders' paces and the sends waiting for them (``models.rules.pacing``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.database import lock
from models.rules.pacing import Queued
from models.tables import PacedSend, SenderPace

#: Waiting rows this long past their turn are deleted when their sender next sends.
FORGOTTEN_AFTER = timedelta(hours=1)


def lock_sender(session: Session, *, sender: str) -> SenderPace:
    """The sender's pace row, made if new and locked until the transaction ends (after the
    contact: every paced claim locks its contact first). The insert is a write, so on
    SQLite it takes the database's write lock for the rest of the transaction too."""
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    session.execute(
        insert(SenderPace).values(sender=sender).on_conflict_do_nothing(index_elements=["sender"])
    )
    pace = lock(session, SenderPace, sender)
    assert pace is not None
    return pace


def waiting(session: Session, *, key: str) -> PacedSend | None:
    """The send ``key``'s place in its sender's queue, if it waits."""
    return session.get(PacedSend, key)


def count_ahead(
    session: Session,
    *,
    sender: str,
    key: str,
    priority: int,
    since: datetime,
    live_since: datetime,
) -> int:
    """How many live waiters of ``sender`` go before the send ``key`` (a higher score, or the
    same and waiting since earlier); one whose turn came before ``live_since`` and that has
    not come back does not count."""
    return session.exec(
        select(func.count())
        .select_from(PacedSend)
        .where(
            PacedSend.sender == sender,
            PacedSend.key != key,
            PacedSend.due_at >= live_since,
            or_(
                col(PacedSend.priority) > priority,
                (col(PacedSend.priority) == priority) & (col(PacedSend.since) < since),
            ),
        )
    ).one()


def wait_in_queue(session: Session, *, queued: Queued) -> None:
    """Keep a held-back send's place in its sender's queue, or move its turn (keeping
    ``since``); its own transaction, as the claim that held it back was rolled back."""
    row = session.get(PacedSend, queued.key)
    if row is None:
        row = PacedSend(
            key=queued.key,
            sender=queued.sender,
            org_id=queued.org_id,
            priority=queued.priority,
            since=queued.since,
            due_at=queued.due_at,
        )
    else:
        row.priority, row.due_at = queued.priority, queued.due_at
    session.add(row)


def leave_queue(session: Session, *, key: str) -> None:
    """The send ``key`` no longer waits for its sender (the gate held it back for another
    reason, or it went)."""
    session.execute(delete(PacedSend).where(col(PacedSend.key) == key))


def sent_from(
    session: Session, *, pace: SenderPace, next_at: datetime, gap: timedelta, key: str
) -> None:
    """The send ``key`` took its sender's slot: the next one is at ``next_at`` (counted with
    ``gap``); its waiting row (and any forgotten by sends that never came back) is gone."""
    pace.next_at, pace.gap_s = next_at, gap.total_seconds()
    session.add(pace)
    session.execute(
        delete(PacedSend).where(
            or_(
                col(PacedSend.key) == key,
                (col(PacedSend.sender) == pace.sender)
                & (col(PacedSend.due_at) < next_at - FORGOTTEN_AFTER),
            )
        )
    )
