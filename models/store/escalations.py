"""Escalation rows: open one (deduplicated), lock one in the services' order, close or
acknowledge it, and find its ladder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.database import insert_once, lock
from models.errors import EscalationMissing
from models.ids import ladder_id
from models.store.orgs import settings_for
from models.store.threads import lock_thread, rank_thread
from models.tables import Escalation, Thread, utcnow
from models.values import EscalationStatus, Priority, ThreadStatus, new_id


def open_escalation(
    session: Session,
    *,
    org_id: str,
    reason: str,
    priority: Priority,
    summary: str,
    lead_id: str | None = None,
    thread_id: str | None = None,
    contact_id: str | None = None,
    dedupe_key: str | None = None,
    data: dict[str, Any] | None = None,
) -> Escalation:
    """Put an item in the queue, due within the org's SLA for ``priority``.

    With ``dedupe_key``, a second item for the same cause returns the first one instead.
    """
    sla = settings_for(session, org_id=org_id).sla
    now = utcnow()
    row = Escalation(
        id=new_id("esc"),
        org_id=org_id,
        lead_id=lead_id,
        thread_id=thread_id,
        contact_id=contact_id,
        reason=reason,
        priority=priority,
        summary=summary,
        dedupe_key=dedupe_key,
        data=data or {},
        opened_at=now,
        sla_due_at=now + getattr(sla, priority),
    )
    stored, _ = insert_once(
        session, row, Escalation.org_id == org_id, Escalation.dedupe_key == dedupe_key
    )
    rank_thread(session, thread_id=stored.thread_id)
    return stored


def lock_escalation(session: Session, *, org_id: str, escalation_id: str) -> Escalation:
    """The org's escalation, locked in the services' order: its thread's contact, the
    thread, then the escalation (the order a takeover and every claim lock in)."""
    row = session.get(Escalation, escalation_id)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    if row.thread_id is not None:
        lock_thread(session, thread_id=row.thread_id)
    locked = lock(session, Escalation, escalation_id)
    assert locked is not None
    return locked


def settle_thread(session: Session, row: Escalation) -> None:
    """The thread's last open escalation was resolved: the thread is ``resolved`` too, unless
    an operator holds it (the conversation goes on). The customer's next message makes it
    ``unread`` again (``store.touch_thread``)."""
    still_open = rank_thread(session, thread_id=row.thread_id)
    thread = session.get(Thread, row.thread_id) if row.thread_id else None
    if thread is None or still_open or thread.held_by is not None:
        return
    thread.status = ThreadStatus.RESOLVED
    session.add(thread)
    session.flush()


def close_escalation(row: Escalation, *, by: str, resolution: str | None, at: datetime) -> None:
    row.status = EscalationStatus.RESOLVED
    row.resolved_at = at
    row.resolved_by = by
    row.resolution = resolution


def mark_acknowledged(session: Session, row: Escalation, *, by: str, at: datetime) -> None:
    """``by`` has the item: it climbs no further (its ladder's route reads this)."""
    row.status = EscalationStatus.ACKNOWLEDGED
    row.acknowledged_at = at
    row.acknowledged_by = by
    session.add(row)
    session.flush()


def ladder_of(session: Session, *, org_id: str, escalation_id: str) -> str:
    """``ladder_id`` of an item of this org."""
    row = session.get(Escalation, escalation_id)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    return ladder_id(row)
