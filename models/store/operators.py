"""Operators: one of the org's, those online now, and keepwarm's own messages to them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models.errors import OperatorMissing
from models.rules.operators import is_online
from models.schemas import OrgSettings
from models.tables import Message, Operator, utcnow
from models.values import Direction, MessageStatus, OperatorRole, Sender, new_id


def online_operators(session: Session, *, org_id: str, now: datetime) -> list[Operator]:
    """The org's operators online at ``now``: operators before the owner (the owner is the
    last rung of the escalation ladder), then in the order they were added."""
    return [
        operator
        for operator in list_operators(session, org_id=org_id)
        if is_online(operator, now=now)
    ]


def list_operators(
    session: Session, *, org_id: str, include_removed: bool = False
) -> list[Operator]:
    """The org's operators (removed ones only if asked): operators before the owner, then
    in the order added."""
    statement = select(Operator).where(Operator.org_id == org_id)
    if not include_removed:
        statement = statement.where(col(Operator.removed_at).is_(None))
    rows = session.exec(statement.order_by(col(Operator.created_at), col(Operator.id)))
    return sorted(rows, key=lambda operator: operator.role == OperatorRole.OWNER)


def get_operator(session: Session, *, org_id: str, operator_id: str) -> Operator:
    """The org's operator; ``OperatorMissing`` if there is none by that id in this org (or
    the owner removed them: they no longer act)."""
    operator = session.get(Operator, operator_id)
    if operator is None or operator.org_id != org_id or operator.removed_at is not None:
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
