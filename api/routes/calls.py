"""Call analytics: how the org's AI voice calls went, for people and for tuning the agent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DatabaseDep, OrgDep
from api.errors import invalid
from models.reads import pipeline as pipeline_reads
from models.schemas import CallStats

router = APIRouter(prefix="/v1/calls", tags=["calls"])


@router.get("/stats")
async def call_stats(
    org: OrgDep,
    database: DatabaseDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> CallStats:
    """The org's calls created in ``[from, to)`` (ISO 8601 with a zone): counts, outcomes,
    answer rate overall and by the recipient's local hour, cost and duration."""
    for name, moment in (("from", start), ("to", end)):
        if moment is not None and moment.tzinfo is None:
            raise invalid(name, "needs a timezone, e.g. 2026-11-01T00:00:00Z")
    if start is not None and end is not None and end <= start:
        raise invalid("to", "must be after from")
    return await database.run(pipeline_reads.call_stats, org_id=org.id, start=start, end=end)
