"""The analytics reports as the JSON API and the Pipeline page read and tabulate them: the
pipeline report read concurrently, and the tables each report can be downloaded as (CSV).

One definition for both: ``GET /v1/pipeline`` / ``GET /v1/revenue`` with ``Accept: text/csv``
and the page's "Download CSV" links answer the same rows from the same reads.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query

from api.deps import Database
from models.reads import pipeline as pipeline_reads
from models.reads import revenue as revenue_reads
from models.reads.revenue import previous_window
from models.schemas import PipelineFigures, PipelineReport, RevenueFigures, RevenueReport
from models.values import Stage

#: ``compare=previous`` on a report: the same figures for the window of equal length before.
Compare = Annotated[
    Literal["previous"] | None,
    Query(description="`previous`: the same figures for the window of equal length before."),
]

#: The pipeline report's tables a CSV answer can hold, and their columns.
PIPELINE_TABLES: dict[str, tuple[str, ...]] = {
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
#: The revenue report's tables a CSV answer can hold, and their columns.
REVENUE_TABLES: dict[str, tuple[str, ...]] = {
    "by_source": ("source", "revenue", "customers", "ltv"),
    "summary": ("figure", "value"),
}


async def read_pipeline(
    database: Database,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    compare: bool,
) -> PipelineReport:
    """The pipeline report's parts read concurrently, each in its own read-only transaction:
    the leads' figures and the revenue of each window (on two cores the answer takes the
    longest part, not their sum). The parts may see moments a few milliseconds apart."""
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


def pipeline_rows(report: PipelineFigures, table: str) -> list[dict[str, Any]]:
    """The rows of one of the pipeline report's tables (``PIPELINE_TABLES``), as the JSON
    answer holds them. The previous window's figures (``report.previous``) tabulate alike."""
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


def revenue_rows(report: RevenueFigures | RevenueReport, table: str) -> list[dict[str, Any]]:
    """The rows of one of the revenue report's tables (``REVENUE_TABLES``), as the JSON
    answer holds them. The previous window's figures (``report.previous``) tabulate alike."""
    if table == "summary":
        subscriptions = report.subscriptions
        return [
            {"figure": figure, "value": value}
            for figure, value in (
                ("currency", report.currency),
                ("collected", report.collected),
                ("refunded", report.refunded),
                ("paid_payments", report.paid_payments),
                ("failed_payments", report.failed_payments),
                ("payment_success_rate", report.payment_success_rate),
                ("subscriptions_active", subscriptions.active),
                ("subscriptions_churned", subscriptions.churned),
                ("churn_rate", subscriptions.churn_rate),
                ("mrr", subscriptions.mrr),
            )
        ]
    return [line.model_dump() for line in report.by_source]
