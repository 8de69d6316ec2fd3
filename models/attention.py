"""The needs-attention queue: things a person must look at, oldest SLA first.

Identity conflicts land here now; escalations (agent flags, call caps, complaints) join them
with the Escalation workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from models import operators
from models.database import insert_once
from models.schemas import OrgSettings
from models.tables import Call, Contact, Escalation, Lead, Message, Operator, Org, Thread, utcnow
from models.values import TimelineKind, new_id

Priority = Literal["urgent", "high", "medium", "low"]
#: Escalation statuses that keep an item in the queue.
OPEN_STATUSES = ("open", "acknowledged")
#: Why an item is in the queue, for the ones keepwarm opens itself.
IDENTITY_CONFLICT = "identity_conflict"


class EscalationMissing(LookupError):
    """No such escalation in this org."""


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
    org = session.get(Org, org_id)
    sla = OrgSettings.model_validate(org.settings if org else {}).sla
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


#: Priorities, lowest first (a thread takes the highest of its open escalations).
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high", "urgent")


def rank_thread(session: Session, *, thread_id: str | None) -> bool:
    """The thread's inbox priority: the highest of its unresolved escalations, else low.
    ``True`` while it has unresolved escalations."""
    if thread_id is None:
        return False
    thread = session.get(Thread, thread_id)
    if thread is None:
        return False
    open_priorities = session.exec(
        select(Escalation.priority).where(
            Escalation.thread_id == thread_id, col(Escalation.status).in_(OPEN_STATUSES)
        )
    ).all()
    priority = max(open_priorities, key=PRIORITIES.index, default="low")
    if thread.priority != priority:
        thread.priority = priority
        session.add(thread)
        session.flush()
    return bool(open_priorities)


def attention(session: Session, *, org_id: str, limit: int) -> list[Escalation]:
    """The org's unresolved items, the one whose SLA runs out first at the top."""
    return list(
        session.exec(
            select(Escalation)
            .where(Escalation.org_id == org_id, col(Escalation.status).in_(OPEN_STATUSES))
            .order_by(col(Escalation.sla_due_at), col(Escalation.opened_at))
            .limit(limit)
        )
    )


def resolve(
    session: Session, *, org_id: str, escalation_id: str, by: str, resolution: str | None
) -> Escalation:
    """Close an item (idempotent: resolving a resolved item changes nothing). ``by`` is one
    of the org's operators (``OperatorMissing`` if not)."""
    row = _locked(session, org_id=org_id, escalation_id=escalation_id)
    operators.get_operator(session, org_id=org_id, operator_id=by)
    if row.status != "resolved":
        _close(row, by=by, resolution=resolution, at=utcnow())
        session.add(row)
        session.flush()
        _settle_thread(session, row)
    return row


def _locked(session: Session, *, org_id: str, escalation_id: str) -> Escalation:
    """The org's escalation, locked after its thread: the order a takeover locks them in
    (contact, thread, then the thread's escalations), so the two never deadlock."""
    row = session.get(Escalation, escalation_id)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    if row.thread_id is not None:
        session.exec(select(Thread.id).where(Thread.id == row.thread_id).with_for_update()).first()
    return session.exec(
        select(Escalation)
        .where(Escalation.id == escalation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _settle_thread(session: Session, row: Escalation) -> None:
    """The thread's last open escalation was resolved: the thread is ``resolved`` too, unless
    an operator holds it (the conversation goes on). The customer's next message makes it
    ``unread`` again (``store.touch_thread``)."""
    still_open = rank_thread(session, thread_id=row.thread_id)
    thread = session.get(Thread, row.thread_id) if row.thread_id else None
    if thread is None or still_open or thread.held_by is not None:
        return
    thread.status = "resolved"
    session.add(thread)
    session.flush()


def after_merge(
    session: Session,
    *,
    org_id: str,
    keep_id: str,
    other_id: str,
    keep_thread: str | None,
    other_thread: str | None,
) -> int:
    """Move the merged contact's items to the kept one; resolve the identity conflicts the
    merge settled (those between these two contacts only). Returns how many it resolved."""
    rows = session.exec(
        select(Escalation).where(
            Escalation.org_id == org_id, col(Escalation.status).in_(OPEN_STATUSES)
        )
    )
    now, settled = utcnow(), 0
    for row in rows:
        if row.contact_id == other_id:
            row.contact_id = keep_id
        if other_thread is not None and row.thread_id == other_thread:
            row.thread_id = keep_thread
        held_by = set((row.data or {}).get("held_by", {}).values())
        if (
            row.reason == IDENTITY_CONFLICT
            and held_by
            and held_by | {row.contact_id}
            <= {
                keep_id,
                other_id,
            }
        ):
            _close(row, by="merge", resolution=f"contact {other_id} merged into {keep_id}", at=now)
            settled += 1
        session.add(row)
    session.flush()
    rank_thread(session, thread_id=keep_thread)
    return settled


def _close(row: Escalation, *, by: str, resolution: str | None, at: datetime) -> None:
    row.status = "resolved"
    row.resolved_at = at
    row.resolved_by = by
    row.resolution = resolution


# --- the escalation ladder ---------------------------------------------------------------

#: Levels an unacknowledged escalation climbs: 0 the first routing (an online operator, else
#: the queue), then the next online operator at each SLA, then the owner by SMS.
MAX_LEVEL = 4


@dataclass(frozen=True, kw_only=True)
class Routing:
    """Where an escalation went at a level: the operator to notify (if any), and when its SLA
    runs out next (``None``: nothing more to climb, or it is closed)."""

    level: int
    status: str
    operator_id: str | None
    sla_due_at: datetime | None
    note: str


def route(
    session: Session, *, org_id: str, escalation_id: str, level: int, now: datetime
) -> Routing:
    """Send the escalation to whoever should see it at ``level``.

    Level 0: an operator online (heartbeat in the last 2 minutes) gets a handoff; nobody
    online, it waits in the queue. Each later level (its SLA ran out unacknowledged): the next
    online operator not yet told, else the owner by SMS, else nothing more. Every step is on
    the lead's timeline; the SLA restarts at each level.
    """
    row = session.get(Escalation, escalation_id, with_for_update=True)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    if row.status in {"resolved", "acknowledged"}:
        # Someone has it (a takeover acknowledges too): it climbs no further, whether or not
        # the workflow has heard yet.
        return Routing(
            level=row.level,
            status=row.status,
            operator_id=None,
            sla_due_at=None,
            note=row.status,
        )
    org = session.get(Org, org_id)
    sla = OrgSettings.model_validate(org.settings if org else {}).sla
    data = dict(row.data or {})
    told: list[str] = list(data.get("notified", []))
    candidates = [
        op for op in operators.online(session, org_id=org_id, now=now) if op.id not in told
    ]
    target: Operator | None = candidates[0] if candidates else None
    if target is not None:
        what = "handoff" if level == 0 else "climbed to the next operator"
        note = f"{what}: {target.name} ({target.role}) notified"
    elif level == 0:
        note = "nobody online: waiting in the needs-attention queue"
    else:
        owner = next(
            (
                op
                for op in session.exec(
                    select(Operator).where(Operator.org_id == org_id, Operator.role == "owner")
                )
                if op.id not in told and op.phone
            ),
            None,
        )
        target = owner
        note = (
            f"climbed to the owner: {owner.name} notified by SMS"
            if owner is not None
            else "no one left to climb to: still in the needs-attention queue"
        )
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
    if row.lead_id:
        _timeline(
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
    session.flush()
    return Routing(
        level=level,
        status=row.status,
        operator_id=target.id if target else None,
        sla_due_at=due,
        note=note,
    )


def acknowledge(session: Session, *, org_id: str, escalation_id: str, by: str) -> Escalation:
    """A person has it: it stops climbing (idempotent; a resolved item stays resolved).
    ``by`` is one of the org's operators (``OperatorMissing`` if not)."""
    row = _locked(session, org_id=org_id, escalation_id=escalation_id)
    operators.get_operator(session, org_id=org_id, operator_id=by)
    if row.status == "open":
        mark_acknowledged(session, row, by=by, at=utcnow())
        if row.lead_id:
            _timeline(
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


def _timeline(session: Session, **entry: Any) -> None:
    # ``models.store`` opens items here (identity conflicts), so it is imported when used.
    from models import store

    store.timeline(session, **entry)


def claim_notification(
    session: Session, *, org_id: str, escalation_id: str, operator_id: str, level: int
) -> Message:
    """The message that tells an operator about an escalation, created once per level
    (``escalation/{id}/notify-{level}``): SMS to their phone, else email. A system message,
    to a person of the business: no consent, gate or budget applies."""
    key = f"escalation/{escalation_id}/notify-{level}"
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
    org = session.get(Org, org_id)
    message = operators.message_to(
        operator,
        settings=OrgSettings.model_validate(org.settings if org else {}),
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
    thread = session.exec(
        select(Thread).where(Thread.id == thread_id, Thread.org_id == org_id).with_for_update()
    ).first()
    if thread is None:
        raise EscalationMissing(thread_id)
    current = session.exec(
        select(Escalation).where(
            Escalation.org_id == org_id,
            Escalation.thread_id == thread_id,
            col(Escalation.status).in_(OPEN_STATUSES),
            Escalation.reason != IDENTITY_CONFLICT,
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
    lead = session.exec(
        select(Lead)
        .where(Lead.org_id == org_id, Lead.contact_id == thread.contact_id)
        .order_by(col(Lead.created_at).desc())
    ).first()
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


def mark_acknowledged(session: Session, row: Escalation, *, by: str, at: datetime) -> None:
    """``by`` has the item: it climbs no further (its ladder's route reads this)."""
    row.status = "acknowledged"
    row.acknowledged_at = at
    row.acknowledged_by = by
    session.add(row)
    session.flush()


def thread_of(session: Session, *, org_id: str, lead: Lead) -> str | None:
    """The thread of a lead's contact (one per contact)."""
    if lead.org_id != org_id:
        return None
    return session.exec(select(Thread.id).where(Thread.contact_id == lead.contact_id)).first()


def ladder_id(row: Escalation) -> str:
    """The Escalation workflow's id: ``escalation-{org}-{thread}`` (one ladder per
    conversation), else by the item."""
    return thread_ladder_id(row.org_id, row.thread_id or row.id)


def thread_ladder_id(org_id: str, thread_id: str) -> str:
    """The id of the Escalation workflow of a thread's escalations."""
    return f"escalation-{org_id}-{thread_id}"


def ladder_of(session: Session, *, org_id: str, escalation_id: str) -> str:
    """``ladder_id`` of an item of this org."""
    row = session.get(Escalation, escalation_id)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    return ladder_id(row)
