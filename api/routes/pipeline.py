"""The pipeline report: stage counts, funnel, conversion, speed to lead, value and revenue by
source, as JSON or, with ``Accept: text/csv``, one of its tables as CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from api.csv import csv_openapi, csv_response, filename, wants_csv
from api.deps import DatabaseDep, OrgDep, QueryText, WindowDep
from api.openapi import ORG_KEY, errors
from api.reports import PIPELINE_TABLES, Compare, pipeline_rows, read_pipeline
from models.schemas import PipelineReport

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"], responses=errors(*ORG_KEY))

Table = Literal["by_source", "stages", "funnel", "by_channel", "summary"]
TableParam = Annotated[
    Table,
    Query(description="With `Accept: text/csv`: the table to download (JSON: ignored)."),
]


@router.get(
    "",
    response_model=PipelineReport,
    responses=errors(422) | csv_openapi("The report (JSON), or one of its tables (CSV)."),
)
async def pipeline_report(
    request: Request,
    org: OrgDep,
    database: DatabaseDep,
    window: WindowDep,
    source: QueryText = None,
    compare: Compare = None,
    table: TableParam = "by_source",
) -> PipelineReport | Response:
    """The org's leads created in ``[from, to)`` (ISO 8601 with a zone), optionally of one
    source: counts per stage, the funnel, conversion rate, time to first contact (p50, p90,
    nearest rank) overall, by source and by channel, value, and revenue by the source of each
    customer's first lead; with ``compare=previous``, the same for the window before.

    ``Accept: text/csv`` answers one table (``table``) of the same report as CSV.
    """
    report = await read_pipeline(
        database,
        org_id=org.id,
        start=window.start,
        end=window.end,
        source=source,
        compare=compare == "previous",
    )
    if wants_csv(request):
        name = filename("pipeline", table, window.start, window.end)
        return csv_response(PIPELINE_TABLES[table], pipeline_rows(report, table), name=name)
    return report
