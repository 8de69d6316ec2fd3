"""Contacts and their identities: resolution by email, then phone, then platform id; a
contact's address per channel, its dialable phone, its recipient zone and lifetime value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.rules.compliance import Recipient, recipient
from models.rules.contacts import _wanted_identities
from models.schemas import (
    OrgSettings,
)
from models.tables import (
    Contact,
    Identity,
    Lead,
    Thread,
)
from models.values import (
    CLOSED_STAGES,
    Channel,
    IdentityKind,
    Stage,
    new_id,
)


def resolve_contact(session: Session, *, org_id: str, payload: dict[str, Any]) -> Contact:
    """Exact match on email, then phone, then platform ids; a new contact otherwise
    (``find_or_make_contact``, without saying which)."""
    return find_or_make_contact(session, org_id=org_id, payload=payload)[0]


def find_or_make_contact(
    session: Session, *, org_id: str, payload: dict[str, Any]
) -> tuple[Contact, bool]:
    """Exact match on email, then phone, then platform ids; a new contact otherwise, and
    whether it is new (made in this transaction: it holds every identity of the payload,
    and has no thread history yet).

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


def _resolve_contact(
    session: Session, *, org_id: str, payload: dict[str, Any]
) -> tuple[Contact, bool]:
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
    return contact, owner_id is None


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


def identities_of(session: Session, *, org_id: str, contact_id: str) -> list[Identity]:
    return list(
        session.exec(
            select(Identity)
            .where(Identity.org_id == org_id, Identity.contact_id == contact_id)
            .order_by(col(Identity.created_at), col(Identity.id))
        )
    )


def address_for(session: Session, *, org_id: str, contact_id: str, channel: Channel) -> str | None:
    """Where a message on ``channel`` goes: the contact's newest email, or their dialable
    phone (``dialable_phone``) for SMS, WhatsApp and calls."""
    if channel != Channel.EMAIL:
        return dialable_phone(session, org_id=org_id, contact_id=contact_id)
    return _newest_valid(session, org_id=org_id, contact_id=contact_id, kind=IdentityKind.EMAIL)


def lifetime_values(org_id: str, contact_ids: list[str] | None = None) -> Any:
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
    lifetime = lifetime_values(org_id, [contact_id]).subquery("lifetime")
    spent = session.execute(sa_select(lifetime.c.value)).scalar() or 0.0
    open_value = session.execute(
        sa_select(func.max(Lead.value)).where(
            col(Lead.org_id) == org_id,
            col(Lead.contact_id) == contact_id,
            col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES]),
        )
    ).scalar()
    return max(float(spent), float(open_value or 0.0))


def recipient_of(
    session: Session, *, lead: Lead | None, contact: Contact, settings: OrgSettings
) -> Recipient:
    """The lead's recipient (a contact's, without a lead): the one place keepwarm decides
    whose clock a lead runs on."""
    phone = dialable_phone(session, org_id=contact.org_id, contact_id=contact.id)
    explicit = (lead.timezone if lead is not None else None) or contact.timezone
    return recipient(phone=phone, explicit=explicit, org_timezone=settings.timezone)


def dialable_phone(session: Session, *, org_id: str, contact_id: str) -> str | None:
    """The contact's newest phone number no provider has called invalid: the one number
    keepwarm texts, calls and takes a recipient's local time from."""
    return _newest_valid(session, org_id=org_id, contact_id=contact_id, kind=IdentityKind.PHONE)


def _newest_valid(
    session: Session, *, org_id: str, contact_id: str, kind: IdentityKind
) -> str | None:
    """The contact's newest identity of ``kind`` that no provider has called invalid."""
    return session.exec(
        select(Identity.value)
        .where(
            Identity.org_id == org_id,
            Identity.contact_id == contact_id,
            Identity.kind == kind,
            col(Identity.invalid_at).is_(None),
        )
        .order_by(col(Identity.created_at).desc(), col(Identity.id).desc())
    ).first()


def mark_invalid(session: Session, *, org_id: str, number: str, reason: str, at: datetime) -> None:
    """A provider said ``number`` can't be reached: nothing is dialled or texted to it again."""
    identity = session.exec(
        select(Identity).where(
            Identity.org_id == org_id, Identity.kind == IdentityKind.PHONE, Identity.value == number
        )
    ).first()
    if identity is not None and identity.invalid_at is None:
        identity.invalid_at = at
        identity.invalid_reason = reason[:200]
        session.add(identity)
