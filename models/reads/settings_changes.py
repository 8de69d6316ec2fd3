"""The Settings pages' audit list: who changed which setting, when, newest first."""

from __future__ import annotations

from sqlmodel import Session

from models.store.audit import RECENT, recent_changes
from models.tables import SettingsChange


def settings_changes(session: Session, *, org_id: str, limit: int = RECENT) -> list[SettingsChange]:
    """The org's latest ``limit`` settings changes, newest first."""
    return recent_changes(session, org_id=org_id, limit=limit)
