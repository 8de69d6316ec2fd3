"""Takeover as use cases: an operator takes a thread over or releases it, and a hold left
idle past the org's timeout releases itself with one notice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.database import locking
from models.errors import ThreadHeld
from models.ids import TAKEOVER_NOTICE_KEY, takeover_notice_key
from models.rules.takeover import NOTICE_FRESH, Hold, HoldCheck, hold_minutes, releases_at
from models.schemas import OrgSettings
from models.store import agent_days
from models.store.escalations import mark_acknowledged
from models.store.holds import hold_state, leads_of_contact, locked_thread
from models.store.operators import get_operator, message_to
from models.store.orgs import settings_for
from models.store.timeline import add_to_timeline
from models.tables import Contact, Escalation, Lead, Message, Operator, Thread
from models.values import (
    EscalationStatus,
    HandledBy,
    MessageStatus,
    OperatorRole,
    ThreadStatus,
    TimelineKind,
)


def _note(
    session: Session, thread: Thread, leads: Sequence[Lead], *, summary: str, data: dict[str, Any]
) -> None:
    """Put a takeover event on the timeline of the contact's leads."""
    for lead in leads:
        add_to_timeline(
            session,
            org_id=thread.org_id,
            lead_id=lead.id,
            kind=TimelineKind.TAKEOVER,
            summary=summary,
            data={"thread_id": thread.id, **data},
        )


def take_over(
    session: Session, *, org_id: str, thread_id: str, operator_id: str, now: datetime
) -> Hold:
    """``operator_id`` holds the thread from ``now``: the AI stops writing to the contact.

    Idempotent for the operator who already holds it; ``ThreadHeld`` when another does.
    The thread becomes ``assigned`` to them and ``handled_by`` a human; its open
    escalations are acknowledged by them (a person has it now).
    """
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    thread = locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = settings_for(session, org_id=org_id)
    if thread.held_by == operator.id:
        return hold_state(session, thread, settings=settings)
    if thread.held_by is not None:
        holder = session.get(Operator, thread.held_by)
        raise ThreadHeld(holder=holder, holder_id=thread.held_by, since=thread.held_since)
    thread.held_by = operator.id
    thread.held_since = now
    agent_days.contact_taken_over(session, contact_id=thread.contact_id, at=now)
    thread.handled_by = HandledBy.HUMAN
    thread.status = ThreadStatus.ASSIGNED
    thread.assigned_to = operator.id
    session.add(thread)
    acknowledged = []
    for row in session.exec(
        locking(
            select(Escalation).where(
                Escalation.org_id == org_id,
                Escalation.thread_id == thread.id,
                Escalation.status == EscalationStatus.OPEN,
            )
        )
    ):
        mark_acknowledged(session, row, by=operator.id, at=now)
        acknowledged.append(row.id)
    leads = leads_of_contact(session, org_id=org_id, contact_id=thread.contact_id)
    _note(
        session,
        thread,
        leads,
        summary=f"Taken over by {operator.name}: automation paused (released after "
        f"{hold_minutes(settings)} min without a message from them)",
        data={"operator_id": operator.id, "acknowledged": acknowledged},
    )
    session.flush()
    return hold_state(
        session, thread, settings=settings, leads=leads, changed=True, acknowledged=acknowledged
    )


def release_hold(
    session: Session, *, org_id: str, thread_id: str, operator_id: str, now: datetime
) -> Hold:
    """The operator hands the thread back to the AI (idempotent when nobody holds it).

    Only the holder, or the org's owner, may release: anyone else gets ``ThreadHeld``.
    """
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    thread = locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = settings_for(session, org_id=org_id)
    if thread.held_by is None:
        return hold_state(session, thread, settings=settings)
    if thread.held_by != operator.id and operator.role != OperatorRole.OWNER:
        holder = session.get(Operator, thread.held_by)
        raise ThreadHeld(holder=holder, holder_id=thread.held_by, since=thread.held_since)
    leads = _end_hold(session, thread)
    _note(
        session,
        thread,
        leads,
        summary=f"Released by {operator.name}: automation resumes",
        data={"operator_id": operator.id, "reason": "released"},
    )
    session.flush()
    return hold_state(session, thread, settings=settings, leads=leads, changed=True)


def _end_hold(session: Session, thread: Thread) -> list[Lead]:
    """The AI has the thread again; the leads to tell."""
    thread.held_by = None
    thread.held_since = None
    thread.handled_by = HandledBy.AI
    session.add(thread)
    return leads_of_contact(session, org_id=thread.org_id, contact_id=thread.contact_id)


def expire_if_idle(session: Session, *, org_id: str, thread_id: str, now: datetime) -> HoldCheck:
    """Release the hold if its operator has written nothing for the org's
    ``takeover_timeout`` by ``now``, with a notice to them and a timeline entry; otherwise
    say until when it lasts. The notice is written in the same transaction (``pending``),
    so a check that runs again after a crash finds it and it is delivered once."""
    thread = locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = settings_for(session, org_id=org_id)
    until = releases_at(thread, settings.takeover_timeout)
    leads: list[Lead] | None = None
    if until is not None and until <= now:
        holder = session.get(Operator, thread.held_by) if thread.held_by else None
        since = thread.held_since
        leads = _end_hold(session, thread)
        name = holder.name if holder else "the operator"
        _note(
            session,
            thread,
            leads,
            summary=f"Released after {hold_minutes(settings)} min without a message from {name}: "
            "automation resumes",
            data={"operator_id": holder.id if holder else None, "reason": "inactivity"},
        )
        if holder is not None and since is not None:
            _notice(
                session, thread=thread, operator=holder, settings=settings, since=since, now=now
            )
        session.flush()
    # A notice still pending from a crash is delivered; one whose delivery gave up long ago
    # is not sent on a later hold.
    pending = session.exec(
        select(Message.id).where(
            Message.org_id == org_id,
            col(Message.idempotency_key).startswith(f"{TAKEOVER_NOTICE_KEY}{thread.id}/"),
            Message.status == MessageStatus.PENDING.value,
            col(Message.created_at) > now - NOTICE_FRESH,
        )
    ).first()
    return HoldCheck(
        hold=hold_state(session, thread, settings=settings, leads=leads), notice_id=pending
    )


def _notice(
    session: Session,
    *,
    thread: Thread,
    operator: Operator,
    settings: OrgSettings,
    since: datetime,
    now: datetime,
) -> None:
    """The message telling ``operator`` their hold ran out (``operators.message_to``)."""
    if operator.phone is None and operator.email is None:
        return
    contact = session.get(Contact, thread.contact_id)
    who = contact.name if contact is not None and contact.name else "a customer"
    session.add(
        message_to(
            operator,
            settings=settings,
            body=f"keepwarm: your conversation with {who} went {hold_minutes(settings)} min "
            "without a message from you, so the AI has it again. Take it over from the inbox "
            "to answer.",
            subject="A conversation went back to the AI",
            key=takeover_notice_key(thread.id, since),
            created_at=now,
        )
    )
