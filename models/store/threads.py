"""Threads (one per contact): found, locked in the services' order, kept current as messages
arrive, folded on a merge, and ranked by their open escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, or_, update
from sqlmodel import Session, col, select

from models.database import lock
from models.rules.escalations import OPEN_STATUSES, PRIORITIES
from models.store import agent_days
from models.tables import (
    Contact,
    Escalation,
    Lead,
    Message,
    Thread,
    UtcDateTime,
)
from models.values import (
    Direction,
    Priority,
    Sender,
    ThreadStatus,
)


def thread_of_contact(session: Session, *, contact_id: str) -> str | None:
    """The id of the contact's one thread."""
    return session.exec(select(Thread.id).where(Thread.contact_id == contact_id)).first()


def lock_thread(session: Session, *, thread_id: str) -> Thread | None:
    """The thread, locked after its contact: the services' lock order (contact, then thread).

    Every write to a thread's row goes through here first, so a transaction that already
    holds the contact (a claim, a takeover) and one that writes the thread never wait on
    each other in opposite orders. Locks held already are kept (no second wait).
    """
    thread = session.get(Thread, thread_id)
    if thread is None:
        return None
    lock(session, Contact, thread.contact_id)
    return lock(session, Thread, thread_id)


def _later(column: Any, at: datetime) -> Any:
    """``column`` moved forward to ``at`` (never back), in SQL."""
    bound = literal(at, type_=UtcDateTime())
    return case((or_(column.is_(None), column < bound), bound), else_=column)


def touch_thread(session: Session, *, message: Message) -> None:
    """A message was written on its thread: keep the inbox's view of the thread current.

    ``last_message_at`` moves to the message; an inbound one also moves ``last_inbound_at``
    and makes the thread ``unread`` again (resolved or assigned, the customer is waiting
    now); a person's message moves ``last_human_at``. Times only move forward, so messages
    recorded out of order leave the latest. One UPDATE computed in SQL, not read and written
    back: two messages on one thread at once can't undo each other's times.
    """
    if message.thread_id is None:
        return
    thread = lock_thread(session, thread_id=message.thread_id)
    if thread is not None:
        # The contact's leads: replied to, or taken over by a person (the agents' figures).
        if message.direction == Direction.INBOUND:
            agent_days.contact_replied(session, contact_id=thread.contact_id, at=message.created_at)
        if message.sender == Sender.HUMAN:
            agent_days.contact_taken_over(
                session, contact_id=thread.contact_id, at=message.created_at
            )
    values: dict[Any, Any] = {
        Thread.last_message_at: _later(col(Thread.last_message_at), message.created_at)
    }
    if message.direction == Direction.INBOUND:
        values[Thread.last_inbound_at] = _later(col(Thread.last_inbound_at), message.created_at)
        values[Thread.status] = ThreadStatus.UNREAD
    if message.sender == Sender.HUMAN:
        values[Thread.last_human_at] = _later(col(Thread.last_human_at), message.created_at)
    session.execute(update(Thread).where(col(Thread.id) == message.thread_id).values(values))


def fold_thread(session: Session, *, keep_id: str | None, other: Thread) -> None:
    """A merge moved ``other``'s messages to ``keep_id``: carry its activity over (an
    unread thread stays unread)."""
    keep = session.get(Thread, keep_id) if keep_id else None
    if keep is None:
        return
    for name in ("last_message_at", "last_inbound_at", "last_human_at"):
        times = [t for t in (getattr(keep, name), getattr(other, name)) if t is not None]
        setattr(keep, name, max(times, default=None))
    if other.status == ThreadStatus.UNREAD:
        keep.status = ThreadStatus.UNREAD
    session.add(keep)


def rank_thread(session: Session, *, thread_id: str | None) -> bool:
    """The thread's inbox priority: the highest of its unresolved escalations, else low.
    ``True`` while it has unresolved escalations."""
    if thread_id is None:
        return False
    thread = lock_thread(session, thread_id=thread_id)
    if thread is None:
        return False
    open_priorities = session.exec(
        select(Escalation.priority).where(
            Escalation.thread_id == thread_id, col(Escalation.status).in_(OPEN_STATUSES)
        )
    ).all()
    priority = max(open_priorities, key=PRIORITIES.index, default=Priority.LOW)
    if thread.priority != priority:
        thread.priority = priority
        session.add(thread)
        session.flush()
    return bool(open_priorities)


def thread_of(session: Session, *, org_id: str, lead: Lead) -> str | None:
    """The thread of a lead's contact (one per contact)."""
    if lead.org_id != org_id:
        return None
    return session.exec(select(Thread.id).where(Thread.contact_id == lead.contact_id)).first()
