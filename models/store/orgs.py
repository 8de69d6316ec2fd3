"""Org rows."""

from __future__ import annotations

from sqlmodel import Session

from models.errors import NotFound
from models.rules.orgs import org_settings
from models.schemas import OrgSettings
from models.tables import (
    Org,
)


def get_org(session: Session, *, org_id: str) -> Org:
    """An org by id."""
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound(org_id)
    return org


def settings_for(session: Session, *, org_id: str) -> OrgSettings:
    """The org's settings, validated with defaults filled: the one way they are read by id
    (``NotFound`` for an org that doesn't exist, never silent defaults)."""
    return org_settings(get_org(session, org_id=org_id))
