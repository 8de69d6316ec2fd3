"""Orgs as use cases: create one with its API key (shown once), and change its settings."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session

from models.database import lock
from models.errors import NotFound
from models.rules.orgs import API_KEY_PREFIX, hash_api_key, org_settings
from models.schemas import (
    OrgSettings,
)
from models.tables import (
    Org,
)
from models.values import (
    new_id,
)


def create_org(session: Session, *, name: str, settings: OrgSettings) -> tuple[Org, str]:
    """Create an org and return it with its API key, which is not stored and not shown again."""
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    org = Org(
        id=new_id("org"),
        name=name,
        api_key_hash=hash_api_key(api_key),
        api_key_prefix=api_key[:10],
        id_secret=secrets.token_hex(32),
        settings=settings.model_dump(mode="json"),
    )
    session.add(org)
    session.flush()
    return org, api_key


def patch_org_settings(
    session: Session,
    *,
    org_id: str,
    changes: dict[str, Any],
    replace: frozenset[str] = frozenset(),
) -> Org:
    """Apply ``changes`` (nested objects and dictionaries merged field by field, as
    ``PATCH /v1/orgs/me`` documents; the top-level settings named in ``replace`` are replaced
    whole instead) and validate the result.

    The org row is locked while read, merged and written, so two concurrent changes to
    different fields both stick. Raises pydantic's ``ValidationError`` and writes nothing if
    the merged settings are invalid.
    """
    org = lock(session, Org, org_id)
    if org is None:
        raise NotFound(org_id)
    current = org_settings(org).model_dump()
    merged = _deep_merge(current, {k: v for k, v in changes.items() if k not in replace})
    merged.update({k: v for k, v in changes.items() if k in replace})
    org.settings = OrgSettings.model_validate(merged).model_dump(mode="json")
    session.add(org)
    session.flush()
    return org


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
