"""Failed work, for the owner: failed sends with their error class (retried once-only) and
workflows that failed, with a link to reset them in Temporal's Web UI (``/app/failed``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/app", include_in_schema=False)
