"""What reaches keepwarm from outside, recorded once: customers' messages and calls, delivery
reports and opt-outs' reach (payments: ``models.services.payments``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from models.database import lock
from models.rules.needs_person import needs_person, sentiment
from models.rules.orgs import org_settings
from models.services.escalations import escalate_thread
from models.store.consent import current_consent, record_consent_change
from models.store.contacts import customer_value, resolve_contact
from models.store.leads import open_lead
from models.store.messages import accept_message, outbound_by_key
from models.store.threads import thread_of_contact, touch_thread
from models.store.timeline import add_to_timeline
from models.tables import (
    ConsentRecord,
    Contact,
    Escalation,
    Identity,
    Lead,
    Message,
    Org,
    utcnow,
)
from models.values import (
    STATUS_RANK,
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    consent_channel,
    new_id,
)


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
    message = outbound_by_key(
        session, org_id=org_id, key=idempotency_key, provider_message_id=provider_message_id
    )
    if message is None:
        return None
    if provider_message_id and message.provider_message_id is None:
        message.provider_message_id = provider_message_id
        session.add(message)
    _advance_status(session, message, report=report, org_id=org_id, source=source)
    if report.revoke_consent and _revoked_already(session, message, report=report, org_id=org_id):
        return message  # this report was applied before (a webhook routed again)
    if report.engagement and message.lead_id:
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.ENGAGEMENT,
            summary=f"{message.channel.upper()} {report.engagement}",
            data={"message_id": message.id, "source": source},
        )
    if report.revoke_consent and message.lead_id:
        _revoke_for_report(session, message, report=report, org_id=org_id, source=source)
    session.flush()
    return message


def _advance_status(
    session: Session, message: Message, *, report: DeliveryReport, org_id: str, source: str
) -> None:
    """Move the message's status forward only (a late "sent" never undoes "delivered"); a
    pending message a report shows accepted is recorded as sent; delivery and failure go on
    the lead's timeline."""
    current = MessageStatus(message.status)
    new = report.status
    if new is None or STATUS_RANK[new] <= STATUS_RANK[current]:
        return
    if current == MessageStatus.PENDING and new != MessageStatus.FAILED:
        accept_message(session, message=message, status=new)
    else:
        message.status = new
        message.status_at = utcnow()
        if report.error:
            message.error = report.error[:500]
        session.add(message)
    if new in {MessageStatus.DELIVERED, MessageStatus.FAILED} and message.lead_id:
        what = "delivered" if new == MessageStatus.DELIVERED else "failed"
        detail = f": {report.error}" if report.error else ""
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.DELIVERY,
            summary=f"{message.channel.upper()} {what}{detail}",
            data={"message_id": message.id, "status": new.value, "source": source},
        )


def _revocation_evidence(message: Message, report: DeliveryReport) -> str:
    """What the consent log says a report's revocation came from."""
    return f"message {message.id}: {report.error or report.engagement or ''}"[:200]


def _revoked_already(
    session: Session, message: Message, *, report: DeliveryReport, org_id: str
) -> bool:
    """Whether this report's revocation for this message is on the consent log: applying the
    report again (its webhook routed again) must not note it twice, nor withdraw consent the
    person has given back since."""
    lead = session.get(Lead, message.lead_id) if message.lead_id else None
    if lead is None:
        return False
    return (
        session.exec(
            select(ConsentRecord.id).where(
                ConsentRecord.org_id == org_id,
                ConsentRecord.contact_id == lead.contact_id,
                col(ConsentRecord.granted).is_(False),
                ConsentRecord.evidence == _revocation_evidence(message, report),
            )
        ).first()
        is not None
    )


def _revoke_for_report(
    session: Session, message: Message, *, report: DeliveryReport, org_id: str, source: str
) -> None:
    """The provider says the person opted out (Twilio 21610, an email complaint): consent
    for the message's channel is withdrawn."""
    lead = session.get(Lead, message.lead_id) if message.lead_id else None
    if lead is None:
        return
    record_consent_change(
        session,
        org_id=org_id,
        contact_id=lead.contact_id,
        channel=consent_channel(Channel(message.channel)),
        granted=False,
        source=source,
        evidence=_revocation_evidence(message, report),
    )


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
    contact = resolve_contact(session, org_id=org_id, payload={"phone": from_phone})
    lock(session, Contact, contact.id)  # first, as every service does (models/services)
    idempotency_key = f"{source}:{provider_message_id}"
    if _inbound_by_key(session, org_id=org_id, key=idempotency_key) is None:
        # A message stored already (its webhook routed again) changed consent back then; a
        # STOP applied again must not undo a START sent since.
        _consent_from_message(
            session,
            org_id=org_id,
            contact_id=contact.id,
            channel=consent_channel(channel),
            change=consent,
            implies_consent=implies_consent,
            source=source,
            evidence=f"inbound message {provider_message_id}",
        )
    lead = open_lead(session, org_id=org_id, contact_id=contact.id)
    existing = _store_inbound(
        session,
        Message(
            id=new_id("msg"),
            org_id=org_id,
            lead_id=lead.id if lead else None,
            thread_id=thread_of_contact(session, contact_id=contact.id),
            channel=channel,
            direction=Direction.INBOUND,
            sender=Sender.CUSTOMER,
            to_address=to_address,
            from_address=from_phone,
            body=body,
            status=MessageStatus.RECEIVED,
            idempotency_key=idempotency_key,
            provider_message_id=provider_message_id,
            sent_at=utcnow(),
            # Scored once here, so the agents' satisfaction reads it (``reads.agents``).
            sentiment=sentiment(body),
        ),
    )
    return InboundRecorded(
        message_id=existing.id,
        contact_id=contact.id,
        lead_id=lead.id if lead else None,
        workflow_id=lead.workflow_id if lead else None,
    )


def _consent_from_message(
    session: Session,
    *,
    org_id: str,
    contact_id: str,
    channel: Channel,
    change: bool | None,
    implies_consent: bool,
    source: str,
    evidence: str,
) -> None:
    """The consent an inbound message records: the change a keyword makes, else consent on
    that channel from someone new who wrote first (unless they said no before, or it is a
    keyword such as HELP)."""
    if change is not None:
        record_consent_change(
            session,
            org_id=org_id,
            contact_id=contact_id,
            channel=channel,
            granted=change,
            source=source,
            evidence=evidence,
        )
    elif (
        implies_consent
        and current_consent(session, org_id=org_id, contact_id=contact_id)[channel] is None
    ):
        record_consent_change(
            session,
            org_id=org_id,
            contact_id=contact_id,
            channel=channel,
            granted=True,
            source=f"{source} (the person wrote first)",
            evidence=evidence,
        )


def _inbound_by_key(session: Session, *, org_id: str, key: str) -> Message | None:
    return session.exec(
        select(Message).where(Message.org_id == org_id, Message.idempotency_key == key)
    ).first()


def _store_inbound(session: Session, message: Message) -> Message:
    """The inbound message stored once per provider id (a repeat returns the first), its
    thread kept current and the reply on its lead's timeline."""
    assert message.idempotency_key is not None
    existing = _inbound_by_key(session, org_id=message.org_id, key=message.idempotency_key)
    if existing is not None:
        return existing
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    if message.lead_id is not None:
        add_to_timeline(
            session,
            org_id=message.org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.REPLY,
            summary=f"{message.channel.upper()} reply received",
            data={"message_id": message.id},
        )
    return message


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
    standing = current_consent(session, org_id=org_id, contact_id=recorded.contact_id)
    if standing[Channel.SMS] is None:
        record_consent_change(
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
    consent = current_consent(session, org_id=org_id, contact_id=contact_id)
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
    lead = open_lead(session, org_id=org_id, contact_id=contact_id)
    return OptOutReach(workflow_id=lead.workflow_id if lead else None, everywhere=everywhere)


def flag_if_needs_person(
    session: Session, *, org: Org, contact_id: str, text: str
) -> Escalation | None:
    """The escalation a message that needs a person opens on its thread
    (``models.rules.needs_person``), if it needs one."""
    thread_id = thread_of_contact(session, contact_id=contact_id)
    if thread_id is None:
        return None
    threshold = org_settings(org).vip_value
    value = (
        None if threshold is None else customer_value(session, org_id=org.id, contact_id=contact_id)
    )
    verdict = needs_person(text, customer_value=value, vip_value=threshold)
    if verdict is None:
        return None
    row, _ = escalate_thread(
        session,
        org_id=org.id,
        thread_id=thread_id,
        reason=verdict.reason,
        priority=verdict.priority,
        summary=verdict.summary,
    )
    return row
