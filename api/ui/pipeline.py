"""The Pipeline page (``/app/pipeline``): stage counts and funnel, speed to lead, value and
revenue by source, over a date range compared with the previous one."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/app", include_in_schema=False)
