"""Human handoff as use cases: flag a thread, route an escalation up its ladder, tell an
operator, acknowledge and resolve. Each takes its rows in the order ``models.services``
states."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models.errors import EscalationMissing
from models.ids import notification_key
from models.rules.escalations import (
    MAX_LEVEL,
    OPEN_STATUSES,
    PRIORITIES,
    Routing,
)
from models.store.escalations import (
    close_escalation,
    lock_escalation,
    mark_acknowledged,
    open_escalation,
    settle_thread,
)
from models.store.leads import newest_lead
from models.store.operators import get_operator, message_to, online_operators
from models.store.orgs import settings_for
from models.store.threads import lock_thread, rank_thread
from models.store.timeline import add_to_timeline
from models.tables import Call, Contact, Escalation, Lead, Message, Operator, utcnow
from models.values import EscalationReason, EscalationStatus, OperatorRole, Priority, TimelineKind


def resolve_escalation(
    session: Session, *, org_id: str, escalation_id: str, by: str, resolution: str | None
) -> Escalation:
    """Close an item (idempotent: resolving a resolved item changes nothing). ``by`` is one
    of the org's operators (``OperatorMissing`` if not)."""
    row = lock_escalation(session, org_id=org_id, escalation_id=escalation_id)
    get_operator(session, org_id=org_id, operator_id=by)
    if row.status != EscalationStatus.RESOLVED:
        close_escalation(row, by=by, resolution=resolution, at=utcnow())
        session.add(row)
        session.flush()
        settle_thread(session, row)
    return row


def route_escalation(
    session: Session, *, org_id: str, escalation_id: str, level: int, now: datetime
) -> Routing:
    """Send the escalation to whoever should see it at ``level``.

    Level 0: an operator online (heartbeat in the last 2 minutes) gets a handoff; nobody
    online, it waits in the queue. Each later level (its SLA ran out unacknowledged): the next
    online operator not yet told, else the owner by SMS, else nothing more. Every step is on
    the lead's timeline; the SLA restarts at each level.
    """
    row = lock_escalation(session, org_id=org_id, escalation_id=escalation_id)
    if row.status in {EscalationStatus.RESOLVED, EscalationStatus.ACKNOWLEDGED}:
        # Someone has it (a takeover acknowledges too): it climbs no further, whether or not
        # the workflow has heard yet.
        return Routing(
            level=row.level,
            status=row.status,
            operator_id=None,
            sla_due_at=None,
            note=row.status,
        )
    sla = settings_for(session, org_id=org_id).sla
    data = dict(row.data or {})
    told: list[str] = list(data.get("notified", []))
    target, note = _route_target(session, org_id=org_id, told=told, level=level, now=now)
    if target is not None:
        told.append(target.id)
    # The SLA runs at the first routing and after each person told; past the last rung, or
    # with nobody left to tell, it stops (the item stays in the queue).
    due = now + getattr(sla, row.priority) if level == 0 or (target and level < MAX_LEVEL) else None
    row.level = level
    row.sla_due_at = due or row.sla_due_at
    data["notified"] = told
    row.data = data
    session.add(row)
    _note_routing(session, org_id=org_id, row=row, level=level, note=note, target=target)
    session.flush()
    return Routing(
        level=level,
        status=row.status,
        operator_id=target.id if target else None,
        sla_due_at=due,
        note=note,
    )


def _route_target(
    session: Session, *, org_id: str, told: list[str], level: int, now: datetime
) -> tuple[Operator | None, str]:
    """Who is told at ``level`` (``None``: nobody), and the timeline's note saying so."""
    candidates = [
        op for op in online_operators(session, org_id=org_id, now=now) if op.id not in told
    ]
    if candidates:
        target = candidates[0]
        what = "handoff" if level == 0 else "climbed to the next operator"
        return target, f"{what}: {target.name} ({target.role}) notified"
    if level == 0:
        return None, "nobody online: waiting in the needs-attention queue"
    owner = next(
        (
            op
            for op in session.exec(
                select(Operator).where(
                    Operator.org_id == org_id, Operator.role == OperatorRole.OWNER
                )
            )
            if op.id not in told and op.phone
        ),
        None,
    )
    if owner is None:
        return None, "no one left to climb to: still in the needs-attention queue"
    return owner, f"climbed to the owner: {owner.name} notified by SMS"


def _note_routing(
    session: Session,
    *,
    org_id: str,
    row: Escalation,
    level: int,
    note: str,
    target: Operator | None,
) -> None:
    """Put the routing step on the timeline of the item's lead, if it has one."""
    if not row.lead_id:
        return
    add_to_timeline(
        session,
        org_id=org_id,
        lead_id=row.lead_id,
        kind=TimelineKind.ESCALATION,
        summary=f"Escalation ({row.priority}, level {level}): {note}",
        data={
            "escalation_id": row.id,
            "level": level,
            "operator_id": target.id if target else None,
        },
    )


def acknowledge_escalation(
    session: Session, *, org_id: str, escalation_id: str, by: str
) -> Escalation:
    """A person has it: it stops climbing (idempotent; a resolved item stays resolved).
    ``by`` is one of the org's operators (``OperatorMissing`` if not)."""
    row = lock_escalation(session, org_id=org_id, escalation_id=escalation_id)
    get_operator(session, org_id=org_id, operator_id=by)
    if row.status == EscalationStatus.OPEN:
        mark_acknowledged(session, row, by=by, at=utcnow())
        if row.lead_id:
            add_to_timeline(
                session,
                org_id=org_id,
                lead_id=row.lead_id,
                kind=TimelineKind.ESCALATION,
                summary=f"Escalation acknowledged by {by}",
                data={"escalation_id": row.id},
            )
        session.flush()
    return row


def handoff_text(session: Session, *, escalation: Escalation, limit: int = 600) -> str:
    """What a notified person reads: why, who, the stage, score and value, the last messages
    and calls. Short enough for an SMS or two."""
    parts = [f"keepwarm {escalation.priority.upper()}: {escalation.reason.replace('_', ' ')}"]
    lead = session.get(Lead, escalation.lead_id) if escalation.lead_id else None
    contact = session.get(Contact, escalation.contact_id) if escalation.contact_id else None
    if contact is not None and contact.name:
        parts.append(contact.name)
    if lead is not None:
        value = f", value {lead.value:.0f}" if lead.value is not None else ""
        parts.append(f"stage {lead.stage}, score {lead.score}{value}")
    parts.append(escalation.summary)
    if escalation.thread_id:
        recent = session.exec(
            select(Message)
            .where(Message.thread_id == escalation.thread_id)
            .order_by(col(Message.created_at).desc())
            .limit(3)
        ).all()
        for message in reversed(recent):
            who = "them" if message.direction == "inbound" else message.sender
            parts.append(f"[{message.channel} {who}] {message.body[:120]}")
    if lead is not None:
        outcomes = [
            c.outcome or c.status for c in session.exec(select(Call).where(Call.lead_id == lead.id))
        ]
        if outcomes:
            parts.append(f"calls: {', '.join(outcomes)}")
    actions = [f"Ack: POST /v1/escalations/{escalation.id}/acknowledge"]
    if escalation.thread_id:
        actions.append(f"Take over: POST /v1/threads/{escalation.thread_id}/takeover")
    # What to do always fits: the story is cut instead.
    tail = " | ".join(actions)
    head = " | ".join(parts)
    room = limit - len(tail) - len(" | ")
    if len(head) > room:
        head = head[: room - 1] + "…"
    return f"{head} | {tail}"


def claim_notification(
    session: Session, *, org_id: str, escalation_id: str, operator_id: str, level: int
) -> Message:
    """The message that tells an operator about an escalation, created once per level
    (``escalation/{id}/notify-{level}``): SMS to their phone, else email. A system message,
    to a person of the business: no consent, gate or budget applies."""
    key = notification_key(escalation_id, level)
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        if existing.org_id != org_id:
            raise EscalationMissing(escalation_id)
        return existing
    escalation = session.get(Escalation, escalation_id)
    operator = session.get(Operator, operator_id)
    if escalation is None or escalation.org_id != org_id:
        raise EscalationMissing(escalation_id)
    if operator is None or operator.org_id != org_id:
        raise EscalationMissing(operator_id)
    message = message_to(
        operator,
        settings=settings_for(session, org_id=org_id),
        body=handoff_text(session, escalation=escalation),
        subject=f"Needs you: {escalation.reason.replace('_', ' ')}",
        key=key,
    )
    session.add(message)
    session.flush()
    return message


def escalate_thread(
    session: Session,
    *,
    org_id: str,
    thread_id: str,
    reason: str,
    priority: Priority,
    summary: str | None,
) -> tuple[Escalation, bool]:
    """Open an escalation for a thread (the contact's open lead attached), or, if one is open
    already, that one; ``True`` when it is new. The thread row is locked, so two flags at
    once open one item."""
    thread = lock_thread(session, thread_id=thread_id)
    if thread is None or thread.org_id != org_id:
        raise EscalationMissing(thread_id)
    current = session.exec(
        select(Escalation).where(
            Escalation.org_id == org_id,
            Escalation.thread_id == thread_id,
            col(Escalation.status).in_(OPEN_STATUSES),
            Escalation.reason != EscalationReason.IDENTITY_CONFLICT,
        )
    ).first()
    if current is not None:
        if PRIORITIES.index(priority) > PRIORITIES.index(current.priority):
            # Graver news on an open item (a complaint after a VIP flag): it takes the higher
            # priority; its ladder times the next SLA by it.
            current.priority = priority
            session.add(current)
            session.flush()
            rank_thread(session, thread_id=thread_id)
        return current, False
    lead = newest_lead(session, org_id=org_id, contact_id=thread.contact_id)
    row = open_escalation(
        session,
        org_id=org_id,
        reason=reason,
        priority=priority,
        summary=summary or reason.replace("_", " "),
        lead_id=lead.id if lead else None,
        thread_id=thread_id,
        contact_id=thread.contact_id,
    )
    if thread.held_by is not None:
        # An operator holds the conversation already: it is theirs, nobody else is paged.
        mark_acknowledged(session, row, by=thread.held_by, at=row.opened_at)
    return row, True
