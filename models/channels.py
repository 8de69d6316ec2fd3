"""Data functions for what the providers tell us: webhook receipts, delivery reports, inbound
messages, calls and payments. Like ``models.store``, every function is scoped by org id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import calls, compliance, store
from models.database import ROW_LOCK, insert_once, lock
from models.tables import (
    Call,
    Contact,
    Identity,
    Lead,
    Message,
    Payment,
    Thread,
    WebhookReceipt,
    utcnow,
)
from models.values import (
    CLOSED_STAGES,
    STATUS_RANK,
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    WebhookProvider,
    consent_channel,
    new_id,
)

# --- webhook receipts ----------------------------------------------------------------------


def record_webhook(
    session: Session,
    *,
    org_id: str,
    provider: WebhookProvider,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
) -> tuple[WebhookReceipt, bool]:
    """Record a verified webhook; return it and whether it is new (not a provider retry)."""
    receipt = WebhookReceipt(
        id=new_id("wh"),
        org_id=org_id,
        provider=provider,
        event_id=event_id[:200],
        event_type=event_type[:64],
        payload=payload,
    )
    return insert_once(
        session,
        receipt,
        WebhookReceipt.org_id == org_id,
        WebhookReceipt.provider == provider,
        WebhookReceipt.event_id == event_id[:200],
    )


def mark_routed(session: Session, *, org_id: str, receipt_id: str) -> None:
    """Every workflow the webhook concerns has been told."""
    receipt = session.get(WebhookReceipt, receipt_id)
    if receipt is None or receipt.org_id != org_id:
        raise store.NotFound(receipt_id)
    if receipt.routed_at is None:
        receipt.routed_at = utcnow()
        session.add(receipt)


# --- delivery reports ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeliveryReport:
    """A provider's word on one outbound message."""

    status: MessageStatus | None
    #: Words for the timeline when the report is not a status (opened, clicked, complained).
    engagement: str | None = None
    error: str | None = None
    #: Consent on the message's channel is withdrawn (opted out at the carrier, a complaint,
    #: a permanent bounce).
    revoke_consent: bool = False


def apply_delivery_report(
    session: Session,
    *,
    org_id: str,
    report: DeliveryReport,
    provider_message_id: str | None,
    idempotency_key: str | None = None,
    source: str,
) -> Message | None:
    """Move the message's status forward (never back) and note the report on the timeline.

    The message is found by our idempotency key when the report carries it (a Twilio status
    callback URL does), else by the provider's id. A pending message that a report shows
    accepted was sent by an attempt that crashed before its commit: it is recorded as sent,
    so the retry finds it settled and does not send again. Unknown messages are ignored.
    """
    message = _outbound(
        session, org_id=org_id, key=idempotency_key, provider_message_id=provider_message_id
    )
    if message is None:
        return None
    if provider_message_id and message.provider_message_id is None:
        message.provider_message_id = provider_message_id
        session.add(message)
    current = MessageStatus(message.status)
    new = report.status
    if new is not None and STATUS_RANK[new] > STATUS_RANK[current]:
        if current == MessageStatus.PENDING and new != MessageStatus.FAILED:
            store.accept_message(session, message=message, status=new)
        else:
            message.status = new
            message.status_at = utcnow()
            if report.error:
                message.error = report.error[:500]
            session.add(message)
        if new in {MessageStatus.DELIVERED, MessageStatus.FAILED} and message.lead_id:
            what = "delivered" if new == MessageStatus.DELIVERED else "failed"
            detail = f": {report.error}" if report.error else ""
            store.timeline(
                session,
                org_id=org_id,
                lead_id=message.lead_id,
                kind=TimelineKind.DELIVERY,
                summary=f"{message.channel.upper()} {what}{detail}",
                data={"message_id": message.id, "status": new.value, "source": source},
            )
    if report.engagement and message.lead_id:
        store.timeline(
            session,
            org_id=org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.ENGAGEMENT,
            summary=f"{message.channel.upper()} {report.engagement}",
            data={"message_id": message.id, "source": source},
        )
    if report.revoke_consent and message.lead_id:
        lead = session.get(Lead, message.lead_id)
        if lead is not None:
            store.record_consent_change(
                session,
                org_id=org_id,
                contact_id=lead.contact_id,
                channel=consent_channel(Channel(message.channel)),
                granted=False,
                source=source,
                evidence=f"message {message.id}: {report.error or report.engagement or ''}",
            )
    session.flush()
    return message


def _outbound(
    session: Session, *, org_id: str, key: str | None, provider_message_id: str | None
) -> Message | None:
    # Locked: a send being recorded at the same moment waits, so neither undoes the other.
    query = (
        select(Message)
        .where(Message.org_id == org_id, Message.direction == Direction.OUTBOUND)
        .with_for_update(**ROW_LOCK)
    )
    if key:
        found = session.exec(query.where(Message.idempotency_key == key)).first()
        if found is not None:
            return found
    if provider_message_id:
        return session.exec(query.where(Message.provider_message_id == provider_message_id)).first()
    return None


# --- inbound messages ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InboundRecorded:
    """An inbound message on the contact's thread, and the contact's open lead if any."""

    message_id: str
    contact_id: str
    lead_id: str | None
    workflow_id: str | None


def record_inbound_message(
    session: Session,
    *,
    org_id: str,
    channel: Channel,
    from_phone: str,
    to_address: str | None,
    body: str,
    provider_message_id: str,
    consent: bool | None,
    source: str,
    implies_consent: bool = True,
) -> InboundRecorded:
    """Record a customer's message on their thread (creating the contact if they are new).

    ``consent`` is a change the message itself makes (an opt-out or opt-in keyword). Someone
    new who texts the business may be answered on that channel: that is recorded as consent
    unless they already said no, or the message is a keyword such as HELP
    (``implies_consent=False``).
    """
    contact = store.resolve_contact(session, org_id=org_id, payload={"phone": from_phone})
    lock(session, Contact, contact.id)  # first, as every service does (models/services)
    governing = consent_channel(channel)
    standing = store.current_consent(session, org_id=org_id, contact_id=contact.id)
    if consent is not None:
        store.record_consent_change(
            session,
            org_id=org_id,
            contact_id=contact.id,
            channel=governing,
            granted=consent,
            source=source,
            evidence=f"inbound message {provider_message_id}",
        )
    elif standing[governing] is None and implies_consent:
        store.record_consent_change(
            session,
            org_id=org_id,
            contact_id=contact.id,
            channel=governing,
            granted=True,
            source=f"{source} (the person wrote first)",
            evidence=f"inbound message {provider_message_id}",
        )
    open_lead = store.open_lead(session, org_id=org_id, contact_id=contact.id)
    thread_id = store.thread_id(session, contact_id=contact.id)
    key = f"{source}:{provider_message_id}"
    existing = session.exec(
        select(Message).where(Message.org_id == org_id, Message.idempotency_key == key)
    ).first()
    if existing is None:
        existing = Message(
            id=new_id("msg"),
            org_id=org_id,
            lead_id=open_lead.id if open_lead else None,
            thread_id=thread_id,
            channel=channel,
            direction=Direction.INBOUND,
            sender=Sender.CUSTOMER,
            to_address=to_address,
            from_address=from_phone,
            body=body,
            status=MessageStatus.RECEIVED,
            idempotency_key=key,
            provider_message_id=provider_message_id,
            sent_at=utcnow(),
        )
        session.add(existing)
        session.flush()
        store.touch_thread(session, message=existing)
        if open_lead is not None:
            store.timeline(
                session,
                org_id=org_id,
                lead_id=open_lead.id,
                kind=TimelineKind.REPLY,
                summary=f"{channel.upper()} reply received",
                data={"message_id": existing.id},
            )
    return InboundRecorded(
        message_id=existing.id,
        contact_id=contact.id,
        lead_id=open_lead.id if open_lead else None,
        workflow_id=open_lead.workflow_id if open_lead else None,
    )


@dataclass(frozen=True, kw_only=True)
class InboundCall:
    """A call to one of the org's numbers, as the provider reported it once it ended."""

    #: The provider's call id (Twilio ``CallSid``, Vapi ``call.id``).
    provider_call_id: str
    #: The caller's number, E.164.
    from_phone: str
    #: The org's number that was called, if the provider said.
    to_address: str | None
    #: Nobody picked up (no answer, busy, failed, hung up while ringing).
    missed: bool
    #: Who reported it (``twilio``, ``vapi``): the consent log's source.
    source: str


def record_inbound_call(session: Session, *, org_id: str, call: InboundCall) -> InboundRecorded:
    """Record a call to the business on the caller's thread, like a text from them.

    It is a message from the customer ("Missed call" or "Inbound call") on their thread and on
    their open lead's timeline as a reply; a contact is created for a new caller. The person
    got in touch first, so they may be answered by text: that is recorded as SMS consent
    unless they already said no. Voice consent is not implied: calling a business is not
    asking for its automated calls.
    """
    recorded = record_inbound_message(
        session,
        org_id=org_id,
        channel=Channel.VOICE,
        from_phone=call.from_phone,
        to_address=call.to_address,
        body="Missed call" if call.missed else "Inbound call",
        provider_message_id=call.provider_call_id,
        consent=None,
        source=call.source,
        implies_consent=False,
    )
    standing = store.current_consent(session, org_id=org_id, contact_id=recorded.contact_id)
    if standing[Channel.SMS] is None:
        store.record_consent_change(
            session,
            org_id=org_id,
            contact_id=recorded.contact_id,
            channel=Channel.SMS,
            granted=True,
            source=f"{call.source} call (the person called first)",
            evidence=f"inbound call {call.provider_call_id}",
        )
    return recorded


@dataclass(frozen=True, kw_only=True)
class OptOutReach:
    """Who to tell of a consent change: the contact's open lead, and whether the person can
    still be reached on any channel."""

    workflow_id: str | None
    everywhere: bool


def opt_out_reach(session: Session, *, org_id: str, contact_id: str) -> OptOutReach:
    """After a consent change: the open lead's workflow, and whether no channel the contact
    has an address for still has consent (they opted out everywhere)."""
    consent = store.current_consent(session, org_id=org_id, contact_id=contact_id)
    kinds = {
        identity.kind
        for identity in session.exec(
            select(Identity).where(Identity.org_id == org_id, Identity.contact_id == contact_id)
        )
    }
    reachable = []
    if "phone" in kinds:
        reachable += [Channel.SMS, Channel.WHATSAPP, Channel.VOICE]
    if "email" in kinds:
        reachable.append(Channel.EMAIL)
    everywhere = not any(consent[channel] for channel in reachable) and any(
        consent[channel] is False for channel in reachable
    )
    lead = store.open_lead(session, org_id=org_id, contact_id=contact_id)
    return OptOutReach(workflow_id=lead.workflow_id if lead else None, everywhere=everywhere)


# --- calls ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CallClaim:
    """The claimed call row and what placing the call needs."""

    call: Call
    customer_name: str | None
    assistant_id: str | None
    phone_number_id: str | None
    #: The contact's voice consent (``False``: they said no, the call must not be placed).
    consent: bool | None = None


def claim_call(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    workflow_id: str,
    attempt: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> CallClaim:
    """The call row for ``idempotency_key``, created (``pending``) if new, before any dialling.

    A new call passes the compliance gate first (calling window, touch budget, per-subject call
    cap, at ``now``), with the contact row locked so concurrent calls count one at a time: if
    it may not go yet, nothing is written and ``store.Deferred`` says until when.
    """
    org = store.get_org(session, org_id=org_id)
    settings = store.org_settings(org)
    lead = session.get(Lead, lead_id)
    if lead is None or lead.org_id != org_id:
        raise store.NotFound(lead_id)
    contact = session.get(Contact, lead.contact_id, with_for_update=ROW_LOCK)
    assert contact is not None
    consent = store.current_consent(session, org_id=org_id, contact_id=contact.id)[Channel.VOICE]
    call = session.exec(select(Call).where(Call.idempotency_key == idempotency_key)).first()
    if call is None:
        now = now or utcnow()
        phone = calls.dialable_phone(session, org_id=org_id, contact_id=contact.id)
        if consent is not False and phone:
            verdict = compliance.check(
                session,
                settings=settings,
                lead=lead,
                contact=contact,
                channel=Channel.VOICE,
                now=now,
            )
            if not verdict.allowed:
                raise store.Deferred(verdict)
        call = Call(
            id=new_id("call"),
            org_id=org_id,
            lead_id=lead_id,
            workflow_id=workflow_id,
            attempt=attempt,
            idempotency_key=idempotency_key,
            mode=settings.provider_mode.value,
            to_address=phone,
            status=CallStatus.PENDING,
            touched_at=now,
            local_hour=calls.local_hour(
                session, settings=settings, lead=lead, contact=contact, at=now
            ),
        )
        session.add(call)
        session.flush()
    elif call.org_id != org_id:
        raise store.NotFound(idempotency_key)
    elif call.attempted_at is None and call.status == CallStatus.PENDING:
        # Claimed before a takeover and retried during it: not dialled yet, so it waits.
        store.held_back_for_takeover(
            session, settings=settings, contact_id=contact.id, now=now or utcnow()
        )
    return CallClaim(
        call=call,
        customer_name=contact.name,
        assistant_id=settings.vapi_assistant_id,
        phone_number_id=settings.vapi_phone_number_id,
        consent=consent,
    )


def mark_call(
    session: Session,
    *,
    call_id: str,
    status: CallStatus | None = None,
    provider_call_id: str | None = None,
    error: str | None = None,
    attempted: bool = False,
) -> Call:
    """Move a call along: attempted (about to dial), placed (Vapi's id) or failed."""
    call = session.get(Call, call_id)
    if call is None:
        raise store.NotFound(call_id)
    now = utcnow()
    if attempted and call.attempted_at is None:
        call.attempted_at = now
    if provider_call_id and call.provider_call_id is None:
        call.provider_call_id = provider_call_id
        call.placed_at = now
    if status is not None and call.status in {CallStatus.PENDING, CallStatus.QUEUED}:
        call.status = status
        if error:
            call.error = error[:500]
        if call.lead_id and status in {CallStatus.QUEUED, CallStatus.SIMULATED}:
            store.timeline(
                session,
                org_id=call.org_id,
                lead_id=call.lead_id,
                kind=TimelineKind.CALL,
                summary=f"Call {'simulated' if status == CallStatus.SIMULATED else 'placed'} "
                f"(attempt {call.attempt})",
                data={"call_id": call.id, "status": status.value},
            )
    session.add(call)
    session.flush()
    return call


@dataclass(frozen=True, kw_only=True)
class CallReport:
    """Vapi's end-of-call report, as far as keepwarm keeps it."""

    provider_call_id: str
    call_key: str | None
    ended_reason: str
    summary: str | None
    duration_s: float | None
    cost: float | None
    ended_at: datetime | None


def record_call_report(session: Session, *, org_id: str, report: CallReport) -> Call | None:
    """Record how a call ended on its row (found by our key, else Vapi's id); ``None`` if unknown.

    The call's workflow is the one stored on its row, never one named by the webhook, so a
    report can only reach a workflow of the org it was posted for.
    """
    query = select(Call).where(Call.org_id == org_id)
    call = None
    if report.call_key:
        call = session.exec(query.where(Call.idempotency_key == report.call_key)).first()
    if call is None:
        call = session.exec(query.where(Call.provider_call_id == report.provider_call_id)).first()
    if call is None:
        return None
    if call.status == CallStatus.ENDED:
        return call  # reported already
    if call.provider_call_id is None:
        call.provider_call_id = report.provider_call_id
        call.placed_at = call.placed_at or utcnow()
    outcome = calls.outcome_of(report.ended_reason)
    call.status = CallStatus.ENDED
    call.outcome = outcome.value
    call.ended_reason = report.ended_reason[:100]
    call.summary = report.summary
    call.duration_s = report.duration_s
    call.cost = report.cost
    call.ended_at = report.ended_at or utcnow()
    session.add(call)
    if outcome == CallOutcome.INVALID_NUMBER and call.to_address:
        calls.mark_invalid(
            session,
            org_id=org_id,
            number=call.to_address,
            reason=f"call {call.id}: {report.ended_reason}",
            at=call.ended_at,
        )
    if call.lead_id:
        seconds = f", {report.duration_s:.0f} s" if report.duration_s is not None else ""
        reason = f" ({report.ended_reason})" if report.ended_reason != outcome.value else ""
        store.timeline(
            session,
            org_id=org_id,
            lead_id=call.lead_id,
            kind=TimelineKind.CALL,
            summary=f"Call attempt {call.attempt} ended: {outcome.value}{reason}{seconds}",
            data={
                "call_id": call.id,
                "attempt": call.attempt,
                "outcome": outcome.value,
                "ended_reason": report.ended_reason,
                "duration_s": report.duration_s,
                "cost": report.cost,
            },
        )
    session.flush()
    return call


# --- payments ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PaymentEvent:
    """A Stripe event about money, reduced to what a lead's history needs."""

    stripe_event_id: str
    stripe_object_id: str
    kind: str
    status: str
    amount: int | None
    currency: str | None
    lead_id: str | None


@dataclass(frozen=True, kw_only=True)
class PaymentRecorded:
    """The payment row and the lead's workflow, when the lead is this org's and still open."""

    payment_id: str
    lead_id: str | None
    workflow_id: str | None


def record_payment(session: Session, *, org_id: str, event: PaymentEvent) -> PaymentRecorded | None:
    """One payment row per Stripe event, on the lead named in its metadata.

    ``None`` (nothing recorded) unless that lead is this org's: the org in the webhook's path
    is not covered by Stripe's signature, so only the lead, which keepwarm put in the
    metadata itself, can say whose payment it is.
    """
    lead = session.get(Lead, event.lead_id) if event.lead_id else None
    if lead is None or lead.org_id != org_id:
        return None
    payment = session.exec(
        select(Payment).where(
            Payment.org_id == org_id, Payment.stripe_event_id == event.stripe_event_id
        )
    ).first()
    if payment is None:
        payment = Payment(
            id=new_id("pay"),
            org_id=org_id,
            lead_id=lead.id,
            stripe_event_id=event.stripe_event_id,
            stripe_object_id=event.stripe_object_id,
            kind=event.kind,
            status=event.status,
            amount=event.amount,
            currency=event.currency,
        )
        session.add(payment)
        session.flush()
        money = (
            f" {event.amount / 100:.2f} {(event.currency or '').upper()}"
            if event.amount is not None
            else ""
        )
        store.timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.PAYMENT,
            summary=f"Payment {event.status}{money} ({event.kind})",
            data={"payment_id": payment.id, "stripe_object_id": event.stripe_object_id},
        )
    open_workflow = lead.workflow_id if lead.stage not in CLOSED_STAGES else None
    return PaymentRecorded(payment_id=payment.id, lead_id=lead.id, workflow_id=open_workflow)


#: Keyword confirmations, by kind: what the person is told, once per keyword message.
CONFIRMATIONS = {
    "stop": "{org_name}: you are unsubscribed and will get no more messages. Reply START to "
    "resubscribe.",
    "start": "{org_name}: you are resubscribed. Reply HELP for help, STOP to unsubscribe.",
    "help": "{org_name}: reply STOP to unsubscribe. Msg&data rates may apply.",
}


def claim_confirmation(
    session: Session, *, org_id: str, inbound_message_id: str, kind: str
) -> Message:
    """The reply to a STOP, START or HELP message, created if new (``confirm/{inbound id}``).

    Sent whatever the consent (CTIA asks for one confirmation of an opt-out), by the system,
    not counted against the touch budget; HELP answers with the org's ``help_reply``.
    """
    inbound = session.get(Message, inbound_message_id)
    if inbound is None or inbound.org_id != org_id or inbound.direction != Direction.INBOUND:
        raise store.NotFound(inbound_message_id)
    key = f"confirm/{inbound.id}"
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return existing
    org = store.get_org(session, org_id=org_id)
    settings = store.org_settings(org)
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
    store.touch_thread(session, message=message)
    return message


#: The ``ConfirmationInput.kind`` of a missed call's text-back.
MISSED_CALL = "missed_call"
#: What someone whose call nobody picked up is texted. Plain GSM-7 characters (a hyphen, not
#: a dash), so it stays one SMS segment.
TEXT_BACK = (
    "Sorry we missed your call - {org_name} here. How can we help? Reply here and we'll get "
    "back to you."
)
#: At most one text-back to a caller's number in this long, however often they call.
TEXT_BACK_SPACING = timedelta(minutes=20)
_TEXT_BACK_KEY = "text-back/"


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
    inbound = session.get(Message, inbound_message_id)
    if (
        inbound is None
        or inbound.org_id != org_id
        or inbound.direction != Direction.INBOUND
        or inbound.channel != Channel.VOICE
        or not inbound.from_address
    ):
        raise store.NotFound(inbound_message_id)
    thread = session.get(Thread, inbound.thread_id) if inbound.thread_id else None
    if thread is None:
        raise store.NotFound(inbound_message_id)
    contact = session.get(Contact, thread.contact_id, with_for_update=ROW_LOCK)
    if contact is None:
        raise store.NotFound(thread.contact_id)
    session.refresh(thread)  # read after the lock: a takeover takes the same one first
    key = f"{_TEXT_BACK_KEY}{inbound.id}"
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return TextBackClaim(message=existing)
    now = now or utcnow()
    withheld = None
    if store.current_consent(session, org_id=org_id, contact_id=contact.id)[Channel.SMS] is False:
        withheld = "the person opted out of SMS"
    elif thread.held_by is not None:
        withheld = "an operator holds the conversation"
    elif _texted_back_since(
        session, org_id=org_id, number=inbound.from_address, since=now - TEXT_BACK_SPACING
    ):
        minutes = int(TEXT_BACK_SPACING.total_seconds() // 60)
        withheld = f"this number was texted back less than {minutes} minutes ago"
    if withheld is not None:
        lead = store.open_lead(session, org_id=org_id, contact_id=contact.id)
        if lead is not None:
            store.timeline(
                session,
                org_id=org_id,
                lead_id=lead.id,
                kind=TimelineKind.TOUCH_SKIPPED,
                summary=f"Missed-call text-back not sent: {withheld}",
                data={"message_id": inbound.id, "reason": withheld},
            )
        return TextBackClaim(message=None, withheld=withheld)
    org = store.get_org(session, org_id=org_id)
    settings = store.org_settings(org)
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


def _texted_back_since(session: Session, *, org_id: str, number: str, since: datetime) -> bool:
    """Whether a text-back to ``number`` was claimed after ``since`` (a failed one doesn't
    count: it never reached the person)."""
    found = session.exec(
        select(Message.id)
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            Message.to_address == number,
            col(Message.idempotency_key).startswith(_TEXT_BACK_KEY),
            Message.status != MessageStatus.FAILED,
            col(Message.created_at) > since,
        )
        .limit(1)
    ).first()
    return found is not None
