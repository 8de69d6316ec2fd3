"""Intake as use cases: prepare a submission (receipt, contact, score), record the lead its
workflow works and attach repeat submissions (bookings: ``services.bookings``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from models.errors import NotFound
from models.ids import identity_conflict_key
from models.payloads import RecordedLead
from models.rules.contacts import _wanted_identities, contact_key
from models.rules.scoring import Scored, score_lead
from models.schemas import OrgSettings
from models.store import agent_days, lead_groups
from models.store.consent import current_consent, record_consent
from models.store.contacts import (
    _identities_for,
    _link_identities,
    find_or_make_contact,
    identities_of,
)
from models.store.escalations import open_escalation
from models.store.leads import get_lead, open_leads
from models.store.orgs import get_org, settings_of
from models.store.receipts import get_receipt, record_intake_receipt
from models.store.sequences import sequence_for
from models.store.threads import thread_of_contact
from models.store.timeline import add_to_timeline
from models.tables import (
    Contact,
    IntakeReceipt,
    Lead,
    Message,
    utcnow,
)
from models.values import (
    Channel,
    Direction,
    EscalationReason,
    IdentityKind,
    Intent,
    Priority,
    Stage,
    TimelineKind,
)


@dataclass(frozen=True, kw_only=True)
class PreparedIntake:
    """A recorded submission and where it should go."""

    receipt_id: str
    new_receipt: bool
    #: The lead that already took this receipt (a replayed event), if any.
    lead_id: str | None
    #: The workflow of an open lead of the same person, if the database knows one.
    open_workflow_id: str | None
    contact_key: str


def prepare_intake(
    session: Session, *, org_id: str, event_id: str | None, kind: str, payload: dict[str, Any]
) -> PreparedIntake:
    """Record the receipt and find the person's open lead, in one transaction.

    A replayed ``event_id`` uses the original submission's identities, so it goes where the
    original went even if its body differs.
    """
    receipt, new = record_intake_receipt(
        session, org_id=org_id, event_id=event_id, kind=kind, payload=payload
    )
    original = receipt.payload
    key = contact_key(email=original.get("email"), phone=original.get("phone"))
    if receipt.lead_id is not None:
        lead = session.get(Lead, receipt.lead_id)
        workflow_id = lead.workflow_id if lead else None
        return PreparedIntake(
            receipt_id=receipt.id,
            new_receipt=new,
            lead_id=receipt.lead_id,
            open_workflow_id=workflow_id,
            contact_key=key,
        )
    # Two index lookups (identity → contacts, contact → leads) rather than one join, so the
    # plan stays the same whatever the table statistics say; a new person stops at the first.
    contact_ids = {
        i.contact_id
        for i in _identities_for(
            session, org_id=org_id, wanted=_wanted_identities(original)
        ).values()
    }
    open_lead = None
    if contact_ids:
        found = open_leads(session, org_id=org_id, contact_ids=sorted(contact_ids), limit=1)
        open_lead = found[0].workflow_id if found else None
    return PreparedIntake(
        receipt_id=receipt.id,
        new_receipt=new,
        lead_id=None,
        open_workflow_id=open_lead,
        contact_key=key,
    )


def _flag_conflicts(
    session: Session, *, lead: Lead, wanted: list[tuple[IdentityKind, str]]
) -> None:
    """Note on the timeline, and in the attention queue, any identity of the submission that
    another contact holds.

    Never merged automatically: an operator decides (merging the two contacts resolves it).
    """
    found = _identities_for(session, org_id=lead.org_id, wanted=wanted)
    others = sorted(
        (kind, identity.contact_id)
        for kind, identity in found.items()
        if identity.contact_id != lead.contact_id
    )
    if not others:
        return
    held = ", ".join(f"{kind} by {contact_id}" for kind, contact_id in others)
    add_to_timeline(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.IDENTITY_CONFLICT,
        summary=f"Identity conflict, not merged: this submission's {held}",
        data={"held_by": {kind: contact_id for kind, contact_id in others}},
    )
    open_escalation(
        session,
        org_id=lead.org_id,
        reason=EscalationReason.IDENTITY_CONFLICT,
        priority=Priority.LOW,
        summary=f"Same person? This lead's contact {lead.contact_id} gave the {held}. "
        "Merge the contacts if they are one person, else resolve this.",
        lead_id=lead.id,
        thread_id=thread_of_contact(session, contact_id=lead.contact_id),
        contact_id=lead.contact_id,
        dedupe_key=identity_conflict_key(lead.id),
        data={"held_by": {kind: contact_id for kind, contact_id in others}},
    )


def record_lead(
    session: Session, *, org_id: str, lead_id: str, workflow_id: str, receipt_id: str
) -> RecordedLead:
    """Create the contact (or find it), its identities, consent, thread and the lead row.

    Idempotent: a retry after a crash finds the lead and answers the same.
    """
    org = get_org(session, org_id=org_id)
    settings = settings_of(session, org)
    lead = session.get(Lead, lead_id)
    if lead is not None and lead.org_id != org_id:
        raise NotFound(lead_id)
    if lead is None:
        lead = _create_lead(
            session,
            settings=settings,
            org_id=org_id,
            lead_id=lead_id,
            workflow_id=workflow_id,
            receipt_id=receipt_id,
        )
    intent = Intent(lead.intent) if lead.intent else None
    channel, reason = _first_touch_channel(
        session, org_id=org_id, contact_id=lead.contact_id, intent=intent
    )
    if (lead.fields or {}).get("cart_status") == "purchased":
        channel, reason = None, "bought already: nothing to chase"
    return RecordedLead(
        lead_id=lead.id,
        contact_id=lead.contact_id,
        first_touch=channel,
        no_touch_reason=reason,
        inactivity_threshold_s=int(settings.inactivity_threshold.total_seconds()),
        score=lead.score,
        intent=intent,
        sequence=sequence_for(session, org_id=org_id, intent=intent, source=lead.source),
    )


def _create_lead(
    session: Session,
    *,
    settings: OrgSettings,
    org_id: str,
    lead_id: str,
    workflow_id: str,
    receipt_id: str,
) -> Lead:
    """The new lead, scored, written with its contact, consent, messages and timeline."""
    receipt = get_receipt(session, org_id=org_id, receipt_id=receipt_id)
    payload = receipt.payload
    contact, new_contact = find_or_make_contact(session, org_id=org_id, payload=payload)
    record_consent(
        session, org_id=org_id, contact_id=contact.id, payload=payload, receipt_id=receipt.id
    )
    lead = Lead(
        id=lead_id,
        org_id=org_id,
        contact_id=contact.id,
        workflow_id=workflow_id,
        stage=Stage.NEW,
        source=payload.get("source"),
        value=payload.get("value"),
        message=payload.get("message"),
        fields=payload.get("fields") or {},
        timezone=payload.get("timezone"),
        created_at=receipt.received_at,
        updated_at=utcnow(),
    )
    scored = score_lead(
        settings.scoring,
        value=lead.value,
        source=lead.source,
        message=lead.message,
        returning_customer=not new_contact
        and _returning_customer(session, org_id=org_id, contact_id=contact.id),
    )
    lead.score, lead.intent = scored.score, scored.intent
    session.add(lead)
    lead_groups.moved(session, before=None, after=lead_groups.group_of(lead))
    receipt.lead_id = lead_id
    session.add(receipt)
    session.flush()
    if not new_contact:
        # A contact made just now has nothing to look for: no thread history (a takeover,
        # a text that opened the lead), no converted lead, and every identity it asked for
        # (a conflict is an identity another contact holds).
        agent_days.lead_created(session, lead_id=lead_id)
        _adopt_inbound_messages(session, lead=lead)
        _flag_conflicts(session, lead=lead, wanted=_wanted_identities(payload))
    _note_intake(session, lead=lead, receipt=receipt, payload=payload, scored=scored)
    return lead


def _returning_customer(session: Session, *, org_id: str, contact_id: str) -> bool:
    """Whether the contact has a converted lead already (a returning customer)."""
    return (
        session.exec(
            select(Lead.id).where(
                Lead.org_id == org_id,
                Lead.contact_id == contact_id,
                Lead.stage == Stage.CONVERTED,
            )
        ).first()
        is not None
    )


def _note_intake(
    session: Session,
    *,
    lead: Lead,
    receipt: IntakeReceipt,
    payload: dict[str, Any],
    scored: Scored,
) -> None:
    """Put the new lead's arrival and its score on its timeline."""
    add_to_timeline(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.INTAKE,
        summary=f"Lead received from {payload.get('source') or 'an unnamed source'}",
        data={"receipt_id": receipt.id, "event_id": receipt.event_id},
    )
    add_to_timeline(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.SCORED,
        summary=f"Scored {scored.score} ({scored.intent.value}): " + "; ".join(scored.reasons),
        data={
            "score": scored.score,
            "intent": scored.intent.value,
            "reasons": list(scored.reasons),
        },
    )


def _adopt_inbound_messages(session: Session, *, lead: Lead) -> None:
    """Put the contact's inbound messages that no lead holds yet (the text that opened this
    lead) on the new lead."""
    thread = thread_of_contact(session, contact_id=lead.contact_id)
    orphans = session.exec(
        select(Message).where(
            Message.org_id == lead.org_id,
            Message.thread_id == thread,
            Message.direction == Direction.INBOUND,
            col(Message.lead_id).is_(None),
        )
    )
    for message in orphans:
        message.lead_id = lead.id
        session.add(message)
    session.flush()


def attach_intake(session: Session, *, org_id: str, lead_id: str, receipt_id: str) -> None:
    """Note a later submission from the same person on their open lead (once per receipt)."""
    receipt = get_receipt(session, org_id=org_id, receipt_id=receipt_id)
    if receipt.lead_id is not None:
        return
    receipt.lead_id = lead_id
    session.add(receipt)
    payload = receipt.payload
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    wanted = _wanted_identities(payload)
    _link_identities(
        session,
        contact=contact,
        wanted=wanted,
        found=_identities_for(session, org_id=org_id, wanted=wanted),
    )
    _flag_conflicts(session, lead=lead, wanted=wanted)
    record_consent(
        session, org_id=org_id, contact_id=contact.id, payload=payload, receipt_id=receipt.id
    )
    add_to_timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.REPEAT_INTAKE,
        summary=f"Submitted again from {payload.get('source') or 'an unnamed source'}",
        data={"receipt_id": receipt.id, "event_id": receipt.event_id},
    )


#: Intents whose first touch is a text when one may be sent: they are worth the interruption.
TEXT_FIRST = frozenset({Intent.HIGH_VALUE, Intent.ENGAGED})


def _first_touch_channel(
    session: Session, *, org_id: str, contact_id: str, intent: Intent | None = None
) -> tuple[Channel | None, str | None]:
    """The first touch's channel, by intent and consent.

    High-value and engaged leads get an SMS when there is a phone with SMS consent, else an
    email unless email was refused; window shoppers and browsers get the email first (less
    intrusive), else the SMS.
    """
    kinds = {
        identity.kind for identity in identities_of(session, org_id=org_id, contact_id=contact_id)
    }
    consent = current_consent(session, org_id=org_id, contact_id=contact_id)
    can_text = IdentityKind.PHONE in kinds and consent[Channel.SMS] is True
    can_email = IdentityKind.EMAIL in kinds and consent[Channel.EMAIL] is not False
    order = (
        [(can_text, Channel.SMS), (can_email, Channel.EMAIL)]
        if intent is None or intent in TEXT_FIRST
        else [(can_email, Channel.EMAIL), (can_text, Channel.SMS)]
    )
    for allowed, channel in order:
        if allowed:
            return channel, None
    return (
        None,
        "no channel with consent: SMS needs explicit consent and email was refused or absent",
    )
