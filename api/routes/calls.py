"""Call analytics: how the org's AI voice calls went, for people and for tuning the agent."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DatabaseDep, OrgDep, WindowDep
from api.openapi import ORG_KEY, errors
from models.reads import pipeline as pipeline_reads
from models.schemas import CallStats

router = APIRouter(prefix="/v1/calls", tags=["calls"], responses=errors(*ORG_KEY))


@router.get("/stats", responses=errors(422))
async def call_stats(
    org: OrgDep,
    database: DatabaseDep,
    window: WindowDep,
) -> CallStats:
    """The org's calls created in ``[from, to)`` (ISO 8601 with a zone): counts, outcomes,
    answer rate overall and by the recipient's local hour, cost and duration."""
    return await database.read(
        pipeline_reads.call_stats, org_id=org.id, start=window.start, end=window.end
    )
