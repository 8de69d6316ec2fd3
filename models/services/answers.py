"""keepwarm's own answers to what a customer sent: the one confirmation of a STOP, START or
HELP message, and the missed-call text-back (at most one per number per 20 minutes, never
after an opt-out or while an operator holds the thread)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.database import lock
from models.errors import NotFound
from models.ids import TEXT_BACK_KEY, confirmation_key
from models.rules.messages import (
    CONFIRMATIONS,
    TEXT_BACK,
    TEXT_BACK_SPACING,
)
from models.rules.orgs import org_settings
from models.store.consent import current_consent
from models.store.leads import open_lead
from models.store.orgs import get_org
from models.store.threads import touch_thread
from models.store.timeline import add_to_timeline
from models.tables import (
    Contact,
    Message,
    Thread,
    utcnow,
)
from models.values import (
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    new_id,
)


def claim_confirmation(
    session: Session, *, org_id: str, inbound_message_id: str, kind: str
) -> Message:
    """The reply to a STOP, START or HELP message, created if new (``confirm/{inbound id}``).

    Sent whatever the consent (CTIA asks for one confirmation of an opt-out), by the system,
    not counted against the touch budget; HELP answers with the org's ``help_reply``.
    """
    inbound = session.get(Message, inbound_message_id)
    if inbound is None or inbound.org_id != org_id or inbound.direction != Direction.INBOUND:
        raise NotFound(inbound_message_id)
    key = confirmation_key(inbound.id)
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return existing
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    template = (
        settings.help_reply if kind == "help" and settings.help_reply else CONFIRMATIONS[kind]
    )
    channel = Channel(inbound.channel)
    own_number = settings.whatsapp_from if channel == Channel.WHATSAPP else settings.sms_from
    return _system_answer(
        session,
        inbound=inbound,
        channel=channel,
        own_number=own_number,
        body=template.replace("{org_name}", org.name),
        key=key,
        mode=settings.provider_mode.value,
    )


def _system_answer(
    session: Session,
    *,
    inbound: Message,
    channel: Channel,
    own_number: str | None,
    body: str,
    key: str,
    mode: str,
) -> Message:
    """keepwarm's own answer to an inbound message (a keyword confirmation, a missed-call
    text-back), on its thread and lead, to the number it came from."""
    message = Message(
        id=new_id("msg"),
        org_id=inbound.org_id,
        lead_id=inbound.lead_id,
        thread_id=inbound.thread_id,
        channel=channel,
        direction=Direction.OUTBOUND,
        sender=Sender.SYSTEM,
        to_address=inbound.from_address,
        from_address=own_number or inbound.to_address,
        body=body,
        status=MessageStatus.PENDING,
        idempotency_key=key,
        mode=mode,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    return message


@dataclass(frozen=True, kw_only=True)
class TextBackClaim:
    """The text-back row to send, or why none goes out."""

    message: Message | None
    #: Why nothing is sent (words without personal data), when ``message`` is ``None``.
    withheld: str | None = None


def claim_text_back(
    session: Session, *, org_id: str, inbound_message_id: str, now: datetime | None = None
) -> TextBackClaim:
    """The SMS answering a missed call, created if new (``text-back/{inbound id}``).

    Withheld (nothing written but a ``touch_skipped`` note on the caller's open lead) when the
    person withdrew SMS consent, when an operator holds their thread (a person answers, not
    keepwarm), or when a text-back to the same number was claimed less than
    ``TEXT_BACK_SPACING`` before ``now``; both are decided with the contact row locked, so
    two missed calls at once give one text. It answers the person, so like a keyword's
    confirmation it skips quiet hours and the touch budget.
    """
    call = _lock_missed_call(session, org_id=org_id, inbound_message_id=inbound_message_id)
    inbound = call.inbound
    key = f"{TEXT_BACK_KEY}{inbound.id}"
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return TextBackClaim(message=existing)
    now = now or utcnow()
    withheld = _text_back_withheld(session, org_id=org_id, call=call, now=now)
    if withheld is not None:
        _note_text_back_withheld(session, org_id=org_id, call=call, withheld=withheld)
        return TextBackClaim(message=None, withheld=withheld)
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    message = _system_answer(
        session,
        inbound=inbound,
        channel=Channel.SMS,
        own_number=settings.sms_from,
        body=TEXT_BACK.replace("{org_name}", org.name),
        key=key,
        mode=settings.provider_mode.value,
    )
    return TextBackClaim(message=message)


@dataclass(frozen=True, kw_only=True)
class _MissedCall:
    """A missed call's inbound row, the number it came from, its thread and its contact."""

    inbound: Message
    number: str
    thread: Thread
    #: Locked (``ROW_LOCK``) before the thread was read.
    contact: Contact


def _lock_missed_call(session: Session, *, org_id: str, inbound_message_id: str) -> _MissedCall:
    """The missed call with its contact locked and its thread read after the lock
    (``NotFound`` unless it is the org's inbound call from a known number on a thread)."""
    inbound = session.get(Message, inbound_message_id)
    if (
        inbound is None
        or inbound.org_id != org_id
        or inbound.direction != Direction.INBOUND
        or inbound.channel != Channel.VOICE
        or not inbound.from_address
    ):
        raise NotFound(inbound_message_id)
    thread = session.get(Thread, inbound.thread_id) if inbound.thread_id else None
    if thread is None:
        raise NotFound(inbound_message_id)
    contact = lock(session, Contact, thread.contact_id)
    if contact is None:
        raise NotFound(thread.contact_id)
    session.refresh(thread)  # read after the lock: a takeover takes the same one first
    return _MissedCall(inbound=inbound, number=inbound.from_address, thread=thread, contact=contact)


def _text_back_withheld(
    session: Session, *, org_id: str, call: _MissedCall, now: datetime
) -> str | None:
    """Why no text-back may answer the call (words without personal data), if none may."""
    if current_consent(session, org_id=org_id, contact_id=call.contact.id)[Channel.SMS] is False:
        return "the person opted out of SMS"
    if call.thread.held_by is not None:
        return "an operator holds the conversation"
    if _texted_back_since(
        session, org_id=org_id, number=call.number, since=now - TEXT_BACK_SPACING
    ):
        minutes = int(TEXT_BACK_SPACING.total_seconds() // 60)
        return f"this number was texted back less than {minutes} minutes ago"
    return None


def _note_text_back_withheld(
    session: Session, *, org_id: str, call: _MissedCall, withheld: str
) -> None:
    """Note the withheld text-back on the caller's open lead, if they have one."""
    lead = open_lead(session, org_id=org_id, contact_id=call.contact.id)
    if lead is not None:
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.TOUCH_SKIPPED,
            summary=f"Missed-call text-back not sent: {withheld}",
            data={"message_id": call.inbound.id, "reason": withheld},
        )


def _texted_back_since(session: Session, *, org_id: str, number: str, since: datetime) -> bool:
    """Whether a text-back to ``number`` was claimed after ``since`` (a failed one doesn't
    count: it never reached the person)."""
    found = session.exec(
        select(Message.id)
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            Message.to_address == number,
            col(Message.idempotency_key).startswith(TEXT_BACK_KEY),
            Message.status != MessageStatus.FAILED,
            col(Message.created_at) > since,
        )
        .limit(1)
    ).first()
    return found is not None
