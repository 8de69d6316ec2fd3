"""An org's API keys (only their hashes are stored) and its settings as stored, validated with
defaults filled. Pure."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

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


@cache
def _zone_countries() -> dict[str, str]:
    """IANA zone → its ISO 3166 country, from the tz database's ``zone.tab`` (static data
    shipped in the ``tzdata`` package; zones shared by several countries are not listed)."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    countries: dict[str, str] = {}
    for line in table.splitlines():
        if line and not line.startswith("#"):
            country, _, zone = line.split("\t")[:3]
            countries[zone] = country
    return countries


def region_for_timezone(timezone: str) -> str | None:
    """The phone region a timezone implies (``Europe/London`` → ``GB``, ``America/Toronto``
    → ``CA``); ``None`` for a zone of no one country (``UTC``, ``Etc/GMT+5``)."""
    return _zone_countries().get(timezone)
