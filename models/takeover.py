"""Takeover: an operator holds a thread, and keepwarm's automation for that contact waits.

The lock is the thread row: ``held_by`` (the operator) and ``held_since``; ``last_human_at``
(the operator's last message on the thread) is its activity clock. Nothing else decides:

- the compliance gate reads it (``held_until``), inside the transaction that claims an
  automated touch with the contact row locked, so no AI message or call is claimed while a
  person holds the conversation, whatever a workflow believes;
- taking over and releasing lock the contact row first and the thread second, in the same
  order as a claim, so a claim and a takeover never interleave;
- the Takeover workflow is only the lock's timer and messenger: it tells the contact's
  leads to pause and resume, and releases a hold left idle past the org's
  ``takeover_timeout`` (``expire_if_idle``), with a notice to the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import attention, operators
from models.database import ROW_LOCK
from models.schemas import OrgSettings
from models.tables import Contact, Escalation, Lead, Message, Operator, Org, Thread
from models.values import MessageStatus, Stage, TimelineKind

#: Leads whose workflows may still run automation (a converted lead's sequence may run on;
#: lost and opted-out leads have ended).
_ENDED = (Stage.LOST.value, Stage.OPTED_OUT.value)
#: How many of a contact's leads a hold tells (the newest): a contact has one open lead,
#: and a converted one whose sequence still runs is recent.
LEADS_TOLD = 5
#: The key prefix of the notices telling an operator a hold ran out.
NOTICE_KEY = "takeover/"
#: How long a notice left pending (its workflow crashed before delivering it) is still sent.
NOTICE_FRESH = timedelta(hours=1)
#: The shortest wait a held touch is given: a hold already past its time is about to be
#: released by its workflow.
MIN_HOLD_WAIT = timedelta(minutes=1)


class ThreadMissing(LookupError):
    """No such thread in this org."""


class ThreadHeld(Exception):
    """Another operator holds the thread."""

    def __init__(self, *, holder: Operator | None, holder_id: str, since: datetime | None):
        """Who holds it and since when."""
        name = holder.name if holder is not None else holder_id
        when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        super().__init__(f"{name} holds this thread{when}; they must release it first.")
        self.holder_id = holder_id


@dataclass(frozen=True, kw_only=True)
class Hold:
    """A thread's takeover state: who holds it (``None``: the AI has it) and until when,
    unless they write again."""

    thread_id: str
    held_by: str | None
    held_since: datetime | None
    #: When the hold ends on its own if the operator sends nothing more.
    releases_at: datetime | None
    #: Workflow ids of the contact's leads that may be running automation.
    lead_workflows: list[str] = field(default_factory=list)
    #: Escalations of the thread this takeover acknowledged (their ladders stop climbing).
    acknowledged: list[str] = field(default_factory=list)
    #: Whether this call changed anything (a repeated takeover or release changes nothing).
    changed: bool = False


def workflow_id(org_id: str, thread_id: str) -> str:
    """The thread's Takeover workflow: ``takeover-{org}-{thread}``."""
    return f"takeover-{org_id}-{thread_id}"


def releases_at(thread: Thread, timeout: timedelta) -> datetime | None:
    """When ``thread``'s hold ends if its operator writes nothing more (``None``: not held)."""
    if thread.held_by is None or thread.held_since is None:
        return None
    active = max(t for t in (thread.held_since, thread.last_human_at) if t is not None)
    return active + timeout


#: What the gate says of a touch held back by a takeover (no names: workflows see it).
HOLD_REASON = "an operator has taken this conversation over"
HELD_BACK = f"{HOLD_REASON}: until released"


def held_until(
    session: Session, *, contact_id: str, settings: OrgSettings, now: datetime
) -> datetime | None:
    """Until when automation must wait for the contact (``None``: nobody holds their
    thread). Past its time, a hold still counts until its workflow releases it."""
    thread = session.exec(select(Thread).where(Thread.contact_id == contact_id)).first()
    if thread is None:
        return None
    until = releases_at(thread, settings.takeover_timeout)
    if until is None:
        return None
    return max(until, now + MIN_HOLD_WAIT)


def _locked_thread(session: Session, *, org_id: str, thread_id: str) -> Thread:
    """The org's thread, locked after its contact (the order every claim locks in)."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise ThreadMissing(thread_id)
    session.get(Contact, thread.contact_id, with_for_update=ROW_LOCK)
    return session.exec(
        select(Thread)
        .where(Thread.id == thread_id)
        .with_for_update(**ROW_LOCK)
        .execution_options(populate_existing=True)
    ).one()


def _settings(session: Session, org_id: str) -> OrgSettings:
    org = session.get(Org, org_id)
    return OrgSettings.model_validate(org.settings if org else {})


def _leads(session: Session, *, org_id: str, contact_id: str) -> list[Lead]:
    return list(
        session.exec(
            select(Lead)
            .where(
                Lead.org_id == org_id,
                Lead.contact_id == contact_id,
                col(Lead.stage).not_in(_ENDED),
            )
            .order_by(col(Lead.created_at).desc())
            .limit(LEADS_TOLD)
        )
    )


def _state(
    session: Session,
    thread: Thread,
    *,
    settings: OrgSettings,
    leads: Sequence[Lead] | None = None,
    changed: bool = False,
    acknowledged: Sequence[str] = (),
) -> Hold:
    if leads is None:
        leads = _leads(session, org_id=thread.org_id, contact_id=thread.contact_id)
    return Hold(
        thread_id=thread.id,
        held_by=thread.held_by,
        held_since=thread.held_since,
        releases_at=releases_at(thread, settings.takeover_timeout),
        lead_workflows=[lead.workflow_id for lead in leads],
        acknowledged=list(acknowledged),
        changed=changed,
    )


def _note(
    session: Session, thread: Thread, leads: Sequence[Lead], *, summary: str, data: dict[str, Any]
) -> None:
    """Put a takeover event on the timeline of the contact's leads."""
    # ``models.store`` imports this module's callers; imported when used.
    from models import store

    for lead in leads:
        store.timeline(
            session,
            org_id=thread.org_id,
            lead_id=lead.id,
            kind=TimelineKind.TAKEOVER,
            summary=summary,
            data={"thread_id": thread.id, **data},
        )


def read(session: Session, *, org_id: str, thread_id: str) -> Hold:
    """The thread's takeover state."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise ThreadMissing(thread_id)
    return _state(session, thread, settings=_settings(session, org_id))


def take_over(
    session: Session, *, org_id: str, thread_id: str, operator_id: str, now: datetime
) -> Hold:
    """``operator_id`` holds the thread from ``now``: the AI stops writing to the contact.

    Idempotent for the operator who already holds it; ``ThreadHeld`` when another does.
    The thread becomes ``assigned`` to them and ``handled_by`` a human; its open
    escalations are acknowledged by them (a person has it now).
    """
    operator = operators.get_operator(session, org_id=org_id, operator_id=operator_id)
    thread = _locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = _settings(session, org_id)
    if thread.held_by == operator.id:
        return _state(session, thread, settings=settings)
    if thread.held_by is not None:
        holder = session.get(Operator, thread.held_by)
        raise ThreadHeld(holder=holder, holder_id=thread.held_by, since=thread.held_since)
    thread.held_by = operator.id
    thread.held_since = now
    thread.handled_by = "human"
    thread.status = "assigned"
    thread.assigned_to = operator.id
    session.add(thread)
    acknowledged = []
    for row in session.exec(
        select(Escalation)
        .where(
            Escalation.org_id == org_id,
            Escalation.thread_id == thread.id,
            Escalation.status == "open",
        )
        .with_for_update(**ROW_LOCK)
    ):
        attention.mark_acknowledged(session, row, by=operator.id, at=now)
        acknowledged.append(row.id)
    leads = _leads(session, org_id=org_id, contact_id=thread.contact_id)
    _note(
        session,
        thread,
        leads,
        summary=f"Taken over by {operator.name}: automation paused (released after "
        f"{_minutes(settings)} min without a message from them)",
        data={"operator_id": operator.id, "acknowledged": acknowledged},
    )
    session.flush()
    return _state(
        session, thread, settings=settings, leads=leads, changed=True, acknowledged=acknowledged
    )


def release(
    session: Session, *, org_id: str, thread_id: str, operator_id: str, now: datetime
) -> Hold:
    """The operator hands the thread back to the AI (idempotent when nobody holds it).

    Only the holder, or the org's owner, may release: anyone else gets ``ThreadHeld``.
    """
    operator = operators.get_operator(session, org_id=org_id, operator_id=operator_id)
    thread = _locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = _settings(session, org_id)
    if thread.held_by is None:
        return _state(session, thread, settings=settings)
    if thread.held_by != operator.id and operator.role != "owner":
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
    return _state(session, thread, settings=settings, leads=leads, changed=True)


def _end_hold(session: Session, thread: Thread) -> list[Lead]:
    """The AI has the thread again; the leads to tell."""
    thread.held_by = None
    thread.held_since = None
    thread.handled_by = "ai"
    session.add(thread)
    return _leads(session, org_id=thread.org_id, contact_id=thread.contact_id)


def _minutes(settings: OrgSettings) -> int:
    return int(settings.takeover_timeout.total_seconds() // 60)


@dataclass(frozen=True, kw_only=True)
class HoldCheck:
    """What the Takeover workflow needs after each wake: the hold now, and a notice to
    deliver if a hold ran out (the one written by this check, or one still pending)."""

    hold: Hold
    notice_id: str | None = None


def expire_if_idle(session: Session, *, org_id: str, thread_id: str, now: datetime) -> HoldCheck:
    """Release the hold if its operator has written nothing for the org's
    ``takeover_timeout`` by ``now``, with a notice to them and a timeline entry; otherwise
    say until when it lasts. The notice is written in the same transaction (``pending``),
    so a check that runs again after a crash finds it and it is delivered once."""
    thread = _locked_thread(session, org_id=org_id, thread_id=thread_id)
    settings = _settings(session, org_id)
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
            summary=f"Released after {_minutes(settings)} min without a message from {name}: "
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
            col(Message.idempotency_key).startswith(f"{NOTICE_KEY}{thread.id}/"),
            Message.status == MessageStatus.PENDING.value,
            col(Message.created_at) > now - NOTICE_FRESH,
        )
    ).first()
    return HoldCheck(
        hold=_state(session, thread, settings=settings, leads=leads), notice_id=pending
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
        operators.message_to(
            operator,
            settings=settings,
            body=f"keepwarm: your conversation with {who} went {_minutes(settings)} min "
            "without a message from you, so the AI has it again. Take it over from the inbox "
            "to answer.",
            subject="A conversation went back to the AI",
            key=f"{NOTICE_KEY}{thread.id}/{since:%Y%m%dT%H%M%S%f}",
            created_at=now,
        )
    )
