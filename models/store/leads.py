"""Lead rows: one of the org's, the contact's open lead, stage changes, and the lead's local
clock."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from models.database import lock
from models.errors import NotFound
from models.store import lead_groups
from models.store.contacts import recipient_of
from models.store.orgs import settings_for
from models.store.timeline import add_to_timeline
from models.tables import (
    Contact,
    Lead,
    utcnow,
)
from models.values import (
    CLOSED_STAGES,
    Stage,
    TimelineKind,
)


def set_stage(session: Session, *, org_id: str, lead_id: str, stage: Stage, reason: str) -> None:
    """Move a lead to ``stage`` and say why on its timeline (no-op if it is already there).

    The lead is locked first, so its group (``store.lead_groups``) is read as it is: a first
    touch recorded at the same moment waits, then moves it from the stage set here."""
    lead = lock(session, Lead, lead_id)
    if lead is None or lead.org_id != org_id:
        raise NotFound(lead_id)
    if lead.stage == stage:
        return
    previous = lead.stage
    before = lead_groups.group_of(lead)
    lead.stage = stage
    lead.updated_at = utcnow()
    session.add(lead)
    lead_groups.moved(session, before=before, after=lead_groups.group_of(lead))
    add_to_timeline(
        session,
        org_id=org_id,
        lead_id=lead_id,
        kind=TimelineKind.STAGE_CHANGED,
        summary=f"{previous} → {stage}: {reason}",
        data={"from": previous, "to": stage.value, "reason": reason},
    )


def get_lead(session: Session, *, org_id: str, lead_id: str) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None or lead.org_id != org_id:
        raise NotFound(lead_id)
    return lead


def is_open(stage: str) -> bool:
    """Whether a lead at ``stage`` is still worked (not converted, lost or opted out)."""
    return Stage(stage) not in CLOSED_STAGES


def _still_open() -> Any:
    return col(Lead.stage).not_in([stage.value for stage in CLOSED_STAGES])


def open_leads(
    session: Session, *, org_id: str, contact_ids: list[str], limit: int | None = None
) -> list[Lead]:
    """The contacts' leads still worked (not converted, lost or opted out), newest first:
    the one rule for "open" everywhere (intake, inbound messages, takeovers, merges)."""
    statement = (
        select(Lead)
        .where(Lead.org_id == org_id, col(Lead.contact_id).in_(contact_ids), _still_open())
        .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
    )
    return list(session.exec(statement.limit(limit) if limit is not None else statement))


def open_lead(session: Session, *, org_id: str, contact_id: str) -> Lead | None:
    """The contact's newest lead that is still open (``open_leads``' first)."""
    found = open_leads(session, org_id=org_id, contact_ids=[contact_id], limit=1)
    return found[0] if found else None


def newest_lead(session: Session, *, org_id: str, contact_id: str) -> Lead | None:
    """The contact's newest lead, open or not: where a change to the contact (consent, an
    escalation) is written on a timeline."""
    return session.exec(
        select(Lead)
        .where(Lead.org_id == org_id, Lead.contact_id == contact_id)
        .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
        .limit(1)
    ).first()


def lead_timezone(session: Session, *, org_id: str, lead_id: str) -> str:
    """The zone a lead's times are reckoned in (the compliance gate's, see ``recipient_of``)."""
    settings = settings_for(session, org_id=org_id)
    lead = session.exec(select(Lead).where(Lead.org_id == org_id, Lead.id == lead_id)).first()
    contact = session.get(Contact, lead.contact_id) if lead is not None else None
    if lead is None or contact is None:
        return settings.timezone
    return recipient_of(session, lead=lead, contact=contact, settings=settings).timezone
