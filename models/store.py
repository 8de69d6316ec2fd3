"""Keyword-only data functions: reads for ``api/``, writes for ``activities/``.

Every function takes the org id and filters by it, so one tenant never reads another's rows.
Writes that a retried activity may repeat are idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, tuple_, type_coerce, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import attention, calls, compliance, takeover
from models.database import ROW_LOCK, insert_once, lock
from models.schemas import (
    CallHour,
    CallPublic,
    CallStats,
    ContactPublic,
    HandledBy,
    LastMessage,
    LeadSort,
    LeadValue,
    OrgSettings,
    Percentiles,
    PipelineReport,
    SourceLine,
    ThreadContact,
    ThreadDetail,
    ThreadEscalation,
    ThreadMessage,
    ThreadPriority,
    ThreadSort,
    ThreadStatus,
    ThreadSummary,
    TimelineItem,
)
from models.scoring import score_lead
from models.sequences import NextStep, sequence_for
from models.tables import (
    Call,
    ConsentRecord,
    Contact,
    Escalation,
    Identity,
    IntakeReceipt,
    Lead,
    Message,
    Org,
    Thread,
    TimelineEvent,
    UtcDateTime,
    utcnow,
)
from models.tokens import unsubscribe_token
from models.values import (
    CLOSED_STAGES,
    PLATFORM_ID_FIELDS,
    SETTLED_STATUSES,
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    IdentityKind,
    Intent,
    MessageStatus,
    Sender,
    Stage,
    TimelineKind,
    consent_channel,
    new_id,
)

API_KEY_PREFIX = "kw_"


class NotFound(LookupError):
    """The row does not exist in this org."""


# --- orgs ----------------------------------------------------------------------------------


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key: its SHA-256 (keys are 256-bit random, so no salt)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_org(session: Session, *, name: str, settings: OrgSettings) -> tuple[Org, str]:
    """Create an org and return it with its API key, which is not stored and not shown again."""
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    org = Org(
        id=new_id("org"),
        name=name,
        api_key_hash=hash_api_key(api_key),
        api_key_prefix=api_key[:10],
        id_secret=secrets.token_hex(32),
        settings=settings.model_dump(mode="json"),
    )
    session.add(org)
    session.flush()
    return org, api_key


def org_for_key_hash(session: Session, *, key_hash: str) -> Org | None:
    """The org whose API key hashes to ``key_hash``, if any."""
    return session.exec(select(Org).where(Org.api_key_hash == key_hash)).first()


def get_org(session: Session, *, org_id: str) -> Org:
    """An org by id."""
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound(org_id)
    return org


def org_settings(org: Org) -> OrgSettings:
    """An org's validated settings."""
    return OrgSettings.model_validate(org.settings)


def patch_org_settings(session: Session, *, org_id: str, changes: dict[str, Any]) -> Org:
    """Apply ``changes`` (nested objects merged field by field) and validate the result.

    The org row is locked while read, merged and written, so two concurrent changes to
    different fields both stick. Raises pydantic's ``ValidationError`` and writes nothing if
    the merged settings are invalid.
    """
    org = session.exec(select(Org).where(Org.id == org_id).with_for_update(**ROW_LOCK)).first()
    if org is None:
        raise NotFound(org_id)
    merged = _deep_merge(org_settings(org).model_dump(), changes)
    org.settings = OrgSettings.model_validate(merged).model_dump(mode="json")
    session.add(org)
    session.flush()
    return org


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def count_orgs(session: Session) -> int:
    """How many orgs exist."""
    return session.exec(select(func.count()).select_from(Org)).one()


# --- intake --------------------------------------------------------------------------------


def normalize_phone(raw: str, *, region: str) -> str | None:
    """``raw`` in E.164 using ``region`` for national numbers, or ``None`` if it isn't valid."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def contact_key(*, email: str | None, phone: str | None) -> str:
    """The normalised identity a Lead workflow is keyed by: email if given, else phone."""
    if email:
        return f"email:{email}"
    if phone:
        return f"phone:{phone}"
    raise ValueError("a contact key needs an email or a phone")


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
        open_lead = session.exec(
            select(Lead.workflow_id)
            .where(
                Lead.org_id == org_id,
                col(Lead.contact_id).in_(contact_ids),
                col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES]),
            )
            .order_by(col(Lead.created_at).desc())
            .limit(1)
        ).first()
    return PreparedIntake(
        receipt_id=receipt.id,
        new_receipt=new,
        lead_id=None,
        open_workflow_id=open_lead,
        contact_key=key,
    )


def _wanted_identities(payload: dict[str, Any]) -> list[tuple[IdentityKind, str]]:
    """The submission's identities in resolution order: email, phone, then platform ids."""
    pairs: list[tuple[IdentityKind, Any]] = [
        (IdentityKind.EMAIL, payload.get("email")),
        (IdentityKind.PHONE, payload.get("phone")),
    ]
    fields = payload.get("fields") or {}
    for name, kind in PLATFORM_ID_FIELDS.items():
        value = fields.get(name)
        if isinstance(value, int | str) and not isinstance(value, bool):
            pairs.append((kind, str(value).strip()[:320]))
    return [(kind, value) for kind, value in pairs if value]


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
    timeline(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.IDENTITY_CONFLICT,
        summary=f"Identity conflict, not merged: this submission's {held}",
        data={"held_by": {kind: contact_id for kind, contact_id in others}},
    )
    attention.open_escalation(
        session,
        org_id=lead.org_id,
        reason=attention.IDENTITY_CONFLICT,
        priority="low",
        summary=f"Same person? This lead's contact {lead.contact_id} gave the {held}. "
        "Merge the contacts if they are one person, else resolve this.",
        lead_id=lead.id,
        thread_id=thread_id(session, contact_id=lead.contact_id),
        contact_id=lead.contact_id,
        dedupe_key=f"{attention.IDENTITY_CONFLICT}:{lead.id}",
        data={"held_by": {kind: contact_id for kind, contact_id in others}},
    )


def record_intake_receipt(
    session: Session, *, org_id: str, event_id: str | None, kind: str, payload: dict[str, Any]
) -> tuple[IntakeReceipt, bool]:
    """Record an intake submission; return it and whether it is new.

    The same ``event_id`` again returns the first receipt and ``False``.
    """
    receipt = IntakeReceipt(
        id=new_id("rcpt"), org_id=org_id, event_id=event_id, kind=kind, payload=payload
    )
    return insert_once(
        session, receipt, IntakeReceipt.org_id == org_id, IntakeReceipt.event_id == event_id
    )


class LeadClosed(Exception):
    """The lead has already converted, been lost or opted out."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the lead is {stage}")
        self.stage = stage


class EventIdTaken(Exception):
    """The event id was already used for something else."""


@dataclass(frozen=True, kw_only=True)
class BookingRecorded:
    """A booking on a lead's timeline, and the workflow to tell."""

    receipt_id: str
    workflow_id: str
    duplicate: bool


def record_booking(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    event_id: str,
    starts_at: datetime | None,
    note: str | None,
) -> BookingRecorded:
    """Note that the lead booked (once per ``event_id``).

    Raises ``NotFound`` for another org's or an unknown lead, ``LeadClosed`` if it is no longer
    open, ``EventIdTaken`` if the event id was used for another lead.
    """
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
    payload = {"starts_at": starts_at.isoformat() if starts_at else None, "note": note}
    receipt, new = record_intake_receipt(
        session, org_id=org_id, event_id=f"booking:{event_id}", kind="booking", payload=payload
    )
    if not new:
        if receipt.lead_id != lead_id:
            raise EventIdTaken(event_id)
        return BookingRecorded(receipt_id=receipt.id, workflow_id=lead.workflow_id, duplicate=True)
    if Stage(lead.stage) in CLOSED_STAGES:
        raise LeadClosed(lead.stage)
    receipt.lead_id = lead_id
    session.add(receipt)
    when = f" for {starts_at:%Y-%m-%d %H:%M} UTC" if starts_at else ""
    timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.BOOKING,
        summary=f"Booked{when}",
        data={"receipt_id": receipt.id, **payload},
    )
    return BookingRecorded(receipt_id=receipt.id, workflow_id=lead.workflow_id, duplicate=False)


@dataclass(frozen=True, kw_only=True)
class RecordedLead:
    """What the Lead workflow needs to know after intake was recorded."""

    lead_id: str
    contact_id: str
    first_touch: Channel | None
    no_touch_reason: str | None
    inactivity_threshold_s: int
    #: Intent scoring (absent from activity results recorded before scoring existed).
    score: int = 0
    intent: Intent | None = None
    #: The nudge sequence for the lead's intent, if any.
    sequence: str | None = None
    #: Its first step, due ``after`` from ``sequence_anchor`` (given the workflow's time).
    first_step: NextStep | None = None
    sequence_anchor: datetime | None = None
    #: The compliance gate's pre-check of the first touch: held back until when, and why.
    hold_until: datetime | None = None
    hold_reason: str | None = None


def record_lead(
    session: Session, *, org_id: str, lead_id: str, workflow_id: str, receipt_id: str
) -> RecordedLead:
    """Create the contact (or find it), its identities, consent, thread and the lead row.

    Idempotent: a retry after a crash finds the lead and answers the same.
    """
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    lead = session.get(Lead, lead_id)
    if lead is not None and lead.org_id != org_id:
        raise NotFound(lead_id)
    if lead is None:
        receipt = _receipt(session, org_id=org_id, receipt_id=receipt_id)
        payload = receipt.payload
        contact = resolve_contact(session, org_id=org_id, payload=payload)
        _record_consent(
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
        returning = (
            session.exec(
                select(Lead.id).where(
                    Lead.org_id == org_id,
                    Lead.contact_id == contact.id,
                    Lead.stage == Stage.CONVERTED,
                )
            ).first()
            is not None
        )
        scored = score_lead(
            settings.scoring,
            value=lead.value,
            source=lead.source,
            message=lead.message,
            returning_customer=returning,
        )
        lead.score, lead.intent = scored.score, scored.intent
        session.add(lead)
        receipt.lead_id = lead_id
        session.add(receipt)
        session.flush()
        _adopt_inbound_messages(session, lead=lead)
        _flag_conflicts(session, lead=lead, wanted=_wanted_identities(payload))
        timeline(
            session,
            org_id=org_id,
            lead_id=lead_id,
            kind=TimelineKind.INTAKE,
            summary=f"Lead received from {payload.get('source') or 'an unnamed source'}",
            data={"receipt_id": receipt.id, "event_id": receipt.event_id},
        )
        timeline(
            session,
            org_id=org_id,
            lead_id=lead_id,
            kind=TimelineKind.SCORED,
            summary=f"Scored {scored.score} ({scored.intent.value}): " + "; ".join(scored.reasons),
            data={
                "score": scored.score,
                "intent": scored.intent.value,
                "reasons": list(scored.reasons),
            },
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


def _adopt_inbound_messages(session: Session, *, lead: Lead) -> None:
    """Put the contact's inbound messages that no lead holds yet (the text that opened this
    lead) on the new lead."""
    thread = thread_id(session, contact_id=lead.contact_id)
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
    receipt = _receipt(session, org_id=org_id, receipt_id=receipt_id)
    if receipt.lead_id is not None:
        return
    receipt.lead_id = lead_id
    session.add(receipt)
    payload = receipt.payload
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
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
    _record_consent(
        session, org_id=org_id, contact_id=contact.id, payload=payload, receipt_id=receipt.id
    )
    timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.REPEAT_INTAKE,
        summary=f"Submitted again from {payload.get('source') or 'an unnamed source'}",
        data={"receipt_id": receipt.id, "event_id": receipt.event_id},
    )


def _receipt(session: Session, *, org_id: str, receipt_id: str) -> IntakeReceipt:
    receipt = session.get(IntakeReceipt, receipt_id)
    if receipt is None or receipt.org_id != org_id:
        raise NotFound(receipt_id)
    return receipt


def resolve_contact(session: Session, *, org_id: str, payload: dict[str, Any]) -> Contact:
    """Exact match on email, then phone, then platform ids; a new contact otherwise.

    Never merges two contacts: identities another contact holds stay with it. Two
    transactions resolving the same new person at once (a form and a text in the same
    instant) make one contact: the one whose identity insert loses the race (unique per org,
    kind and value) resolves again and finds the winner's. On PostgreSQL only: on SQLite a
    savepoint opened before the reads would turn the write lock's wait into an immediate
    "database is locked"; there the loser's caller retries (an activity, a webhook's 5xx).
    """
    if session.get_bind().dialect.name == "sqlite":
        return _resolve_contact(session, org_id=org_id, payload=payload)
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _resolve_contact(session, org_id=org_id, payload=payload)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _resolve_contact(session: Session, *, org_id: str, payload: dict[str, Any]) -> Contact:
    wanted = _wanted_identities(payload)
    found = _identities_for(session, org_id=org_id, wanted=wanted)
    owner_id = next((found[kind].contact_id for kind, _ in wanted if kind in found), None)
    if owner_id is not None:
        contact = session.get(Contact, owner_id)
        assert contact is not None
        if payload.get("name") and not contact.name:
            contact.name = payload["name"]
            session.add(contact)
    else:
        contact = Contact(
            id=new_id("ct"),
            org_id=org_id,
            name=payload.get("name"),
            timezone=payload.get("timezone"),
        )
        session.add(contact)
        session.add(Thread(id=new_id("th"), org_id=org_id, contact_id=contact.id))
        session.flush()
    _link_identities(session, contact=contact, wanted=wanted, found=found)
    return contact


def _identity_match(wanted: list[tuple[IdentityKind, str]]) -> Any:
    """A WHERE clause matching any of ``wanted`` (kind and value)."""
    return or_(
        *(and_(col(Identity.kind) == kind, col(Identity.value) == value) for kind, value in wanted)
    )


def _identities_for(
    session: Session, *, org_id: str, wanted: list[tuple[IdentityKind, str]]
) -> dict[str, Identity]:
    """The existing identities among ``wanted``, by kind."""
    if not wanted:
        return {}
    matches = session.exec(
        select(Identity).where(Identity.org_id == org_id, _identity_match(wanted))
    )
    return {identity.kind: identity for identity in matches}


def _link_identities(
    session: Session,
    *,
    contact: Contact,
    wanted: list[tuple[IdentityKind, str]],
    found: dict[str, Identity],
) -> None:
    """Link the identities nobody holds yet to ``contact``; one held by another is left alone."""
    for kind, value in wanted:
        if kind not in found:
            session.add(
                Identity(
                    id=new_id("id"),
                    org_id=contact.org_id,
                    contact_id=contact.id,
                    kind=kind,
                    value=value,
                )
            )
    session.flush()


def _record_consent(
    session: Session, *, org_id: str, contact_id: str, payload: dict[str, Any], receipt_id: str
) -> None:
    for channel, granted in (payload.get("consent") or {}).items():
        if granted is None:
            continue
        session.add(
            ConsentRecord(
                id=new_id("cons"),
                org_id=org_id,
                contact_id=contact_id,
                channel=channel,
                granted=bool(granted),
                source="intake_form",
                evidence=f"intake receipt {receipt_id}",
            )
        )
    session.flush()


def consent_log(session: Session, *, org_id: str, contact_id: str) -> list[ConsentRecord]:
    """Every consent change of the contact, oldest first; ``NotFound`` if not this org's."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound(contact_id)
    return list(
        session.exec(
            select(ConsentRecord)
            .where(ConsentRecord.org_id == org_id, ConsentRecord.contact_id == contact_id)
            .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
        )
    )


def current_consent(session: Session, *, org_id: str, contact_id: str) -> dict[str, bool | None]:
    """The latest consent per channel; ``None`` where the person was never asked."""
    consent: dict[str, bool | None] = {channel.value: None for channel in Channel}
    records = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.org_id == org_id, ConsentRecord.contact_id == contact_id)
        .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
    )
    for record in records:
        consent[record.channel] = record.granted
    return consent


def _identities(session: Session, *, org_id: str, contact_id: str) -> list[Identity]:
    return list(
        session.exec(
            select(Identity)
            .where(Identity.org_id == org_id, Identity.contact_id == contact_id)
            .order_by(col(Identity.created_at), col(Identity.id))
        )
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
        identity.kind for identity in _identities(session, org_id=org_id, contact_id=contact_id)
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


# --- stages and timeline -------------------------------------------------------------------


def set_stage(session: Session, *, org_id: str, lead_id: str, stage: Stage, reason: str) -> None:
    """Move a lead to ``stage`` and say why on its timeline (no-op if it is already there)."""
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
    if lead.stage == stage:
        return
    previous = lead.stage
    lead.stage = stage
    lead.updated_at = utcnow()
    session.add(lead)
    timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.STAGE_CHANGED,
        summary=f"{previous} → {stage}: {reason}",
        data={"from": previous, "to": stage.value, "reason": reason},
    )


def thread_id(session: Session, *, contact_id: str) -> str | None:
    """The id of the contact's one thread."""
    return session.exec(select(Thread.id).where(Thread.contact_id == contact_id)).first()


def lock_thread(session: Session, *, thread_id: str) -> Thread | None:
    """The thread, locked after its contact: the services' lock order (contact, then thread).

    Every write to a thread's row goes through here first, so a transaction that already
    holds the contact (a claim, a takeover) and one that writes the thread never wait on
    each other in opposite orders. Locks held already are kept (no second wait).
    """
    thread = session.get(Thread, thread_id)
    if thread is None:
        return None
    lock(session, Contact, thread.contact_id)
    return lock(session, Thread, thread_id)


def _later(column: Any, at: datetime) -> Any:
    """``column`` moved forward to ``at`` (never back), in SQL."""
    bound = literal(at, type_=UtcDateTime())
    return case((or_(column.is_(None), column < bound), bound), else_=column)


def touch_thread(session: Session, *, message: Message) -> None:
    """A message was written on its thread: keep the inbox's view of the thread current.

    ``last_message_at`` moves to the message; an inbound one also moves ``last_inbound_at``
    and makes the thread ``unread`` again (resolved or assigned, the customer is waiting
    now); a person's message moves ``last_human_at``. Times only move forward, so messages
    recorded out of order leave the latest. One UPDATE computed in SQL, not read and written
    back: two messages on one thread at once can't undo each other's times.
    """
    if message.thread_id is None:
        return
    lock_thread(session, thread_id=message.thread_id)
    values: dict[Any, Any] = {
        Thread.last_message_at: _later(col(Thread.last_message_at), message.created_at)
    }
    if message.direction == Direction.INBOUND:
        values[Thread.last_inbound_at] = _later(col(Thread.last_inbound_at), message.created_at)
        values[Thread.status] = "unread"
    if message.sender == Sender.HUMAN:
        values[Thread.last_human_at] = _later(col(Thread.last_human_at), message.created_at)
    session.execute(update(Thread).where(col(Thread.id) == message.thread_id).values(values))


def _fold_thread(session: Session, *, keep_id: str | None, other: Thread) -> None:
    """A merge moved ``other``'s messages to ``keep_id``: carry its activity over (an
    unread thread stays unread)."""
    keep = session.get(Thread, keep_id) if keep_id else None
    if keep is None:
        return
    for name in ("last_message_at", "last_inbound_at", "last_human_at"):
        times = [t for t in (getattr(keep, name), getattr(other, name)) if t is not None]
        setattr(keep, name, max(times, default=None))
    if other.status == "unread":
        keep.status = "unread"
    session.add(keep)


def timeline(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    kind: TimelineKind,
    summary: str,
    data: dict[str, Any],
) -> None:
    session.add(
        TimelineEvent(
            id=new_id("ev"), org_id=org_id, lead_id=lead_id, kind=kind, summary=summary, data=data
        )
    )
    session.flush()


def _lead(session: Session, *, org_id: str, lead_id: str) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None or lead.org_id != org_id:
        raise NotFound(lead_id)
    return lead


# --- outbound messages ---------------------------------------------------------------------

TEMPLATES: dict[str, str] = {
    "first_touch": (
        "Hi {first_name}, thanks for getting in touch with {org_name}! "
        "We'll help with your request shortly. Reply here with any questions."
    ),
    # After a call went to voicemail: once per sequence, by the call-retry loop.
    "voicemail_text_back": (
        "Hi {first_name}, it's {org_name}: we just tried to call you about your enquiry. "
        "Reply here, or call us back whenever suits you."
    ),
}
#: Email subjects, per template.
SUBJECTS: dict[str, str] = {
    "first_touch": "Thanks for getting in touch with {org_name}",
}

#: WhatsApp's customer service window: free text only this long after the customer's last
#: WhatsApp message, an approved template otherwise.
WHATSAPP_SESSION = timedelta(hours=24)
#: Why a WhatsApp touch outside the session fails when the org has no template.
WHATSAPP_NO_TEMPLATE = (
    "WhatsApp: more than 24 h since the customer's last message and no whatsapp_template_sid is set"
)
#: A WhatsApp row's ``subject`` (WhatsApp has none) starting with this was claimed as a
#: template send: ``template:{content_sid} {content_variables}``, the exact values Twilio gets.
WHATSAPP_TEMPLATE_MARK = "template:"
#: Template variables are short; this keeps the marker inside the 300-character column.
_TEMPLATE_VARIABLE_MAX = 60


@dataclass(frozen=True, kw_only=True)
class WhatsAppTemplate:
    """The Content API template a WhatsApp message was claimed to go out as."""

    content_sid: str
    #: A JSON object of the template's variables (``{"1": first name}``), as Twilio takes it.
    content_variables: str


def whatsapp_template(message: Message) -> WhatsAppTemplate | None:
    """The template ``message`` goes out as, or ``None`` for free text (fixed at claim)."""
    if message.channel != Channel.WHATSAPP or not message.subject:
        return None
    if not message.subject.startswith(WHATSAPP_TEMPLATE_MARK):
        return None
    content_sid, _, variables = message.subject.removeprefix(WHATSAPP_TEMPLATE_MARK).partition(" ")
    return WhatsAppTemplate(content_sid=content_sid, content_variables=variables or "{}")


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


@dataclass(frozen=True, kw_only=True)
class OutboundClaim:
    """The claimed message row and what the send needs besides it."""

    message: Message
    contact_id: str
    subject: str | None
    #: The latest consent on the message's channel (``None``: never asked).
    consent: bool | None
    #: Signs the email's one-click unsubscribe link (email only).
    unsubscribe_token: str | None


def claim_outbound_message(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    channel: Channel,
    idempotency_key: str,
    template: str,
    text: str | None = None,
    now: datetime | None = None,
) -> OutboundClaim:
    """The outbound message row for ``idempotency_key``, created (status ``pending``) if new.

    Written and committed before any provider call, so a retry finds it and never sends twice.
    The org's provider mode is fixed on the row here, so retries can't switch modes. A new
    touch passes the compliance gate first (quiet hours, touch budget, at ``now``): if it
    may not go yet, nothing is written and ``Deferred`` says until when.

    WhatsApp's form is fixed here too: free text inside 24 h of the contact's last WhatsApp
    message, else the org's ``whatsapp_template_sid`` (marked in ``subject``, see
    ``whatsapp_template``; the body becomes a readable preview). With no template the row
    is written already failed (``WHATSAPP_NO_TEMPLATE``, on the timeline) and never sent.
    """
    org = get_org(session, org_id=org_id)
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
    # Locked: two workflows claiming touches for one person count the budget one at a time.
    contact = session.get(Contact, lead.contact_id, with_for_update=ROW_LOCK)
    assert contact is not None
    consent = current_consent(session, org_id=org_id, contact_id=contact.id)
    governing = consent_channel(channel)
    token = (
        unsubscribe_token(
            secret=org.id_secret, org_id=org_id, contact_id=contact.id, channel=channel.value
        )
        if channel == Channel.EMAIL
        else None
    )
    existing = session.exec(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        if existing.org_id != org_id:
            raise NotFound(idempotency_key)
        if existing.attempted_at is None and existing.status == MessageStatus.PENDING:
            # Claimed before a takeover and retried during it (a provider outage, a crash):
            # it has not reached the provider, so it waits for the release like a new touch.
            held_back_for_takeover(
                session, settings=org_settings(org), contact_id=contact.id, now=now or utcnow()
            )
        return OutboundClaim(
            message=existing,
            contact_id=contact.id,
            subject=existing.subject,
            consent=consent[governing],
            unsubscribe_token=token,
        )
    settings = org_settings(org)
    thread = session.exec(select(Thread).where(Thread.contact_id == contact.id)).first()
    to_address = address_for(session, org_id=org_id, contact_id=contact.id, channel=channel)
    now = now or utcnow()
    if consent[governing] is not False and to_address:
        verdict = compliance.check(
            session, settings=settings, lead=lead, contact=contact, channel=channel, now=now
        )
        if not verdict.allowed:
            raise Deferred(verdict)
    from_address = sender_address(settings, channel)
    first_name = ((contact.name or "").split() or ["there"])[0]
    fields = {"first_name": first_name, "name": contact.name or "there", "org_name": org.name}
    body = (text or TEMPLATES[template]).format_map(fields)
    subject_template = SUBJECTS.get(template, "A note from {org_name}")
    subject = subject_template.format_map(fields) if channel == Channel.EMAIL else None
    refusal = None
    # Only a touch that could go out is judged: an opt-out or a missing number fails anyway.
    if (
        channel == Channel.WHATSAPP
        and consent[governing] is not False
        and to_address
        and not whatsapp_session_open(session, org_id=org_id, contact_id=contact.id, now=now)
    ):
        content_sid = settings.whatsapp_template_sid
        if content_sid is None:
            refusal = WHATSAPP_NO_TEMPLATE
        else:
            variables = json.dumps({"1": first_name[:_TEMPLATE_VARIABLE_MAX]}, ensure_ascii=False)
            subject = f"{WHATSAPP_TEMPLATE_MARK}{content_sid} {variables}"
            # Twilio renders the template; the row keeps the text it stands in for.
            body = f"[WhatsApp template {content_sid}] {body}"
    message = Message(
        id=new_id("msg"),
        org_id=org_id,
        lead_id=lead_id,
        thread_id=thread.id if thread else None,
        channel=channel,
        direction=Direction.OUTBOUND,
        sender=Sender.AI,
        to_address=to_address,
        from_address=from_address,
        body=body,
        subject=subject,
        status=MessageStatus.PENDING,
        idempotency_key=idempotency_key,
        mode=settings.provider_mode.value,
        touched_at=now,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    if refusal is not None:
        mark_message_failed(session, message_id=message.id, error=refusal)
    return OutboundClaim(
        message=message,
        contact_id=contact.id,
        subject=subject,
        consent=consent[governing],
        unsubscribe_token=token,
    )


def address_for(session: Session, *, org_id: str, contact_id: str, channel: Channel) -> str | None:
    """Where a message on ``channel`` goes: the contact's newest email, or newest phone for
    SMS and WhatsApp. A number a provider called invalid (misdialled, unallocated) is never
    used again."""
    wanted = IdentityKind.EMAIL if channel == Channel.EMAIL else IdentityKind.PHONE
    identities = _identities(session, org_id=org_id, contact_id=contact_id)
    return next(
        (i.value for i in reversed(identities) if i.kind == wanted and i.invalid_at is None),
        None,
    )


def open_lead(session: Session, *, org_id: str, contact_id: str) -> Lead | None:
    """The contact's newest lead that is still open."""
    return session.exec(
        select(Lead)
        .where(
            Lead.org_id == org_id,
            Lead.contact_id == contact_id,
            col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES]),
        )
        .order_by(col(Lead.created_at).desc())
        .limit(1)
    ).first()


def sender_address(settings: OrgSettings, channel: Channel) -> str | None:
    """The org's own number or mailbox that ``channel`` sends from (``None`` for a call)."""
    return {
        Channel.SMS: settings.sms_from,
        Channel.WHATSAPP: settings.whatsapp_from,
        Channel.EMAIL: settings.email_from,
    }.get(channel)


def held_back_for_takeover(
    session: Session, *, settings: OrgSettings, contact_id: str, now: datetime
) -> None:
    """``Deferred`` while an operator holds the contact's thread (the gate's takeover rule,
    for a touch or call already claimed that has not been attempted yet)."""
    verdict = compliance.hold_verdict(session, contact_id=contact_id, settings=settings, now=now)
    if verdict is not None:
        raise Deferred(verdict)


def gate(
    session: Session, *, org_id: str, lead_id: str, channel: Channel, now: datetime
) -> compliance.Verdict:
    """The compliance gate's answer for a touch of the lead on ``channel`` at ``now``, as a
    workflow's pre-check (the send asks again when it claims the message). A touch held
    back is noted on the lead's timeline."""
    org = get_org(session, org_id=org_id)
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    verdict = compliance.check(
        session, settings=org_settings(org), lead=lead, contact=contact, channel=channel, now=now
    )
    if not verdict.allowed:
        note_deferral(session, org_id=org_id, lead_id=lead_id, channel=channel, verdict=verdict)
    return verdict


class Deferred(Exception):
    """The compliance gate holds this touch back until ``verdict.until``."""

    def __init__(self, verdict: compliance.Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def note_deferral(
    session: Session, *, org_id: str, lead_id: str, channel: Channel, verdict: compliance.Verdict
) -> None:
    """Put a deferred touch on the lead's timeline, with why and until when."""
    timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.TOUCH_DEFERRED,
        summary=f"{channel.value.upper() if channel != Channel.EMAIL else 'Email'} held back: "
        f"{verdict.reason}",
        data={
            "channel": channel.value,
            "until": verdict.until.isoformat() if verdict.until else None,
            "reason": verdict.reason,
        },
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
    message = session.get(Message, message_id, with_for_update=ROW_LOCK)
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
    if message.lead_id:
        lead = session.get(Lead, message.lead_id)
        # Speed to lead counts touches, not keyword confirmations.
        if lead is not None and lead.first_contact_at is None and message.sender == Sender.AI:
            lead.first_contact_at = now
            lead.updated_at = now
            session.add(lead)
        verb = "simulated" if status == MessageStatus.SIMULATED else "sent"
        timeline(
            session,
            org_id=message.org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.TOUCH_SENT,
            summary=f"{message.channel.upper()} {verb} ({message.idempotency_key})",
            data={"message_id": message.id, "channel": message.channel, "status": status.value},
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
        lead = _lead(session, org_id=message.org_id, lead_id=message.lead_id)
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
        timeline(
            session,
            org_id=message.org_id,
            lead_id=message.lead_id,
            kind=TimelineKind.TOUCH_SKIPPED,
            summary=f"{message.channel.upper()} not sent: {error[:200]}",
            data={"message_id": message.id},
        )


def record_consent_change(
    session: Session,
    *,
    org_id: str,
    contact_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    evidence: str,
) -> bool:
    """Record a consent change on a channel; ``False`` (nothing written) if it already stood."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound(contact_id)
    if current_consent(session, org_id=org_id, contact_id=contact_id)[channel] is granted:
        return False
    session.add(
        ConsentRecord(
            id=new_id("cons"),
            org_id=org_id,
            contact_id=contact_id,
            channel=channel,
            granted=granted,
            source=source,
            evidence=evidence[:200],
        )
    )
    lead = session.exec(
        select(Lead)
        .where(Lead.org_id == org_id, Lead.contact_id == contact_id)
        .order_by(col(Lead.created_at).desc())
        .limit(1)
    ).first()
    if lead is not None:
        verb = "given" if granted else "withdrawn"
        timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.CONSENT,
            summary=f"{channel.upper()} consent {verb} ({source})",
            data={"channel": channel.value, "granted": granted, "source": source},
        )
    session.flush()
    return True


# --- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LeadRow:
    """A lead with its contact's name, for lists."""

    lead: Lead
    name: str | None


def _recency(lead: Lead) -> list[Any]:
    return [lead.created_at, lead.id]


#: Per sort: descending?, the key columns, and how to read the key off a row (for cursors).
_SORTS: dict[str, tuple[bool, list[Any], Callable[[Lead], list[Any]]]] = {
    "recent": (True, [col(Lead.created_at), col(Lead.id)], _recency),
    "oldest": (False, [col(Lead.created_at), col(Lead.id)], _recency),
    "score": (
        True,
        [col(Lead.score), col(Lead.created_at), col(Lead.id)],
        lambda lead: [lead.score, *_recency(lead)],
    ),
    "value": (
        True,
        [func.coalesce(Lead.value, -1.0), col(Lead.created_at), col(Lead.id)],
        lambda lead: [lead.value if lead.value is not None else -1.0, *_recency(lead)],
    ),
}


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort key of the last row of a page."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


class InvalidCursor(ValueError):
    """A cursor that this sort did not hand out."""


def decode_cursor(cursor: str, *, sort: LeadSort) -> list[Any]:
    """The sort key a cursor holds; ``InvalidCursor`` if it is not one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidCursor("cursor is not valid") from None
    expected = len(_SORTS[sort][1])
    if not isinstance(values, list) or len(values) != expected:
        raise InvalidCursor("cursor is not valid for this sort")
    *head, created_at, lead_id = values
    try:
        created = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        raise InvalidCursor("cursor is not valid") from None
    numbers_ok = all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in head
    )
    if created.tzinfo is None or not isinstance(lead_id, str) or not numbers_ok:
        raise InvalidCursor("cursor is not valid")
    if sort == "score" and not isinstance(head[0], int):
        raise InvalidCursor("cursor is not valid for this sort")
    return [*head, created, lead_id]


def list_leads(
    session: Session,
    *,
    org_id: str,
    stage: Stage | None = None,
    source: str | None = None,
    q: str | None = None,
    sort: LeadSort = "recent",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[LeadRow], str | None]:
    """A page of an org's leads and the cursor of the next page (keyset pagination)."""
    descending, keys, sort_key = _SORTS[sort]
    statement = (
        select(Lead, Contact.name)
        .join(Contact, col(Contact.id) == col(Lead.contact_id))
        .where(Lead.org_id == org_id)
    )
    if stage is not None:
        statement = statement.where(Lead.stage == stage)
    if source is not None:
        statement = statement.where(Lead.source == source)
    if q:
        pattern = f"%{q.lower()}%"
        statement = statement.where(
            or_(
                func.lower(Contact.name).like(pattern),
                func.lower(Lead.message).like(pattern),
                select(Identity.id)
                .where(
                    Identity.org_id == org_id,
                    Identity.contact_id == Lead.contact_id,
                    func.lower(Identity.value).like(pattern),
                )
                .exists(),
            )
        )
    if cursor:
        values = decode_cursor(cursor, sort=sort)
        bound = tuple_(
            *(literal(value, type_=key.type) for key, value in zip(keys, values, strict=True))
        )
        statement = statement.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    order = [key.desc() if descending else key.asc() for key in keys]
    rows = session.exec(statement.order_by(*order).limit(limit + 1)).all()
    page = [LeadRow(lead=lead, name=name) for lead, name in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(sort_key(page[-1].lead))
    return page, next_cursor


@dataclass(frozen=True, kw_only=True)
class LeadView:
    """Everything ``GET /v1/leads/{id}`` shows from the database."""

    lead: Lead
    contact: ContactPublic
    timeline: list[TimelineItem]


def lead_view(session: Session, *, org_id: str, lead_id: str) -> LeadView:
    """A lead with its contact, consent and timeline (newest first)."""
    lead = _lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    identities = _identities(session, org_id=org_id, contact_id=contact.id)
    events = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.org_id == org_id, TimelineEvent.lead_id == lead_id)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        .limit(500)
    )
    return LeadView(
        lead=lead,
        contact=ContactPublic(
            id=contact.id,
            name=contact.name,
            emails=[i.value for i in identities if i.kind == IdentityKind.EMAIL],
            phones=[i.value for i in identities if i.kind == IdentityKind.PHONE],
            identities=[{"kind": i.kind, "value": i.value} for i in identities],
            consent=current_consent(session, org_id=org_id, contact_id=contact.id),
        ),
        timeline=[
            TimelineItem(at=event.at, kind=event.kind, summary=event.summary, data=event.data)
            for event in events
        ],
    )


def list_messages(
    session: Session,
    *,
    org_id: str,
    lead_id: str | None = None,
    thread_id: str | None = None,
    direction: Direction | None = None,
    channel: Channel | None = None,
    status: MessageStatus | None = None,
    limit: int = 100,
) -> list[Message]:
    """An org's messages, newest first, filtered."""
    statement = select(Message).where(Message.org_id == org_id)
    for column, value in (
        (Message.lead_id, lead_id),
        (Message.thread_id, thread_id),
        (Message.direction, direction),
        (Message.channel, channel),
        (Message.status, status),
    ):
        if value is not None:
            statement = statement.where(column == value)
    statement = statement.order_by(col(Message.created_at).desc(), col(Message.id).desc())
    return list(session.exec(statement.limit(limit)))


def ping(session: Session) -> None:
    """Raise if the database can't answer."""
    session.exec(select(literal(1))).one()


# --- pipeline ------------------------------------------------------------------------------


def pipeline(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
) -> PipelineReport:
    """Stage counts, conversion rate, speed to lead (p50, p90) and value, overall and by
    source, for the org's leads created in ``[start, end)``."""
    query = sa_select(
        col(Lead.stage),
        col(Lead.source),
        col(Lead.value),
        col(Lead.created_at),
        col(Lead.first_contact_at),
    ).where(col(Lead.org_id) == org_id)
    if start is not None:
        query = query.where(col(Lead.created_at) >= start)
    if end is not None:
        query = query.where(col(Lead.created_at) < end)
    if source is not None:
        query = query.where(col(Lead.source) == source)
    rows = session.execute(query).all()
    stages = {stage.value: 0 for stage in Stage}
    waits: list[float] = []
    values: list[float] = []
    by_source: dict[str | None, SourceLine] = {}
    for stage, lead_source, value, created, first_contact in rows:
        stages[stage] = stages.get(stage, 0) + 1
        if first_contact is not None:
            waits.append(max(0.0, (first_contact - created).total_seconds()))
        if value is not None:
            values.append(value)
        line = by_source.setdefault(
            lead_source, SourceLine(source=lead_source, leads=0, converted=0, value=0.0)
        )
        line.leads += 1
        line.converted += stage == Stage.CONVERTED
        line.value += value or 0.0
    total = len(rows)
    return PipelineReport(
        stages=stages,
        conversion_rate=round(stages[Stage.CONVERTED] / total, 4) if total else 0.0,
        time_to_first_contact=Percentiles(
            p50_s=_percentile(waits, 0.5), p90_s=_percentile(waits, 0.9)
        ),
        lead_value=LeadValue(
            total=sum(values), average=sum(values) / len(values) if values else None
        ),
        by_source=sorted(by_source.values(), key=lambda line: (-line.leads, line.source or "")),
    )


def _percentile(samples: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``samples``, in seconds rounded to milliseconds."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return round(ordered[rank - 1], 3)


# --- contacts ------------------------------------------------------------------------------


class SameContact(ValueError):
    """A contact can't be merged into itself."""


def merge_contacts(session: Session, *, org_id: str, keep_id: str, other_id: str) -> list[str]:
    """Move the other contact's identities, consent, leads and messages onto ``keep_id`` and
    remove it; the workflow ids of the open leads now under ``keep_id``, to tell them."""
    if keep_id == other_id:
        raise SameContact("a contact can't be merged into itself")
    # Both contacts locked, lower id first: two merges of the same pair can't deadlock.
    for contact_id in sorted((keep_id, other_id)):
        lock(session, Contact, contact_id)
    keep = session.get(Contact, keep_id)
    other = session.get(Contact, other_id)
    for contact, wanted in ((keep, keep_id), (other, other_id)):
        if contact is None or contact.org_id != org_id:
            raise NotFound(wanted)
    assert keep is not None and other is not None
    keep_thread = thread_id(session, contact_id=keep.id)
    other_thread = thread_id(session, contact_id=other.id)
    for model in (Identity, ConsentRecord, Lead):
        for row in session.exec(select(model).where(model.contact_id == other.id)):
            row.contact_id = keep.id
            session.add(row)
    if other_thread is not None:
        for message in session.exec(select(Message).where(Message.thread_id == other_thread)):
            message.thread_id = keep_thread
            session.add(message)
    session.flush()
    if other_thread is not None:
        thread = session.get(Thread, other_thread)
        if thread is not None:
            _fold_thread(session, keep_id=keep_thread, other=thread)
            session.delete(thread)
    if not keep.name and other.name:
        keep.name = other.name
    keep.timezone = keep.timezone or other.timezone
    session.add(keep)
    session.flush()
    session.delete(other)
    attention.after_merge(
        session,
        org_id=org_id,
        keep_id=keep.id,
        other_id=other.id,
        keep_thread=keep_thread,
        other_thread=other_thread,
    )
    open_leads = list(
        session.exec(
            select(Lead).where(
                Lead.org_id == org_id,
                Lead.contact_id == keep.id,
                col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES]),
            )
        )
    )
    for lead in open_leads:
        timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.CONTACT_MERGED,
            summary=f"Contact {other_id} merged into {keep_id}",
            data={"kept": keep_id, "merged": other_id},
        )
    return [lead.workflow_id for lead in open_leads]


# --- calls ---------------------------------------------------------------------------------


def lead_calls(session: Session, *, org_id: str, lead_id: str) -> list[CallPublic]:
    """The lead's AI voice calls, oldest first (none of another org's)."""
    rows = calls.history(session, org_id=org_id, lead_id=lead_id)
    return [
        CallPublic(
            call_id=call.id,
            attempt=call.attempt,
            status=CallStatus(call.status),
            outcome=CallOutcome(call.outcome) if call.outcome else None,
            ended_reason=call.ended_reason,
            duration_s=call.duration_s,
            cost=call.cost,
            summary=call.summary,
            placed_at=call.placed_at,
            ended_at=call.ended_at,
        )
        for call in rows
    ]


def call_stats(
    session: Session, *, org_id: str, start: datetime | None, end: datetime | None
) -> CallStats:
    """Counts, outcomes, answer rates (overall and by the recipient's local hour), cost and
    duration of the org's calls created in ``[start, end)``.

    One grouped query: at most a row per (outcome, local hour) comes back, however many calls.
    A call has an outcome once its end-of-call report is in; only such calls have a cost and a
    duration, so the rates and averages are over them.
    """
    query = (
        sa_select(
            col(Call.outcome),
            col(Call.local_hour),
            func.count(),
            func.sum(col(Call.cost)),
            func.sum(col(Call.duration_s)),
            func.count(col(Call.duration_s)),
        )
        .where(col(Call.org_id) == org_id)
        .group_by(col(Call.outcome), col(Call.local_hour))
    )
    if start is not None:
        query = query.where(col(Call.created_at) >= start)
    if end is not None:
        query = query.where(col(Call.created_at) < end)
    by_outcome = {outcome.value: 0 for outcome in CallOutcome}
    hours: dict[int, CallHour] = {}
    calls = 0
    cost = duration = 0.0
    timed = 0
    for outcome, hour, count, cost_sum, duration_sum, duration_count in session.execute(query):
        calls += count
        cost += cost_sum or 0.0
        duration += duration_sum or 0.0
        timed += duration_count
        if outcome is None:
            continue  # not ended yet, or never placed
        by_outcome[outcome] = by_outcome.get(outcome, 0) + count
        if hour is not None:
            line = hours.setdefault(hour, CallHour(hour=hour, calls=0, answered=0, answer_rate=0.0))
            line.calls += count
            line.answered += count if outcome == CallOutcome.ANSWERED else 0
    ended = sum(by_outcome.values())
    answered = by_outcome[CallOutcome.ANSWERED]
    for line in hours.values():
        line.answer_rate = round(line.answered / line.calls, 4)
    return CallStats(
        calls=calls,
        ended=ended,
        by_outcome=by_outcome,
        answer_rate=round(answered / ended, 4) if ended else None,
        total_cost=round(cost, 4),
        cost_per_call=round(cost / ended, 4) if ended else None,
        cost_per_answered_call=round(cost / answered, 4) if answered else None,
        average_duration_s=round(duration / timed, 3) if timed else None,
        by_local_hour=sorted(hours.values(), key=lambda line: line.hour),
    )


# --- the inbox -----------------------------------------------------------------------------

#: Characters of a thread's last message shown in the inbox list.
PREVIEW_CHARS = 200
#: The most messages a thread view shows (its latest).
THREAD_MESSAGES_MAX = 500
#: ``sort=priority``: urgent first.
_PRIORITY_RANK = {"urgent": 3, "high": 2, "medium": 1, "low": 0}
#: ``sort=oldest_unread`` puts threads without an inbound message after those with one.
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)
#: What a cursor of each sort holds, key by key.
_THREAD_CURSOR_KINDS: dict[str, tuple[str, ...]] = {
    "recent": ("time", "id"),
    "oldest_unread": ("rank", "time", "id"),
    "priority": ("rank", "time", "id"),
    "value": ("number", "time", "id"),
}
#: Text that may be a phone number, to search phones however they were typed.
_PHONE_LIKE = re.compile(r"[\d\s()+.-]+")


def _thread_keys(sort: ThreadSort, lifetime: Any) -> tuple[bool, list[Any]]:
    """Whether ``sort`` is descending, and its key expressions, the id last (ties)."""
    # A thread with no message yet sorts by when it was opened (``tables.THREAD_ACTIVITY``,
    # which ``ix_threads_org_activity`` indexes: ``recent`` pages are read off that index).
    activity = type_coerce(
        func.coalesce(col(Thread.last_message_at), col(Thread.created_at)), UtcDateTime()
    )
    if sort == "oldest_unread":
        unread_first = case((col(Thread.status) == "unread", 0), else_=1)
        waiting_since = type_coerce(
            func.coalesce(col(Thread.last_inbound_at), literal(_NEVER, type_=UtcDateTime())),
            UtcDateTime(),
        )
        return False, [unread_first, waiting_since, col(Thread.id)]
    if sort == "priority":
        rank = case(_PRIORITY_RANK, value=col(Thread.priority), else_=0)
        return True, [rank, activity, col(Thread.id)]
    if sort == "value":
        return True, [func.coalesce(lifetime.c.value, 0.0), activity, col(Thread.id)]
    return True, [activity, col(Thread.id)]


def _lifetime_values(org_id: str, contact_ids: list[str] | None = None) -> Any:
    """Each contact's lifetime value: the sum of the ``value`` of their converted leads.

    Payments are left out: they are stored one row per Stripe event (a charge has several)
    in minor units of their own currency, and a converted lead's ``value`` already stands
    for the deal they paid for.
    """
    query: Any = (
        sa_select(col(Lead.contact_id).label("contact_id"), func.sum(Lead.value).label("value"))
        .where(col(Lead.org_id) == org_id, col(Lead.stage) == Stage.CONVERTED)
        .group_by(col(Lead.contact_id))
    )
    if contact_ids is not None:
        query = query.where(col(Lead.contact_id).in_(contact_ids))
    return query


def customer_value(session: Session, *, org_id: str, contact_id: str) -> float:
    """What the contact is worth: their lifetime value (converted leads), or their open
    lead's estimated value if that is more (the VIP rule's measure)."""
    lifetime = _lifetime_values(org_id, [contact_id]).subquery("lifetime")
    spent = session.execute(sa_select(lifetime.c.value)).scalar() or 0.0
    open_value = session.execute(
        sa_select(func.max(Lead.value)).where(
            col(Lead.org_id) == org_id,
            col(Lead.contact_id) == contact_id,
            col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES]),
        )
    ).scalar()
    return max(float(spent), float(open_value or 0.0))


def _decode_thread_cursor(cursor: str, *, sort: ThreadSort) -> list[Any]:
    """The sort key a thread cursor holds; ``InvalidCursor`` if it is not one of ours."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidCursor("cursor is not valid") from None
    kinds = _THREAD_CURSOR_KINDS[sort]
    if not isinstance(values, list) or len(values) != len(kinds):
        raise InvalidCursor("cursor is not valid for this sort")
    decoded: list[Any] = []
    for kind, value in zip(kinds, values, strict=True):
        if kind == "time":
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise InvalidCursor("cursor is not valid") from None
            ok = value.tzinfo is not None
        elif kind == "rank":
            ok = type(value) is int and value in range(4)
        elif kind == "number":
            try:
                ok = type(value) in (int, float) and math.isfinite(value := float(value))
            except OverflowError:
                ok = False
        else:
            ok = isinstance(value, str) and 0 < len(value) <= 64
        if not ok:
            raise InvalidCursor("cursor is not valid for this sort")
        decoded.append(value)
    return decoded


def _like(text: str) -> str:
    """An ``ILIKE ... ESCAPE '\\'`` pattern finding ``text`` anywhere, wildcards taken
    literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _searched_phone(q: str, region: str) -> str | None:
    """``q`` read as a phone number in ``region``, in E.164; ``None`` if it can't be one.

    Looser than ``normalize_phone``: a number only has to be possible, not in service, to be
    searched for (a fictional or newly allocated range is still what the person typed).
    """
    try:
        parsed = phonenumbers.parse(q, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _thread_search(org_id: str, q: str, region: str | None) -> ColumnElement[bool]:
    """Threads whose contact's name, email or phone, or any message, contains ``q``.

    Case-insensitive substring search (``ILIKE``), which the trigram indexes serve on
    PostgreSQL. Text that looks like a phone number finds the number however it was typed:
    by its digits (``7700 900123``), or whole as read in the org's region (``07700 900123``
    finds ``+447700900123``).
    """
    pattern = _like(q)
    digits = re.sub(r"\D", "", q)
    if _PHONE_LIKE.fullmatch(q) and len(digits) >= 3:
        phone = _searched_phone(q, region) if region else None
        # Digits have no case: LIKE, which scans several times faster than ILIKE.
        identity = or_(
            col(Identity.value).like(f"%{digits}%"),
            *([col(Identity.value) == phone] if phone else []),
        )
    else:
        identity = col(Identity.value).ilike(pattern, escape="\\")
    return or_(
        col(Thread.contact_id).in_(
            sa_select(col(Contact.id)).where(
                col(Contact.org_id) == org_id, col(Contact.name).ilike(pattern, escape="\\")
            )
        ),
        col(Thread.contact_id).in_(
            sa_select(col(Identity.contact_id)).where(col(Identity.org_id) == org_id, identity)
        ),
        col(Thread.id).in_(
            sa_select(col(Message.thread_id)).where(
                col(Message.org_id) == org_id, col(Message.body).ilike(pattern, escape="\\")
            )
        ),
    )


def list_threads(
    session: Session,
    *,
    org_id: str,
    channel: Channel | None = None,
    status: ThreadStatus | None = None,
    handled_by: HandledBy | None = None,
    priority: ThreadPriority | None = None,
    q: str | None = None,
    region: str | None = None,
    sort: ThreadSort = "recent",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[ThreadSummary], str | None]:
    """A page of the org's inbox and the cursor of the next page (keyset pagination).

    ``channel``: threads with a message on it. ``q``: see ``_thread_search`` (``region``
    reads a phone number typed without its country code).
    """
    lifetime = _lifetime_values(org_id).subquery("lifetime") if sort == "value" else None
    descending, keys = _thread_keys(sort, lifetime)
    # Contacts are not joined: names come for the page only, so a page costs the sort alone.
    statement = sa_select(Thread, *keys).where(col(Thread.org_id) == org_id)
    if lifetime is not None:
        statement = statement.outerjoin(lifetime, lifetime.c.contact_id == col(Thread.contact_id))
    for column, value in (
        (Thread.status, status),
        (Thread.handled_by, handled_by),
        (Thread.priority, priority),
    ):
        if value is not None:
            statement = statement.where(col(column) == value)
    if channel is not None:
        statement = statement.where(
            sa_select(col(Message.id))
            .where(col(Message.thread_id) == col(Thread.id), col(Message.channel) == channel)
            .exists()
        )
    if q and q.strip():
        statement = statement.where(_thread_search(org_id, q.strip(), region))
    if cursor:
        values = _decode_thread_cursor(cursor, sort=sort)
        bound = tuple_(
            *(literal(value, type_=key.type) for key, value in zip(keys, values, strict=True))
        )
        statement = statement.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    order = [key.desc() if descending else key.asc() for key in keys]
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    items = _thread_summaries(session, org_id=org_id, threads=[row[0] for row in rows[:limit]])
    next_cursor = encode_cursor(list(rows[limit - 1][1:])) if len(rows) > limit else None
    return items, next_cursor


def _thread_summaries(
    session: Session, *, org_id: str, threads: list[Thread]
) -> list[ThreadSummary]:
    """Inbox entries for ``threads``: a handful of queries for the whole page, each on an
    index, none per thread."""
    ids = [thread.id for thread in threads]
    if not ids:
        return []
    contact_ids = sorted({thread.contact_id for thread in threads})
    names: dict[str, str | None] = {
        contact_id: name
        for contact_id, name in session.execute(
            sa_select(col(Contact.id), col(Contact.name)).where(
                col(Contact.org_id) == org_id, col(Contact.id).in_(contact_ids)
            )
        )
    }
    channels: dict[str, set[str]] = {}
    for thread_of, channel_of in session.execute(
        sa_select(col(Message.thread_id), col(Message.channel))
        .where(col(Message.thread_id).in_(ids))
        .distinct()
    ):
        channels.setdefault(thread_of, set()).add(channel_of)
    latest = (
        sa_select(col(Message.id))
        .where(col(Message.thread_id) == col(Thread.id))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
        .correlate(Thread)
        .scalar_subquery()
    )
    last: dict[str, LastMessage] = {}
    for thread_of, channel_of, direction, created_at, preview in session.execute(
        sa_select(
            col(Message.thread_id),
            col(Message.channel),
            col(Message.direction),
            col(Message.created_at),
            func.substr(col(Message.body), 1, PREVIEW_CHARS + 1),
        ).where(
            col(Message.id).in_(
                sa_select(latest).select_from(Thread).where(col(Thread.id).in_(ids))
            )
        )
    ):
        if len(preview) > PREVIEW_CHARS:
            preview = preview[: PREVIEW_CHARS - 1] + "…"
        last[thread_of] = LastMessage(
            body=preview, channel=channel_of, direction=direction, created_at=created_at
        )
    open_escalations = sa_select(col(Escalation.thread_id), func.count()).where(
        col(Escalation.org_id) == org_id,
        col(Escalation.thread_id).in_(ids),
        col(Escalation.status).in_(attention.OPEN_STATUSES),
    )
    escalations: dict[str | None, int] = {
        thread_of: count
        for thread_of, count in session.execute(
            open_escalations.group_by(col(Escalation.thread_id))
        )
    }
    values: dict[str, float | None] = {
        contact_id: value
        for contact_id, value in session.execute(_lifetime_values(org_id, contact_ids))
    }
    return [
        ThreadSummary.model_validate(
            {
                "thread_id": thread.id,
                "contact_id": thread.contact_id,
                "name": names.get(thread.contact_id),
                "status": thread.status,
                "handled_by": thread.handled_by,
                "priority": thread.priority,
                "assigned_to": thread.assigned_to,
                "channels": [c for c in Channel if c.value in channels.get(thread.id, ())],
                "last_message": last.get(thread.id),
                "last_message_at": thread.last_message_at,
                "unread": thread.status == "unread",
                "value": values.get(thread.contact_id) or 0.0,
                "held_by": thread.held_by,
                "held_since": thread.held_since,
                "open_escalations": escalations.get(thread.id, 0),
            }
        )
        for thread in threads
    ]


def thread_view(
    session: Session, *, org_id: str, thread_id: str, limit: int = THREAD_MESSAGES_MAX
) -> ThreadDetail:
    """A thread with its contact, its latest ``limit`` messages (oldest first) and its
    unresolved escalations; ``NotFound`` if the org has no such thread."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise NotFound(thread_id)
    [summary] = _thread_summaries(session, org_id=org_id, threads=[thread])
    identities = _identities(session, org_id=org_id, contact_id=thread.contact_id)
    mine = (col(Message.org_id) == org_id, col(Message.thread_id) == thread_id)
    latest = session.exec(
        select(Message)
        .where(*mine)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(Message).where(*mine)).one()
    escalations = session.exec(
        select(Escalation)
        .where(
            Escalation.org_id == org_id,
            Escalation.thread_id == thread_id,
            col(Escalation.status).in_(attention.OPEN_STATUSES),
        )
        .order_by(col(Escalation.sla_due_at), col(Escalation.opened_at))
    )
    return ThreadDetail(
        **summary.model_dump(),
        contact=ThreadContact(
            id=thread.contact_id,
            name=summary.name,
            emails=[i.value for i in identities if i.kind == IdentityKind.EMAIL],
            phones=[i.value for i in identities if i.kind == IdentityKind.PHONE],
        ),
        messages=[
            ThreadMessage.model_validate(message, from_attributes=True)
            for message in reversed(latest)
        ],
        earlier_messages=total - len(latest),
        escalations=[
            ThreadEscalation(
                escalation_id=row.id,
                reason=row.reason,
                priority=row.priority,
                summary=row.summary,
                status=row.status,
                level=row.level,
                opened_at=row.opened_at,
                sla_due_at=row.sla_due_at,
            )
            for row in escalations
        ],
        releases_at=takeover.releases_at(
            thread, org_settings(get_org(session, org_id=org_id)).takeover_timeout
        ),
    )
