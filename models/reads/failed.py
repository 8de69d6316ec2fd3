"""Failed sends for the owner's Failed page: each with who it was for and its error class."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.rules.retry import send_error_class
from models.schemas.retry import SendErrorClass
from models.tables import Contact, Lead, Message
from models.values import Direction, MessageStatus


@dataclass(frozen=True, kw_only=True)
class FailedSend:
    """One outbound message that failed for good."""

    message_id: str
    lead_id: str | None
    thread_id: str | None
    name: str | None
    channel: str
    to_address: str | None
    body: str
    error: str | None
    error_class: SendErrorClass
    created_at: datetime
    failed_at: datetime | None


def failed_sends(session: Session, *, org_id: str, limit: int = 100) -> list[FailedSend]:
    """The org's failed outbound messages, the latest failure first (none of another org's)."""
    rows = session.exec(
        select(Message, Contact.name)
        .outerjoin(Lead, col(Lead.id) == Message.lead_id)
        .outerjoin(Contact, col(Contact.id) == Lead.contact_id)
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            Message.status == MessageStatus.FAILED,
        )
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(limit)
    )
    return [
        FailedSend(
            message_id=message.id,
            lead_id=message.lead_id,
            thread_id=message.thread_id,
            name=name,
            channel=message.channel,
            to_address=message.to_address,
            body=message.body,
            error=message.error,
            error_class=send_error_class(message.error),
            created_at=message.created_at,
            failed_at=message.status_at,
        )
        for message, name in rows
    ]
