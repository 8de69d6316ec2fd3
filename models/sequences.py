"""Nudge sequences: each org's, by name, with built-in defaults until the org replaces them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import compliance
from models.database import ROW_LOCK
from models.schemas import OrgSettings, SequenceIn, SequencePublic, SequenceStep
from models.tables import Contact, Lead, Org, Sequence, utcnow
from models.values import Channel, Intent, new_id

#: The sequence every cart lead (started or abandoned) runs, whatever its intent.
CART_RECOVERY = "cart_recovery"
#: The lead source of cart events.
CART_SOURCE = "cart"
#: What a new org starts with: quick texts for hot leads, spaced emails for the rest.
DEFAULTS: dict[str, SequenceIn] = {
    "hot": SequenceIn(
        applies_to=[Intent.HIGH_VALUE, Intent.ENGAGED],
        steps=[
            SequenceStep(
                after=timedelta(minutes=15),
                channel=Channel.SMS,
                template="Hi {first_name}, it's {org_name} again: shall we book you in? "
                "Reply with a day that suits you.",
            ),
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, following up on your enquiry with {org_name}. "
                "Reply to this email and we'll get you booked.",
            ),
            SequenceStep(
                after=timedelta(days=2),
                channel=Channel.SMS,
                template="Hi {first_name}, last check from {org_name}: still keen? Reply YES.",
            ),
        ],
        max_attempts=3,
    ),
    CART_RECOVERY: SequenceIn(
        applies_to=list(Intent),
        steps=[
            SequenceStep(
                after=timedelta(hours=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, you left something in your basket at {org_name}. "
                "It's saved for you: reply if you have any questions.",
            ),
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.SMS,
                template="Hi {first_name}, your {org_name} basket is still waiting for you.",
            ),
            SequenceStep(
                after=timedelta(days=2),
                channel=Channel.EMAIL,
                template="Hi {first_name}, last reminder from {org_name} about your basket.",
            ),
        ],
        max_attempts=3,
    ),
    "nurture": SequenceIn(
        applies_to=[Intent.WINDOW_SHOPPER, Intent.BROWSING],
        steps=[
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, thanks for looking at {org_name}. "
                "Any questions? Just reply.",
            ),
            SequenceStep(
                after=timedelta(days=4),
                channel=Channel.EMAIL,
                template="Hi {first_name}, a reminder that {org_name} is here when you're ready.",
            ),
        ],
        max_attempts=2,
    ),
}


def list_sequences(session: Session, *, org_id: str) -> list[SequencePublic]:
    """The org's sequences, and the defaults it has not replaced, by name."""
    stored = {row.name: row for row in _rows(session, org_id=org_id)}
    items = [
        SequencePublic(name=row.name, default=False, **row.definition) for row in stored.values()
    ]
    items += [
        SequencePublic(name=name, default=True, **definition.model_dump())
        for name, definition in DEFAULTS.items()
        if name not in stored
    ]
    return sorted(items, key=lambda item: item.name)


def put_sequence(session: Session, *, org_id: str, name: str, body: SequenceIn) -> SequencePublic:
    """Create or replace the named sequence; running leads see it from their next step."""
    row = session.exec(
        select(Sequence)
        .where(Sequence.org_id == org_id, Sequence.name == name)
        .with_for_update(**ROW_LOCK)
    ).first()
    definition = body.model_dump(mode="json")
    if row is None:
        row = Sequence(id=new_id("seq"), org_id=org_id, name=name, definition=definition)
    else:
        row.definition = definition
        row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return SequencePublic(name=name, default=False, **definition)


def sequence_for(
    session: Session, *, org_id: str, intent: Intent | None, source: str | None = None
) -> str | None:
    """The sequence for a lead: ``cart_recovery`` for carts; else, for its intent, the org's
    most recently updated sequence that applies, else a default that applies and was not
    replaced."""
    if source == CART_SOURCE:
        return CART_RECOVERY
    if intent is None:
        return None
    rows = [row for row in _rows(session, org_id=org_id) if row.name != CART_RECOVERY]
    for row in sorted(rows, key=lambda r: r.updated_at, reverse=True):
        if intent.value in row.definition.get("applies_to", []):
            return row.name
    replaced = {row.name for row in rows}
    for name, definition in DEFAULTS.items():
        if name == CART_RECOVERY:
            continue
        if name not in replaced and intent in definition.applies_to:
            return name
    return None


@dataclass(frozen=True, kw_only=True)
class NextStep:
    """The step a running sequence takes next (``index`` counts from 0)."""

    index: int
    total: int
    after_s: int
    channel: Channel
    template: str
    #: When the step is due (given an anchor): ``after`` from the anchor, whole days counted
    #: on the contact's local calendar, so "P1D" after 10:00 is 10:00 again across DST.
    due_at: datetime | None = None
    #: The timezone ``due_at`` was reckoned in (the lead's, else its contact's, else the org's).
    timezone: str | None = None
    #: ``due_at`` in words, in that timezone (``Mon 23 Nov 10:00 Europe/London``).
    due_local: str | None = None
    #: Which of ``reply``, ``booking`` and ``payment`` stop the sequence (``None``: all).
    stop_on: tuple[str, ...] | None = None
    #: The compliance gate's pre-check (when asked with the workflow's time): held back
    #: until when, and why.
    hold_until: datetime | None = None
    hold_reason: str | None = None


def next_step(
    session: Session,
    *,
    org_id: str,
    name: str,
    index: int,
    lead_id: str | None = None,
    anchor: datetime | None = None,
) -> NextStep | None:
    """Step ``index`` of the sequence as it stands now; ``None`` past its steps or its cap.

    With ``lead_id`` and ``anchor`` (when the previous step was due), the step's ``due_at`` is
    worked out in the lead's local time.
    """
    row = session.exec(
        select(Sequence).where(Sequence.org_id == org_id, Sequence.name == name)
    ).first()
    definition = SequenceIn.model_validate(row.definition) if row else DEFAULTS.get(name)
    if definition is None:
        return None
    total = min(len(definition.steps), definition.max_attempts)
    if index >= total:
        return None
    step = definition.steps[index]
    due_at = zone = due_local = None
    if lead_id is not None and anchor is not None:
        zone = lead_timezone(session, org_id=org_id, lead_id=lead_id)
        due_at = local_due(anchor, step.after, ZoneInfo(zone))
        due_local = f"{due_at.astimezone(ZoneInfo(zone)):%a %d %b %H:%M} {zone}"
    return NextStep(
        index=index,
        total=total,
        after_s=int(step.after.total_seconds()),
        channel=step.channel,
        template=step.template,
        due_at=due_at,
        timezone=zone,
        due_local=due_local,
        stop_on=tuple(definition.stop_on),
    )


def local_due(anchor: datetime, after: timedelta, zone: ZoneInfo) -> datetime:
    """``anchor`` plus ``after``: whole days on the local calendar, the rest in elapsed time.

    A wall-clock time the DST change skips (02:30 on the spring-forward night) comes out an
    hour later on the clock; an ambiguous one takes its first occurrence.
    """
    wall = anchor.astimezone(zone).replace(tzinfo=None) + timedelta(days=after.days)
    rest = after - timedelta(days=after.days)
    return wall.replace(tzinfo=zone).astimezone(UTC) + rest


def lead_timezone(session: Session, *, org_id: str, lead_id: str) -> str:
    """The zone a lead's times are reckoned in (the compliance gate's, see ``recipient_of``)."""
    org = session.get(Org, org_id)
    settings = OrgSettings.model_validate(org.settings if org else {})
    lead = session.exec(select(Lead).where(Lead.org_id == org_id, Lead.id == lead_id)).first()
    contact = session.get(Contact, lead.contact_id) if lead is not None else None
    if lead is None or contact is None:
        return settings.timezone
    return compliance.recipient_of(session, lead=lead, contact=contact, settings=settings).timezone


def _rows(session: Session, *, org_id: str) -> list[Sequence]:
    return list(
        session.exec(select(Sequence).where(Sequence.org_id == org_id).order_by(col(Sequence.name)))
    )
