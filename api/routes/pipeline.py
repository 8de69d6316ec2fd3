"""The pipeline report: stage counts, funnel, conversion, speed to lead, value and revenue by
source, as JSON or, with ``Accept: text/csv``, one of its tables as CSV."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.csv import csv_openapi, csv_response, filename, wants_csv
from api.deps import Database, DatabaseDep, OrgDep, QueryText, WindowDep
from api.openapi import ORG_KEY, errors
from models.reads import pipeline as pipeline_reads
from models.reads import revenue as revenue_reads
from models.reads.revenue import previous_window
from models.schemas import PipelineReport
from models.values import Stage

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"], responses=errors(*ORG_KEY))

#: The report's tables a CSV answer can hold, and their columns.
TABLES: dict[str, tuple[str, ...]] = {
    "by_source": (
        "source",
        "leads",
        "converted",
        "conversion_rate",
        "value",
        "time_to_first_contact_p50_s",
        "time_to_first_contact_p90_s",
        "revenue",
        "customers",
        "ltv",
    ),
    "stages": ("stage", "leads"),
    "funnel": ("stage", "leads", "conversion_from_previous", "conversion_from_start"),
    "by_channel": ("channel", "leads", "p50_s", "p90_s"),
    "summary": ("figure", "value"),
}
Table = Literal["by_source", "stages", "funnel", "by_channel", "summary"]
Compare = Annotated[
    Literal["previous"] | None,
    Query(description="`previous`: the same figures for the window of equal length before."),
]
TableParam = Annotated[
    Table,
    Query(description="With `Accept: text/csv`: the table to download (JSON: ignored)."),
]


async def _report(
    database: Database,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    compare: bool,
) -> PipelineReport:
    """The report's parts read concurrently, each in its own read-only transaction: the
    leads' figures and the revenue of each window (on two cores the answer takes the longest
    part, not their sum). The parts may see moments a few milliseconds apart."""
    before = previous_window(start, end) if compare else None
    windows = [(start, end)] + ([before] if before is not None else [])
    leads, money = await asyncio.gather(
        asyncio.gather(
            *(
                database.read(
                    pipeline_reads.lead_figures, org_id=org_id, start=s, end=e, source=source
                )
                for s, e in windows
            )
        ),
        asyncio.gather(
            *(
                database.read(
                    revenue_reads.source_revenue, org_id=org_id, start=s, end=e, source=source
                )
                for s, e in windows
            )
        ),
    )
    figures = [
        pipeline_reads.with_revenue(lead_part, money_part)
        for lead_part, money_part in zip(leads, money, strict=True)
    ]
    return pipeline_reads.assemble(figures[0], figures[1] if before is not None else None, before)


def rows(report: PipelineReport, table: str) -> list[dict[str, Any]]:
    """The rows of one of the report's tables, as the JSON answer holds them."""
    if table == "stages":
        return [{"stage": stage.value, "leads": report.stages[stage.value]} for stage in Stage]
    if table == "summary":
        return [
            {"figure": figure, "value": value}
            for figure, value in (
                ("leads", sum(report.stages.values())),
                ("conversion_rate", report.conversion_rate),
                ("time_to_first_contact_p50_s", report.time_to_first_contact.p50_s),
                ("time_to_first_contact_p90_s", report.time_to_first_contact.p90_s),
                ("lead_value_total", report.lead_value.total),
                ("lead_value_average", report.lead_value.average),
                ("currency", report.currency),
                ("revenue", sum(line.revenue for line in report.by_source)),
            )
        ]
    items: dict[str, list[Any]] = {
        "by_source": report.by_source,
        "funnel": report.funnel,
        "by_channel": report.by_channel,
    }
    return [item.model_dump() for item in items[table]]


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
    report = await _report(
        database,
        org_id=org.id,
        start=window.start,
        end=window.end,
        source=source,
        compare=compare == "previous",
    )
    if wants_csv(request):
        name = filename("pipeline", table, window.start, window.end)
        return csv_response(TABLES[table], rows(report, table), name=name)
    return report
