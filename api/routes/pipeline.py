"""The pipeline report: stage counts, conversion, speed to lead and value by source."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DatabaseDep, OrgDep, QueryText, WindowDep
from api.openapi import ORG_KEY, errors
from models.reads import pipeline as pipeline_reads
from models.schemas import PipelineReport

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"], responses=errors(*ORG_KEY))


@router.get("", responses=errors(422))
async def pipeline_report(
    org: OrgDep,
    database: DatabaseDep,
    window: WindowDep,
    source: QueryText = None,
) -> PipelineReport:
    """The org's leads created in ``[from, to)`` (ISO 8601 with a zone), optionally of one
    source: counts per stage, conversion rate, time to first contact (p50, p90), value."""
    return await database.read(
        pipeline_reads.pipeline_report,
        org_id=org.id,
        start=window.start,
        end=window.end,
        source=source,
    )
