"""The revenue report from Stripe's events: collected, refunded, failed payments, revenue and
LTV by the source of each customer's first lead, subscriptions (active, churned, churn rate,
MRR), as JSON or, with ``Accept: text/csv``, one of its tables as CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator

from api.csv import csv_openapi, csv_response, filename, wants_csv
from api.deps import DatabaseDep, OrgDep, WindowDep
from api.openapi import ORG_KEY, errors
from api.reports import REVENUE_TABLES, Compare, revenue_rows
from models.reads import revenue as revenue_reads
from models.schemas import RevenueReport

router = APIRouter(prefix="/v1/revenue", tags=["revenue"], responses=errors(*ORG_KEY))

Table = Literal["by_source", "summary"]
Currency = Annotated[
    str | None,
    Query(
        pattern="^[A-Za-z]{3}$",
        description="An ISO 4217 code (`usd`): the figures in this currency. Default: the one "
        "most of the window's payments are in.",
    ),
    AfterValidator(lambda code: code.lower() if code else code),
]
TableParam = Annotated[
    Table,
    Query(description="With `Accept: text/csv`: the table to download (JSON: ignored)."),
]


@router.get(
    "",
    response_model=RevenueReport,
    responses=errors(422) | csv_openapi("The report (JSON), or one of its tables (CSV)."),
)
async def revenue_report(
    request: Request,
    org: OrgDep,
    database: DatabaseDep,
    window: WindowDep,
    currency: Currency = None,
    compare: Compare = None,
    table: TableParam = "by_source",
) -> RevenueReport | Response:
    """What Stripe reported in ``[from, to)`` (ISO 8601 with a zone), in one currency and in
    its smallest unit: collected, refunded, failed payments and the success rate, revenue,
    customers and LTV by the source of each customer's first lead, and subscriptions at the
    window's end (active, MRR) and through it (churned, churn rate); with
    ``compare=previous``, the same for the window before.

    ``Accept: text/csv`` answers one table (``table``) of the same report as CSV.
    """
    report = await database.read(
        revenue_reads.revenue_report,
        org_id=org.id,
        start=window.start,
        end=window.end,
        currency=currency,
        compare=compare == "previous",
    )
    if wants_csv(request):
        name = filename("revenue", table, window.start, window.end)
        return csv_response(REVENUE_TABLES[table], revenue_rows(report, table), name=name)
    return report
