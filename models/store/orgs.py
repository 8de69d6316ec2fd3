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
    return settings_of(session, get_org(session, org_id=org_id))


def settings_of(session: Session, org: Org) -> OrgSettings:
    """``org``'s validated settings, validated once per transaction while the stored
    document stays the same object (a change assigns a new one): a lead's first touch read
    them six times, at 0.15 ms a validation. Read them, don't change them."""
    validated: dict[str, tuple[object, OrgSettings]] = session.info.setdefault(
        "keepwarm_org_settings", {}
    )
    found = validated.get(org.id)
    if found is not None and found[0] is org.settings:
        return found[1]
    settings = org_settings(org)
    validated[org.id] = (org.settings, settings)
    return settings
