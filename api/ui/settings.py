"""The owner's Settings pages (``/app/settings``): org settings, quiet hours, the provider
mode switch and the audit list of changes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/app", include_in_schema=False)
