"""The owner's sequences editor and scoring rules with a preview
(``/app/settings/sequences``, ``/app/settings/scoring``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/app", include_in_schema=False)
