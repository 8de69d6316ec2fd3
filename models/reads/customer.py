"""One person as the Customer page shows them: every identity and where it came from, every
lead, one timeline across the leads, the consent log and the contacts that may be the same
person (open identity conflicts), in a fixed handful of queries whatever the number of leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, or_
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.rules.contacts import _wanted_identities
from models.rules.escalations import OPEN_STATUSES
from models.store.contacts import identities_of
from models.store.threads import thread_of_contact
from models.tables import (
    ConsentRecord,
    Contact,
    Escalation,
    IntakeReceipt,
    Lead,
    TimelineEvent,
)
from models.values import EscalationReason

#: The newest timeline entries the page shows, across every lead of the person.
TIMELINE_LIMIT = 200


@dataclass(frozen=True, kw_only=True)
class IdentityRow:
    """An identifier of the person and its provenance."""

    kind: str
    value: str
    #: When keepwarm first linked it to a contact.
    first_seen: datetime
    #: The submission that brought it (its ``source``, its lead), or ``None`` when no
    #: submission did: it came in with an inbound message.
    via_submission: bool
    source: str | None
    lead_id: str | None
    #: Set when a provider said it can't be reached.
    invalid_at: datetime | None
    invalid_reason: str | None


@dataclass(frozen=True, kw_only=True)
class LeadRow:
    """One lead of the person."""

    id: str
    stage: str
    score: int
    source: str | None
    value: float | None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class TimelineRow:
    """One timeline entry, and the lead it belongs to."""

    at: datetime
    kind: str
    summary: str
    lead_id: str


@dataclass(frozen=True, kw_only=True)
class ConsentRow:
    """One consent change."""

    channel: str
    granted: bool
    source: str
    evidence: str
    recorded_at: datetime


@dataclass(frozen=True, kw_only=True)
class Duplicate:
    """Another contact an open identity conflict says may be this person."""

    contact_id: str
    name: str | None
    #: The identity kinds the conflict was about (``email``, ``phone``...).
    kinds: list[str]
    escalation_ids: list[str]
    since: datetime


@dataclass(frozen=True, kw_only=True)
class CustomerView:
    """Everything the Customer page shows."""

    contact: Contact
    thread_id: str | None
    identities: list[IdentityRow]
    #: Newest first.
    leads: list[LeadRow]
    #: Newest first, at most ``TIMELINE_LIMIT``.
    timeline: list[TimelineRow]
    #: Whether older entries were left out.
    timeline_truncated: bool
    #: Newest first.
    consent: list[ConsentRow]
    duplicates: list[Duplicate]


def customer_view(session: Session, *, org_id: str, contact_id: str) -> CustomerView:
    """The contact and everything about them; ``NotFound`` if it is not this org's."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound(contact_id)
    leads = list(
        session.exec(
            select(Lead)
            .where(Lead.org_id == org_id, Lead.contact_id == contact_id)
            .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
        )
    )
    lead_ids = [lead.id for lead in leads]
    events = (
        list(
            session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.org_id == org_id, col(TimelineEvent.lead_id).in_(lead_ids))
                .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
                .limit(TIMELINE_LIMIT + 1)
            )
        )
        if lead_ids
        else []
    )
    consent = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.org_id == org_id, ConsentRecord.contact_id == contact_id)
        .order_by(col(ConsentRecord.recorded_at).desc(), col(ConsentRecord.id).desc())
    )
    return CustomerView(
        contact=contact,
        thread_id=thread_of_contact(session, contact_id=contact_id),
        identities=_identities(session, org_id=org_id, contact_id=contact_id, lead_ids=lead_ids),
        leads=[
            LeadRow(
                id=lead.id,
                stage=lead.stage,
                score=lead.score,
                source=lead.source,
                value=lead.value,
                created_at=lead.created_at,
            )
            for lead in leads
        ],
        timeline=[
            TimelineRow(at=e.at, kind=e.kind, summary=e.summary, lead_id=e.lead_id)
            for e in events[:TIMELINE_LIMIT]
        ],
        timeline_truncated=len(events) > TIMELINE_LIMIT,
        consent=[
            ConsentRow(
                channel=row.channel,
                granted=row.granted,
                source=row.source,
                evidence=row.evidence,
                recorded_at=row.recorded_at,
            )
            for row in consent
        ],
        duplicates=_duplicates(session, org_id=org_id, contact_id=contact_id),
    )


def _identities(
    session: Session, *, org_id: str, contact_id: str, lead_ids: list[str]
) -> list[IdentityRow]:
    """The contact's identities, each with the first submission (of any of its leads, merged
    ones included) that named it no later than it was linked. Identities are only linked by
    submissions and inbound messages, so one no submission names came with a message."""
    receipts = (
        list(
            session.exec(
                select(IntakeReceipt)
                .where(IntakeReceipt.org_id == org_id, col(IntakeReceipt.lead_id).in_(lead_ids))
                .order_by(col(IntakeReceipt.received_at), col(IntakeReceipt.id))
            )
        )
        if lead_ids
        else []
    )
    named = [(receipt, set(_wanted_identities(receipt.payload))) for receipt in receipts]
    rows = []
    for identity in identities_of(session, org_id=org_id, contact_id=contact_id):
        origin = next(
            (
                receipt
                for receipt, pairs in named
                if (identity.kind, identity.value) in pairs
                and receipt.received_at <= identity.created_at
            ),
            None,
        )
        rows.append(
            IdentityRow(
                kind=identity.kind,
                value=identity.value,
                first_seen=identity.created_at,
                via_submission=origin is not None,
                source=origin.payload.get("source") if origin is not None else None,
                lead_id=origin.lead_id if origin is not None else None,
                invalid_at=identity.invalid_at,
                invalid_reason=identity.invalid_reason,
            )
        )
    return rows


def _duplicates(session: Session, *, org_id: str, contact_id: str) -> list[Duplicate]:
    """The other contacts named by open identity conflicts that name this one: as the lead's
    contact (``contact_id``) or as the holder of an identity (``data.held_by``)."""
    # ``held_by`` lives in JSON: a text match narrows the rows on both databases (``_`` in an
    # id is a LIKE wildcard, so it may match more), the exact test is below.
    escalations = session.exec(
        select(Escalation)
        .where(
            Escalation.org_id == org_id,
            Escalation.reason == EscalationReason.IDENTITY_CONFLICT,
            col(Escalation.status).in_(OPEN_STATUSES),
            or_(
                col(Escalation.contact_id) == contact_id,
                cast(col(Escalation.data), Text).like(f'%"{contact_id}"%'),
            ),
        )
        .order_by(col(Escalation.opened_at), col(Escalation.id))
    )
    found: dict[str, tuple[list[str], list[str], datetime]] = {}
    for escalation in escalations:
        held_by = (escalation.data or {}).get("held_by") or {}
        if escalation.contact_id == contact_id:
            pairs = [(kind, other) for kind, other in held_by.items()]
        else:
            pairs = [
                (kind, escalation.contact_id)
                for kind, holder in held_by.items()
                if holder == contact_id
            ]
        for kind, other in pairs:
            if not isinstance(other, str) or other == contact_id:
                continue
            kinds, ids, _ = found.setdefault(other, ([], [], escalation.opened_at))
            if kind not in kinds:
                kinds.append(kind)
            if escalation.id not in ids:
                ids.append(escalation.id)
    if not found:
        return []
    names = {
        row.id: row.name
        for row in session.exec(
            select(Contact).where(Contact.org_id == org_id, col(Contact.id).in_(list(found)))
        )
    }
    # A contact merged away since (or never this org's) is no candidate any more.
    return [
        Duplicate(
            contact_id=other,
            name=names[other],
            kinds=kinds,
            escalation_ids=ids,
            since=since,
        )
        for other, (kinds, ids, since) in found.items()
        if other in names
    ]
