"""A lead's timeline: every step keepwarm takes, with when and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.tables import (
    TimelineEvent,
)
from models.values import (
    TimelineKind,
    new_id,
)


def add_to_timeline(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    kind: TimelineKind,
    summary: str,
    data: dict[str, Any],
    booking_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """Add an entry to the lead's timeline (and the booking's, given ``booking_id``)."""
    session.add(
        TimelineEvent(
            id=new_id("ev"),
            org_id=org_id,
            lead_id=lead_id,
            kind=kind,
            summary=summary,
            data=data,
            booking_id=booking_id,
            **({"at": at} if at is not None else {}),
        )
    )
    session.flush()


def add_to_timeline_once(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    kind: TimelineKind,
    summary: str,
    data: dict[str, Any],
    key: dict[str, Any],
) -> bool:
    """Add an entry unless the lead has one of ``kind`` whose data holds ``key`` (what a
    retried or repeated step says again); whether it was added."""
    noted = session.exec(
        select(TimelineEvent.data).where(
            TimelineEvent.lead_id == lead_id, TimelineEvent.kind == kind
        )
    ).all()
    if any(all(entry.get(k) == v for k, v in key.items()) for entry in noted):
        return False
    add_to_timeline(
        session, org_id=org_id, lead_id=lead_id, kind=kind, summary=summary, data=data | key
    )
    return True
