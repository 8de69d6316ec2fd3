"""Message rows after they are claimed: attempted, sent, accepted, failed; found by key or
provider id; deferrals noted; WhatsApp sessions read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.database import lock, locking
from models.errors import NotFound
from models.rules.compliance import Verdict
from models.rules.whatsapp import WHATSAPP_SESSION
from models.store import agent_days
from models.store.consent import record_consent_change
from models.store.leads import get_lead
from models.store.timeline import add_to_timeline, add_to_timeline_once
from models.tables import (
    Lead,
    Message,
    Thread,
    utcnow,
)
from models.values import (
    SETTLED_STATUSES,
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    consent_channel,
)


def whatsapp_session_open(session: Session, *, org_id: str, contact_id: str, now: datetime) -> bool:
    """Whether the contact's last inbound WhatsApp message (on any of their leads, or on
    their thread before a lead held it) is at most ``WHATSAPP_SESSION`` before ``now``."""
    leads = select(Lead.id).where(Lead.org_id == org_id, Lead.contact_id == contact_id)
    threads = select(Thread.id).where(Thread.org_id == org_id, Thread.contact_id == contact_id)
    recent = session.exec(
        select(Message.id)
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.WHATSAPP,
            or_(col(Message.lead_id).in_(leads), col(Message.thread_id).in_(threads)),
            col(Message.created_at) >= now - WHATSAPP_SESSION,
        )
        .limit(1)
    ).first()
    return recent is not None


def note_deferral(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    channel: Channel,
    verdict: Verdict,
    key: str | None = None,
) -> None:
    """Put a deferred touch on the lead's timeline, with why and until when; with ``key``,
    once for that touch (a wait for a sender's pace, asked again and again)."""
    summary = (
        f"{channel.value.upper() if channel != Channel.EMAIL else 'Email'} held back: "
        f"{verdict.reason}"
    )
    data = {
        "channel": channel.value,
        "until": verdict.until.isoformat() if verdict.until else None,
        "reason": verdict.reason,
    }
    kind = TimelineKind.TOUCH_DEFERRED
    if key is None:
        add_to_timeline(
            session, org_id=org_id, lead_id=lead_id, kind=kind, summary=summary, data=data
        )
        return
    data["key"] = key
    add_to_timeline_once(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=kind,
        summary=summary,
        data=data,
        key={"key": key},
    )


def mark_message_attempted(session: Session, *, message_id: str) -> None:
    """Note that a provider call is about to be made: a retry must reconcile before resending."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(message_id)
    if message.attempted_at is None:
        message.attempted_at = utcnow()
        session.add(message)


def mark_message_sent(
    session: Session,
    *,
    message_id: str,
    status: MessageStatus,
    provider_message_id: str | None,
) -> Message:
    """Record that the provider accepted (or dry-run simulated) a message.

    Stamps the lead's ``first_contact_at`` on its first outbound touch. Idempotent, and never
    moves a status back (a delivery report may have got here first: the row is locked, so
    the two can't both see it pending).
    """
    message = lock(session, Message, message_id)
    if message is None:
        raise NotFound(message_id)
    if message.provider_message_id is None and provider_message_id:
        message.provider_message_id = provider_message_id
        session.add(message)
    if message.status in SETTLED_STATUSES or message.status == MessageStatus.FAILED:
        return message
    accept_message(session, message=message, status=status)
    return message


def provider_id_taken(session: Session, *, message: Message, provider_message_id: str) -> bool:
    """Whether another message of the org already holds this provider id."""
    return (
        session.exec(
            select(Message.id).where(
                Message.org_id == message.org_id,
                Message.provider_message_id == provider_message_id,
                Message.id != message.id,
            )
        ).first()
        is not None
    )


def accept_message(session: Session, *, message: Message, status: MessageStatus) -> None:
    """A pending outbound message left the building (a send or a delivery report says so)."""
    now = utcnow()
    message.status = status
    message.sent_at = now
    message.status_at = now
    session.add(message)
    agent_days.message_sent(session, message=message, sent=True)
    if message.lead_id:
        lead = session.get(Lead, message.lead_id)
        # Speed to lead counts touches, not keyword confirmations.
        if lead is not None and lead.first_contact_at is None and message.sender == Sender.AI:
            agent_days.lead_touched(session, lead_id=lead.id, at=now, channel=message.channel)
        verb = "simulated" if status == MessageStatus.SIMULATED else "sent"
        variant = f", variant {message.variant}" if message.variant else ""
        step = f"step {message.step} of {message.sequence}{variant}, " if message.step else ""
        add_to_timeline(
            session,
            org_id=message.org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.TOUCH_SENT,
            summary=f"{message.channel.upper()} {verb} ({step}{message.idempotency_key})",
            data={
                "message_id": message.id,
                "channel": message.channel,
                "status": status.value,
                **({"variant": message.variant} if message.variant else {}),
            },
        )
    session.flush()


def message_of(session: Session, *, org_id: str, message_id: str) -> Message:
    """The org's message by id; ``NotFound`` if it has none."""
    message = session.get(Message, message_id)
    if message is None or message.org_id != org_id:
        raise NotFound(message_id)
    return message


def mark_message_failed(
    session: Session, *, message_id: str, error: str, revoke: bool = False
) -> None:
    """Record that a message could not be sent, and why.

    ``revoke``: the provider says the person opted out (Twilio 21610), so consent on the
    channel is withdrawn and nothing more is sent there until they opt back in.
    """
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(message_id)
    if revoke and message.lead_id:
        lead = get_lead(session, org_id=message.org_id, lead_id=message.lead_id)
        record_consent_change(
            session,
            org_id=message.org_id,
            contact_id=lead.contact_id,
            channel=consent_channel(Channel(message.channel)),
            granted=False,
            source="provider opt-out",
            evidence=f"message {message.id}: {error}",
        )
    message.status = MessageStatus.FAILED
    message.error = error[:500]
    message.status_at = utcnow()
    session.add(message)
    if message.lead_id:
        add_to_timeline(
            session,
            org_id=message.org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.TOUCH_SKIPPED,
            summary=f"{message.channel.upper()} not sent: {error[:200]}",
            data={"message_id": message.id},
        )


def reopen_message(session: Session, *, message: Message, now: datetime) -> None:
    """Put a failed outbound message (locked by the caller) back to ``pending`` for a retry,
    its error cleared (the timeline keeps it).

    An attempt that may have reached the provider stays recorded (``attempted_at``), so the
    retry asks the provider before it sends. One the provider accepted and then failed to
    deliver (a carrier's report) starts afresh: it is sent again, not found again.
    """
    if message.sent_at is not None:
        agent_days.message_sent(session, message=message, sent=False)
    if message.provider_message_id is not None or message.sent_at is not None:
        message.provider_message_id = None
        message.attempted_at = None
        message.sent_at = None
    message.status = MessageStatus.PENDING
    message.error = None
    message.status_at = now
    session.add(message)
    session.flush()


def outbound_by_key(
    session: Session, *, org_id: str, key: str | None, provider_message_id: str | None
) -> Message | None:
    # Locked: a send being recorded at the same moment waits, so neither undoes the other.
    query = locking(
        select(Message).where(Message.org_id == org_id, Message.direction == Direction.OUTBOUND)
    )
    if key:
        found = session.exec(query.where(Message.idempotency_key == key)).first()
        if found is not None:
            return found
    if provider_message_id:
        return session.exec(query.where(Message.provider_message_id == provider_message_id)).first()
    return None


def variant_sent(session: Session, *, lead_id: str, sequence: str, step: int) -> str | None:
    """The variant of the sequence's step (from 1) the lead's message was claimed with, if
    one was: what the lead keeps whatever the step's allocation says later."""
    return session.exec(
        select(Message.variant).where(
            Message.lead_id == lead_id,
            Message.sequence == sequence,
            Message.step == step,
            col(Message.variant).is_not(None),
        )
    ).first()
