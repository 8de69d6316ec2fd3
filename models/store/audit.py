"""The settings audit list: who changed which org setting, and when."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models.tables import SettingsChange
from models.values import new_id

#: How much of the list a page shows.
RECENT = 50


def record_change(
    session: Session,
    *,
    org_id: str,
    operator_id: str | None,
    actor: str,
    section: str,
    summary: str,
    at: datetime,
) -> SettingsChange:
    """Add one entry, in the caller's transaction (with the change it describes)."""
    row = SettingsChange(
        id=new_id("chg"),
        org_id=org_id,
        operator_id=operator_id,
        actor=actor[:200],
        section=section,
        summary=summary[:500],
        changed_at=at,
    )
    session.add(row)
    session.flush()
    return row


def recent_changes(session: Session, *, org_id: str, limit: int = RECENT) -> list[SettingsChange]:
    """The org's latest entries, newest first."""
    return list(
        session.exec(
            select(SettingsChange)
            .where(SettingsChange.org_id == org_id)
            .order_by(col(SettingsChange.changed_at).desc(), col(SettingsChange.id).desc())
            .limit(limit)
        )
    )
