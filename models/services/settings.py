"""Changing an org's settings from the Settings pages or the API, with its audit entry: the
change and the line in the audit list commit together or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.database import lock
from models.errors import NotFound
from models.rules.orgs import org_settings
from models.rules.settings_changes import describe_changes, summarize
from models.services.orgs import patch_org_settings
from models.store.audit import record_change
from models.tables import Org


def change_settings(
    session: Session,
    *,
    org_id: str,
    operator_id: str | None,
    actor: str,
    section: str,
    changes: dict[str, Any],
    at: datetime,
    replace: frozenset[str] = frozenset(),
) -> Org:
    """Apply ``changes`` as ``PATCH /v1/orgs/me`` does and record who changed what.

    Locks the org (the lock order's first row), merges ``changes`` into its settings and
    validates the result (pydantic's ``ValidationError``: nothing written), then adds one
    audit entry under ``section`` saying, in plain words, each setting's value before and
    after. A change that changes nothing records nothing.

    Args:
        session: The transaction the change and its entry share.
        org_id: Whose settings.
        operator_id: The operator who made it; ``None`` with the org's API key.
        actor: Their name as the list shows it (``"API key"`` for the key).
        section: Where it was made: ``general``, ``quiet_hours``, ``provider_mode``,
            ``scoring``...
        changes: A partial settings document; nested objects merge field by field.
        at: When.
        replace: Top-level settings replaced whole (the Scoring page's rules: a word the
            owner removed is gone, where a PATCH merges dictionaries).

    Returns:
        The org with its new settings.
    """
    org = lock(session, Org, org_id)
    if org is None:
        raise NotFound(org_id)
    before = org_settings(org)
    updated = patch_org_settings(session, org_id=org_id, changes=changes, replace=replace)
    lines = describe_changes(before, org_settings(updated))
    if lines:
        record_change(
            session,
            org_id=org_id,
            operator_id=operator_id,
            actor=actor,
            section=section,
            summary=summarize(lines),
            at=at,
        )
    return updated
