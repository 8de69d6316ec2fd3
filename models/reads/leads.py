"""Lead lists and one lead's view (contact, identities, consent, timeline, calls), and the
message list, with keyset pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, literal, literal_column, or_, tuple_, union
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.reads.paging import CursorKind, decode_cursor, encode_cursor, like_pattern
from models.schemas import (
    CallPublic,
    ContactPublic,
    LeadSort,
    TimelineItem,
)
from models.store.calls import call_history
from models.store.consent import current_consent
from models.store.contacts import identities_of
from models.store.leads import get_lead
from models.tables import (
    VALUE_SORT_KEY,
    Contact,
    Identity,
    Lead,
    Message,
    TimelineEvent,
)
from models.values import (
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    IdentityKind,
    MessageStatus,
    Stage,
)


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
        # The index's own expression, qualified (``q`` joins another ``value``).
        [
            literal_column(VALUE_SORT_KEY.replace("value", "leads.value"), Float),
            col(Lead.created_at),
            col(Lead.id),
        ],
        lambda lead: [lead.value if lead.value is not None else -1.0, *_recency(lead)],
    ),
}


#: What a lead cursor holds, per sort.
_CURSOR_KINDS: dict[str, tuple[CursorKind, ...]] = {
    "recent": ("time", "id"),
    "oldest": ("time", "id"),
    "score": ("int", "time", "id"),
    "value": ("number", "time", "id"),
}


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
        # Case-insensitive substring search the trigram indexes serve on PostgreSQL: the
        # contacts whose name or an identity holds ``q`` (each found on its own index, not
        # probed per lead), or a lead whose message does.
        pattern = like_pattern(q)
        contacts = union(
            sa_select(col(Contact.id)).where(
                col(Contact.org_id) == org_id, col(Contact.name).ilike(pattern, escape="\\")
            ),
            sa_select(col(Identity.contact_id)).where(
                col(Identity.org_id) == org_id, col(Identity.value).ilike(pattern, escape="\\")
            ),
        )
        statement = statement.where(
            or_(
                col(Lead.contact_id).in_(contacts),
                col(Lead.message).ilike(pattern, escape="\\"),
            )
        )
    if cursor:
        values = decode_cursor(cursor, kinds=_CURSOR_KINDS[sort])
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
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    identities = identities_of(session, org_id=org_id, contact_id=contact.id)
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


def lead_calls(session: Session, *, org_id: str, lead_id: str) -> list[CallPublic]:
    """The lead's AI voice calls, oldest first (none of another org's)."""
    rows = call_history(session, org_id=org_id, lead_id=lead_id)
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
