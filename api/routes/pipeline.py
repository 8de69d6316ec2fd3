"""The pipeline report: stage counts, conversion, speed to lead and value by source."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DatabaseDep, OrgDep, QueryText
from api.errors import invalid
from models.reads import pipeline as pipeline_reads
from models.schemas import PipelineReport

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"])


@router.get("")
async def pipeline_report(
    org: OrgDep,
    database: DatabaseDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    source: QueryText = None,
) -> PipelineReport:
    """The org's leads created in ``[from, to)`` (ISO 8601 with a zone), optionally of one
    source: counts per stage, conversion rate, time to first contact (p50, p90), value."""
    for name, moment in (("from", start), ("to", end)):
        if moment is not None and moment.tzinfo is None:
            raise invalid(name, "needs a timezone, e.g. 2026-11-01T00:00:00Z")
    if start is not None and end is not None and end <= start:
        raise invalid("to", "must be after from")
    return await database.run(
        pipeline_reads.pipeline_report, org_id=org.id, start=start, end=end, source=source
    )
