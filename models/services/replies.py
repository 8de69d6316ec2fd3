"""An operator's reply on a thread: claimed once per key on the thread's channel, checked for
consent, WhatsApp's session and quiet hours, and checked again when it is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.errors import NoAddress, NotFound, ReplyRefused
from models.rules.compliance import Deferred, Verdict, next_open, window_for
from models.rules.messages import sender_address
from models.rules.orgs import org_settings
from models.rules.takeover import Hold
from models.services.takeover import take_over
from models.store.consent import current_consent
from models.store.contacts import address_for, recipient_of
from models.store.holds import read_hold
from models.store.leads import open_lead
from models.store.messages import whatsapp_session_open
from models.store.operators import get_operator
from models.store.orgs import get_org, settings_for
from models.store.threads import touch_thread
from models.store.timeline import add_to_timeline
from models.tables import Contact, Lead, Message, Operator, Thread
from models.values import (
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    consent_channel,
    new_id,
)


@dataclass(frozen=True, kw_only=True)
class ReplyClaim:
    """The reply's row, when it may go (``send_at`` later than now: quiet hours), and the
    takeover the reply made (``took_over.changed``) or found."""

    message: Message
    send_at: datetime
    hold: Hold
    repeated: bool


def thread_channel(session: Session, *, thread: Thread) -> Channel:
    """The channel the conversation is on: the customer's last message's (a call's is
    answered by SMS), else keepwarm's last message's, else SMS where there is a phone."""
    for direction in (Direction.INBOUND, Direction.OUTBOUND):
        last = session.exec(
            select(Message.channel)
            .where(
                Message.thread_id == thread.id,
                Message.direction == direction.value,
                Message.sender != Sender.SYSTEM.value,
            )
            .order_by(col(Message.created_at).desc(), col(Message.id).desc())
            .limit(1)
        ).first()
        if last is not None:
            return Channel.SMS if last == Channel.VOICE.value else Channel(last)
    has_phone = _address(session, thread=thread, channel=Channel.SMS) is not None
    return Channel.SMS if has_phone else Channel.EMAIL


def _address(session: Session, *, thread: Thread, channel: Channel) -> str | None:
    return address_for(session, org_id=thread.org_id, contact_id=thread.contact_id, channel=channel)


def _lead(session: Session, *, thread: Thread) -> Lead | None:
    """The contact's open lead, which the reply belongs to."""
    return open_lead(session, org_id=thread.org_id, contact_id=thread.contact_id)


def _refusal(session: Session, *, thread: Thread, channel: Channel, now: datetime) -> str | None:
    """Why a reply on ``channel`` must not go to the thread's contact at all, if it must not."""
    consent = current_consent(session, org_id=thread.org_id, contact_id=thread.contact_id)
    if consent[consent_channel(channel)] is False:
        return f"the person opted out of {consent_channel(channel).value}"
    if channel == Channel.WHATSAPP and not whatsapp_session_open(
        session, org_id=thread.org_id, contact_id=thread.contact_id, now=now
    ):
        return (
            "WhatsApp allows free text only within 24 h of the customer's last WhatsApp "
            "message; reply by SMS or email"
        )
    return None


def send_at(session: Session, *, thread: Thread, channel: Channel, now: datetime) -> datetime:
    """``now``, or when the channel's quiet hours end in the contact's local time."""
    settings = settings_for(session, org_id=thread.org_id)
    contact = session.get(Contact, thread.contact_id)
    assert contact is not None
    who = recipient_of(
        session, lead=_lead(session, thread=thread), contact=contact, settings=settings
    )
    window = window_for(channel, settings, who.region)
    if window is None:
        return now
    return next_open(
        now,
        zone=ZoneInfo(who.timezone),
        window=window,
        weekdays_only=settings.quiet_hours.weekdays_only,
    )


def claim_reply(
    session: Session,
    *,
    org_id: str,
    thread_id: str,
    operator_id: str,
    body: str,
    channel: Channel | None,
    key: str,
    now: datetime,
) -> ReplyClaim:
    """Write the operator's reply (``pending``, sender ``human``), once per ``key``.

    Raises ``OperatorMissing``, ``ThreadMissing``, ``ThreadHeld`` (another operator holds
    the thread) or ``ReplyRefused`` (opted out, no address, WhatsApp's session closed), and
    then writes nothing. The operator takes the thread over if they didn't hold it.
    """
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    # A retry: the first answer again, whoever holds the thread now (nothing changes).
    repeated = _repeated(session, org_id=org_id, thread_id=thread_id, key=key, now=now)
    if repeated is not None:
        return repeated
    hold = take_over(session, org_id=org_id, thread_id=thread_id, operator_id=operator.id, now=now)
    # Asked again under the thread's lock: the same reply sent twice at once is written once.
    repeated = _repeated(session, org_id=org_id, thread_id=thread_id, key=key, now=now, hold=hold)
    if repeated is not None:
        return repeated
    thread, channel, to_address = _reply_route(
        session, thread_id=thread_id, channel=channel, now=now
    )
    message, lead = _write_reply(
        session,
        org_id=org_id,
        thread=thread,
        operator=operator,
        channel=channel,
        to_address=to_address,
        body=body,
        key=key,
        now=now,
    )
    when = send_at(session, thread=thread, channel=channel, now=now)
    if lead is not None:
        later = f", held by quiet hours until {when:%Y-%m-%d %H:%M} UTC" if when > now else ""
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.TOUCH_SENT if when <= now else TimelineKind.TOUCH_DEFERRED,
            summary=f"Reply by {operator.name} on {channel.value}{later}",
            data={"message_id": message.id, "operator_id": operator.id, "sender": "human"},
        )
    return ReplyClaim(message=message, send_at=when, hold=hold, repeated=False)


def _reply_route(
    session: Session, *, thread_id: str, channel: Channel | None, now: datetime
) -> tuple[Thread, Channel, str]:
    """The thread, and the channel and address the reply goes to (``NoAddress`` or
    ``ReplyRefused`` if it can't go there)."""
    thread = session.get(Thread, thread_id)
    assert thread is not None
    channel = channel or thread_channel(session, thread=thread)
    to_address = _address(session, thread=thread, channel=channel)
    if to_address is None:
        raise NoAddress("no_address", f"The contact has no address for {channel.value}.")
    refusal = _refusal(session, thread=thread, channel=channel, now=now)
    if refusal is not None:
        code = "whatsapp_session_closed" if channel == Channel.WHATSAPP else "opted_out"
        raise ReplyRefused(code, f"Not sent: {refusal}.")
    return thread, channel, to_address


def _write_reply(
    session: Session,
    *,
    org_id: str,
    thread: Thread,
    operator: Operator,
    channel: Channel,
    to_address: str,
    body: str,
    key: str,
    now: datetime,
) -> tuple[Message, Lead | None]:
    """The reply's row, written ``pending`` on the thread, and the lead it belongs to."""
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    lead = _lead(session, thread=thread)
    message = Message(
        id=new_id("msg"),
        org_id=org_id,
        lead_id=lead.id if lead else None,
        thread_id=thread.id,
        channel=channel,
        direction=Direction.OUTBOUND,
        sender=Sender.HUMAN,
        operator_id=operator.id,
        to_address=to_address,
        from_address=sender_address(settings, channel),
        body=body,
        subject=f"A message from {org.name}" if channel == Channel.EMAIL else None,
        status=MessageStatus.PENDING,
        idempotency_key=key,
        mode=settings.provider_mode.value,
        created_at=now,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    return message, lead


def _repeated(
    session: Session,
    *,
    org_id: str,
    thread_id: str,
    key: str,
    now: datetime,
    hold: Hold | None = None,
) -> ReplyClaim | None:
    """The reply already written with ``key``, answered again (``None``: there is none)."""
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is None:
        return None
    if existing.org_id != org_id or existing.thread_id != thread_id:
        raise ReplyRefused("idempotency_key_reused", "This key was used for another reply.")
    thread = session.get(Thread, thread_id)
    assert thread is not None
    return ReplyClaim(
        message=existing,
        send_at=send_at(session, thread=thread, channel=Channel(existing.channel), now=now),
        hold=hold or read_hold(session, org_id=org_id, thread_id=thread_id),
        repeated=True,
    )


def ready_to_send(session: Session, *, org_id: str, message_id: str, now: datetime) -> Message:
    """The reply row, checked again at send time: ``ReplyRefused`` if consent went meanwhile
    (the caller marks the row failed, in a transaction of its own), ``store.Deferred`` while
    quiet hours last."""
    message = session.get(Message, message_id)
    if message is None or message.org_id != org_id or message.sender != Sender.HUMAN.value:
        raise NotFound(message_id)
    if message.status != MessageStatus.PENDING.value or message.thread_id is None:
        return message  # settled, failed or attempted: the send path decides
    thread = session.get(Thread, message.thread_id)
    assert thread is not None
    channel = Channel(message.channel)
    refusal = _refusal(session, thread=thread, channel=channel, now=now)
    if refusal is not None:
        raise ReplyRefused("opted_out", refusal)
    when = send_at(session, thread=thread, channel=channel, now=now)
    if when > now:
        zone_note = f"quiet hours: until {when:%a %d %b %H:%M} UTC"
        raise Deferred(Verdict(until=when, reason=zone_note))
    return message


@dataclass(frozen=True, kw_only=True)
class ReplyOutlook:
    """What would happen to a reply on the thread now, told to the operator before they
    write: the channel it goes on, why it can't go at all, or when it would go."""

    channel: Channel
    refusal: str | None
    send_at: datetime


def reply_outlook(session: Session, *, thread: Thread, now: datetime) -> ReplyOutlook:
    """The composer's warning for ``thread`` at ``now`` (the gate decides again at send)."""
    channel = thread_channel(session, thread=thread)
    refusal = _refusal(session, thread=thread, channel=channel, now=now)
    if refusal is None and _address(session, thread=thread, channel=channel) is None:
        refusal = f"there is no {channel.value} address for this person"
    when = now if refusal else send_at(session, thread=thread, channel=channel, now=now)
    return ReplyOutlook(channel=channel, refusal=refusal, send_at=when)
