"""An org's API keys (only their hashes are stored) and its settings as stored, validated with
defaults filled. Pure."""

from __future__ import annotations

import hashlib

from models.schemas import (
    OrgSettings,
)
from models.tables import (
    Org,
)

API_KEY_PREFIX = "kw_"


def hash_api_key(api_key: str) -> str:
    """The stored form of an API key: its SHA-256 (keys are 256-bit random, so no salt)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def org_settings(org: Org) -> OrgSettings:
    """An org's validated settings."""
    return OrgSettings.model_validate(org.settings)
