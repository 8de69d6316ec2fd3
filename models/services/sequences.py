"""Nudge sequences as use cases: replace a sequence, and read a lead's next step as it stands."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.database import ROW_LOCK
from models.payloads import NextStep
from models.rules.sequences import DEFAULTS, local_due
from models.schemas import SequenceIn, SequencePublic
from models.store.leads import lead_timezone
from models.tables import Sequence, utcnow
from models.values import new_id


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
