"""Operators (the people who answer threads) and their presence.

An operator is online while their inbox keeps sending heartbeats: for ``ONLINE_FOR`` after
the last one. ``online`` is the one place that rule is written; the escalation ladder asks it
whom to hand a thread to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from models.schemas import OrgSettings
from models.tables import Message, Operator, utcnow
from models.values import Direction, MessageStatus, Sender, new_id

Role = Literal["operator", "owner"]

#: How long a heartbeat keeps an operator online (DESIGN.md "Human handoff").
ONLINE_FOR = timedelta(minutes=2)


class OperatorMissing(LookupError):
    """No such operator in this org."""


def is_online(operator: Operator, *, now: datetime) -> bool:
    """Whether ``operator``'s last heartbeat was less than ``ONLINE_FOR`` before ``now``."""
    seen = operator.last_seen_at
    return seen is not None and now - ONLINE_FOR < seen


def online(session: Session, *, org_id: str, now: datetime) -> list[Operator]:
    """The org's operators online at ``now``: operators before the owner (the owner is the
    last rung of the escalation ladder), then in the order they were added."""
    return [
        operator
        for operator in list_operators(session, org_id=org_id)
        if is_online(operator, now=now)
    ]


def list_operators(session: Session, *, org_id: str) -> list[Operator]:
    """Every operator of the org: operators before the owner, then in the order added."""
    rows = session.exec(
        select(Operator)
        .where(Operator.org_id == org_id)
        .order_by(col(Operator.created_at), col(Operator.id))
    )
    return sorted(rows, key=lambda operator: operator.role == "owner")


def create_operator(
    session: Session,
    *,
    org_id: str,
    name: str,
    role: Role,
    phone: str | None = None,
    email: str | None = None,
) -> Operator:
    """Add an operator (``phone`` already E.164). Offline until their first heartbeat."""
    operator = Operator(
        id=new_id("op"), org_id=org_id, name=name, role=role, phone=phone, email=email
    )
    session.add(operator)
    session.flush()
    return operator


def get_operator(session: Session, *, org_id: str, operator_id: str) -> Operator:
    """The org's operator; ``OperatorMissing`` if there is none by that id in this org."""
    operator = session.get(Operator, operator_id)
    if operator is None or operator.org_id != org_id:
        raise OperatorMissing(operator_id)
    return operator


def message_to(
    operator: Operator,
    *,
    settings: OrgSettings,
    body: str,
    subject: str,
    key: str,
    created_at: datetime | None = None,
) -> Message:
    """keepwarm's own message to one of the org's people (a handoff, a notice): SMS to their
    phone, else email, from the org's sender; pending, keyed by ``key``. No consent, gate
    or budget applies to it: it is not a touch."""
    by_sms = operator.phone is not None
    return Message(
        id=new_id("msg"),
        org_id=operator.org_id,
        channel="sms" if by_sms else "email",
        direction=Direction.OUTBOUND,
        sender=Sender.SYSTEM,
        to_address=operator.phone if by_sms else operator.email,
        from_address=settings.sms_from if by_sms else settings.email_from,
        body=body,
        subject=None if by_sms else subject,
        status=MessageStatus.PENDING,
        idempotency_key=key,
        mode=settings.provider_mode.value,
        created_at=created_at or utcnow(),
    )


def heartbeat(
    session: Session, *, org_id: str, operator_id: str, now: datetime | None = None
) -> Operator:
    """The operator's inbox is open: they are online for ``ONLINE_FOR`` from ``now``."""
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    now = now or utcnow()
    # A late, reordered heartbeat never moves presence back.
    if operator.last_seen_at is None or operator.last_seen_at < now:
        operator.last_seen_at = now
        session.add(operator)
        session.flush()
    return operator
