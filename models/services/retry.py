"""A failed send retried by hand: checked for the API, then put back on its way by the
RetrySend workflow's activity, under the row's lock (``rules.retry`` says what is refused).

Locks: the recipient's contact (where the message has one; an opt-out takes it too), then the
message. Its lead and thread are only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models.database import lock
from models.errors import NotFound
from models.rules.compliance import REGION_RULES, Deferred, Verdict, next_open, window_for
from models.rules.retry import RetryFacts, RetryRefused, retry_refusal
from models.rules.whatsapp import whatsapp_template
from models.services.gate import hold_verdict
from models.store.consent import current_consent
from models.store.contacts import recipient_of
from models.store.messages import message_of, reopen_message, whatsapp_session_open
from models.store.orgs import get_org, settings_for
from models.tables import Contact, Lead, Message, Thread
from models.tokens import unsubscribe_token
from models.values import Channel, Direction, MessageStatus, Sender, consent_channel


@dataclass(frozen=True, kw_only=True)
class RetryClaim:
    """The message a retry sends (pending again, or already settled by an earlier attempt)
    and what its send needs besides the row."""

    message: Message
    #: Consent on the channel was withdrawn while the retry was on its way: fail it.
    opted_out: bool
    #: Signs an automated email's one-click unsubscribe link, as its first send had.
    unsubscribe_token: str | None


def check_retry(
    session: Session, *, org_id: str, message_id: str, force: bool, now: datetime
) -> MessageStatus:
    """The message's status when a retry is asked for; for a failed one, whether it may go
    again (``RetryRefused`` if not). ``NotFound`` unless it is the org's.

    Only a failed message starts a retry; another status is the caller's to answer (a retry
    already on its way, or none). The activity asks again under the lock when it sends.
    """
    message = message_of(session, org_id=org_id, message_id=message_id)
    if message.direction != Direction.OUTBOUND:
        raise RetryRefused("not_outbound", "Only messages keepwarm sent can be retried.")
    if message.status == MessageStatus.FAILED:
        contact, lead = _recipient(session, message)
        refusal = retry_refusal(_facts(session, message, contact, lead, now=now), force=force)
        if refusal is not None:
            raise refusal
    return MessageStatus(message.status)


def reopen_failed_send(
    session: Session, *, org_id: str, message_id: str, force: bool, now: datetime
) -> RetryClaim:
    """Put a failed message back to ``pending`` for one more send, once.

    Under the message's lock, so two retries (or a retry and a late delivery report) see one
    another: a failed row passes the retry rule again (``RetryRefused``), waits out quiet
    hours and, for an automated touch, a takeover (``Deferred``), and is reopened. A row
    already pending was reopened by an earlier attempt of this retry: it goes on, its
    consent read again; a settled one is left alone (the send says it went).
    """
    found = message_of(session, org_id=org_id, message_id=message_id)
    if found.direction != Direction.OUTBOUND:
        raise RetryRefused("not_outbound", "Only messages keepwarm sent can be retried.")
    contact, lead = _recipient(session, found)
    if contact is not None:
        contact = lock(session, Contact, contact.id)
    message = lock(session, Message, message_id)
    if message is None:
        raise NotFound(message_id)
    facts = _facts(session, message, contact, lead, now=now)
    if message.status == MessageStatus.FAILED:
        refusal = retry_refusal(facts, force=force)
        if refusal is not None:
            raise refusal
        verdict = _held_back(session, message, contact, lead, now=now)
        if verdict is not None:
            raise Deferred(verdict)
        reopen_message(session, message=message, now=now)
    return RetryClaim(
        message=message,
        opted_out=message.status == MessageStatus.PENDING and facts.consent is False,
        unsubscribe_token=_unsubscribe_token(session, message, contact),
    )


def _recipient(session: Session, message: Message) -> tuple[Contact | None, Lead | None]:
    """The customer the message went to, and its lead; ``(None, None)`` for a message to a
    person of the business (a notification, an alert)."""
    lead = session.get(Lead, message.lead_id) if message.lead_id else None
    if lead is not None:
        return session.get(Contact, lead.contact_id), lead
    thread = session.get(Thread, message.thread_id) if message.thread_id else None
    if thread is not None:
        return session.get(Contact, thread.contact_id), None
    return None, None


def _facts(
    session: Session,
    message: Message,
    contact: Contact | None,
    lead: Lead | None,
    *,
    now: datetime,
) -> RetryFacts:
    """What the retry rule reads about ``message``."""
    channel = Channel(message.channel)
    consent: bool | None = None
    whatsapp_closed = False
    if contact is not None and channel != Channel.VOICE:
        consent = current_consent(session, org_id=message.org_id, contact_id=contact.id)[
            consent_channel(channel)
        ]
        whatsapp_closed = (
            channel == Channel.WHATSAPP
            and whatsapp_template(message) is None
            and not whatsapp_session_open(
                session, org_id=message.org_id, contact_id=contact.id, now=now
            )
        )
    return RetryFacts(
        direction=message.direction,
        channel=message.channel,
        sender=message.sender,
        error=message.error,
        accepted=message.provider_message_id is not None or message.sent_at is not None,
        consent=consent,
        lead_stage=lead.stage if lead is not None else None,
        whatsapp_closed=whatsapp_closed,
    )


def _held_back(
    session: Session, message: Message, contact: Contact | None, lead: Lead | None, *, now: datetime
) -> Verdict | None:
    """Until when the retry must wait: an automated touch while an operator holds the
    conversation, a touch or an operator's reply outside the recipient's quiet hours.
    keepwarm's own answers (a STOP confirmation, a text-back) and messages to the business's
    people wait for neither, as when they were first sent. The touch budget isn't asked: the
    touch was counted when it was first claimed."""
    if contact is None or message.sender not in {Sender.AI, Sender.HUMAN}:
        return None
    settings = settings_for(session, org_id=message.org_id)
    if message.sender == Sender.AI:
        held = hold_verdict(session, contact_id=contact.id, settings=settings, now=now)
        if held is not None:
            return held
    who = recipient_of(session, lead=lead, contact=contact, settings=settings)
    window = window_for(Channel(message.channel), settings, who.region)
    if window is None:
        return None
    opens = next_open(
        now,
        zone=ZoneInfo(who.timezone),
        window=window,
        weekdays_only=settings.quiet_hours.weekdays_only,
    )
    if opens <= now:
        return None
    rule = REGION_RULES.get(who.region or "")
    return Verdict(until=opens, reason=f"quiet hours ({rule.law})" if rule else "quiet hours")


def _unsubscribe_token(session: Session, message: Message, contact: Contact | None) -> str | None:
    """An automated email carries its one-click unsubscribe link again (the same request as
    its first send, which the provider may dedupe by key)."""
    if contact is None or message.sender != Sender.AI or message.channel != Channel.EMAIL:
        return None
    org = get_org(session, org_id=message.org_id)
    return unsubscribe_token(
        secret=org.id_secret, org_id=org.id, contact_id=contact.id, channel=Channel.EMAIL.value
    )
