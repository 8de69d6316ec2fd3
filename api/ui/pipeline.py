"""The Pipeline page (``/app/pipeline``): stage counts and funnel, speed to lead, value and
revenue by source, payments and subscriptions, over a date range compared with the previous
one; a data table and a CSV download behind every chart.

The range is two calendar dates in the org's timezone, both included, in the query string
(``?from=2026-03-01&to=2026-03-31``): a link always shows the same days. Without ``from`` the
range starts with the org's first lead; without either, it is the last 30 days.

The figures are the JSON API's (``api.reports``: the same reads, the same tables): each table
on the page is one of them, and its "Download CSV" link (``/app/pipeline.csv``) answers the
same rows through the API's CSV writer. Each cell carries its CSV value (``data-value``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from api.csv import cell, csv_response, filename
from api.deps import Database, DatabaseDep
from api.errors import invalid
from api.reports import (
    PIPELINE_TABLES,
    pipeline_rows,
    read_pipeline,
    revenue_rows,
)
from api.sessions import OperatorSessionDep
from api.ui.inbox import CHANNEL_NAMES
from api.ui.leads import STAGE_NAMES
from api.ui.render import page, templates
from models.reads.lead_days import LeadDay, leads_by_day
from models.reads.revenue import previous_window, revenue_report
from models.rules.orgs import org_settings
from models.schemas import PipelineFigures, PipelineReport, RevenueReport
from models.services.sign_in import Current
from models.tables import Org, utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

#: The preset ranges: the last n days, today included.
PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
#: Dates outside these years are refused (422): nobody means them, and the day after the
#: last date must exist.
YEARS = (2000, 2100)
#: A trend of up to this many days is drawn a bar a day; up to ``WEEKLY_UP_TO`` a bar a week
#: (from Monday); longer, a bar a month.
DAILY_UP_TO = 92
WEEKLY_UP_TO = 731
#: Currencies whose smallest unit is the unit itself (Stripe's zero-decimal currencies).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
SYMBOLS = {"usd": "$", "gbp": "£", "eur": "€", "aud": "A$", "cad": "CA$", "nzd": "NZ$"}


# -- Numbers for people ----------------------------------------------------------------------


def number(value: float | None) -> str:
    """``1,234``; a fraction keeps one decimal (``12.5``); ``—`` for nothing."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def percent(rate: float | None) -> str:
    """A fraction as a percentage: ``33.3%``, ``50%``; ``—`` over nothing."""
    if rate is None:
        return "—"
    shown = f"{rate * 100:.1f}".removesuffix(".0")
    return f"{shown}%"


def duration(seconds: float | None) -> str:
    """``4.2 s``, ``42 s``, ``3 min 20 s``, ``2 h 5 min``, ``3 d 4 h``; ``—`` without data."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    minutes = round(whole / 60)
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    hours = round(minutes / 60)
    days, rest = divmod(hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


def money(amount: float | None, currency: str | None, *, minor: bool = True) -> str:
    """An amount in ``currency`` (``$1,234.50``, ``1,234.50 SEK``); ``minor``: Stripe's
    smallest unit (cents), else whole units (a lead's estimated value). Without a currency,
    just the number."""
    if amount is None:
        return "—"
    code = (currency or "").lower()
    decimals = 0 if code in ZERO_DECIMAL else 2
    units = amount / (10**decimals) if minor else amount
    if not minor and float(units).is_integer():
        decimals = 0
    shown = f"{abs(units):,.{decimals}f}"
    sign = "-" if units < 0 else ""
    if not code:
        return f"{sign}{shown}"
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{shown}" if symbol else f"{sign}{shown} {code.upper()}"


templates.env.filters.update(number=number, percent=percent, duration=duration, money=money)


@dataclass(frozen=True)
class Change:
    """A figure against the previous period, in words (never by colour alone)."""

    text: str
    #: ``better``, ``worse`` or ``same``: a hint for the eye; the words say it too.
    tone: str = "same"


def change(
    now: float | None,
    before: float | None,
    *,
    show: Callable[[float | None], str],
    rate: bool = False,
    lower_is_better: bool = False,
) -> Change:
    """How ``now`` compares with ``before``: ``Up 4 from 8 (+50%)``, ``Down 2.1 points from
    30%``, ``Faster: was 5 min``, ``Same as before``."""
    if now is None or before is None:
        return Change("Nothing to compare with" if before is None else "No figure this period")
    diff = now - before
    if abs(diff) < 1e-9:
        return Change("Same as before")
    better = (diff < 0) if lower_is_better else (diff > 0)
    tone = "better" if better else "worse"
    if lower_is_better:
        return Change(f"{'Faster' if diff < 0 else 'Slower'}: was {show(before)}", tone)
    word = "Up" if diff > 0 else "Down"
    if rate:
        points = f"{abs(diff) * 100:.1f}".removesuffix(".0")
        return Change(f"{word} {points} points from {show(before)}", tone)
    relative = f" ({'+' if diff > 0 else '-'}{abs(diff) / before:.0%})" if before else ""
    return Change(f"{word} {show(abs(diff))} from {show(before)}{relative}", tone)


# -- The range -------------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    return value or None


DateParam = Annotated[date | None, BeforeValidator(_blank_is_none)]


def _day(moment: date) -> str:
    return f"{moment.day} {moment:%b %Y}"


@dataclass(frozen=True)
class Range:
    """Calendar days ``first``..``last`` (both included) in ``zone``; ``first`` ``None``:
    from the org's first lead."""

    first: date | None
    last: date
    zone: ZoneInfo
    today: date

    @property
    def start(self) -> datetime | None:
        """The first day's midnight, in UTC."""
        return None if self.first is None else self._midnight(self.first)

    @property
    def end(self) -> datetime:
        """Midnight after the last day, in UTC."""
        return self._midnight(self.last + timedelta(days=1))

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def days(self) -> int | None:
        """How many days the range holds (``None`` from the beginning)."""
        return None if self.first is None else (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        """``1 Mar 2026 to 31 Mar 2026``, ``All time, to 31 Mar 2026``."""
        if self.first is None:
            return f"All time, to {_day(self.last)}"
        if self.first == self.last:
            return _day(self.first)
        return f"{_day(self.first)} to {_day(self.last)}"

    @property
    def previous(self) -> tuple[date, date] | None:
        """The previous period's first and last days (as the reads compute it)."""
        window = previous_window(self.start, self.end)
        if window is None:
            return None
        first = window[0].astimezone(self.zone).date()
        last = (window[1] - timedelta(microseconds=1)).astimezone(self.zone).date()
        return first, last

    @property
    def previous_label(self) -> str | None:
        """The previous period in words, or ``None`` (all time has none)."""
        previous = self.previous
        if previous is None:
            return None
        first, last = previous
        return _day(first) if first == last else f"{_day(first)} to {_day(last)}"

    def query(self) -> str:
        """The range as the page's query string."""
        values = {"from": self.first.isoformat() if self.first else None}
        return urlencode({k: v for k, v in (values | {"to": self.last.isoformat()}).items() if v})


def org_today(org: Org) -> tuple[ZoneInfo, date]:
    """The org's timezone and today's date there."""
    zone = ZoneInfo(org_settings(org).timezone)
    return zone, utcnow().astimezone(zone).date()


def last_days(org: Org, days: int) -> Range:
    """The last ``days`` days in the org's calendar, today included."""
    zone, today = org_today(org)
    return Range(first=today - timedelta(days=days - 1), last=today, zone=zone, today=today)


def choose_range(org: Org, first: date | None, last: date | None) -> Range:
    """The range a query string names (see the module docstring); 422 for a backwards or
    unlikely range."""
    zone, today = org_today(org)
    for name, value in (("from", first), ("to", last)):
        if value is not None and not YEARS[0] <= value.year <= YEARS[1]:
            raise invalid(name, f"must be a date between {YEARS[0]} and {YEARS[1]}")
    if first is None and last is None:
        return last_days(org, DEFAULT_DAYS)
    last = last or max(today, first or today)
    if first is not None and last < first:
        raise invalid("to", "must be on or after from")
    return Range(first=first, last=last, zone=zone, today=today)


@dataclass(frozen=True)
class Preset:
    """A link to a ready-made range."""

    label: str
    href: str
    current: bool


def presets(org: Org, chosen: Range) -> list[Preset]:
    """Last 7, 30, 90 days and all time, the chosen one marked."""
    found = []
    for days in PRESETS:
        preset = last_days(org, days)
        same = (preset.first, preset.last) == (chosen.first, chosen.last)
        found.append(Preset(f"Last {days} days", f"/app/pipeline?{preset.query()}", same))
    everything = Range(first=None, last=chosen.today, zone=chosen.zone, today=chosen.today)
    current = chosen.first is None and chosen.last == chosen.today
    found.append(Preset("All time", f"/app/pipeline?{everything.query()}", current))
    return found


# -- The trend -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One bar of the trend: leads created from ``first`` (a day, a Monday or a 1st)."""

    first: date
    leads: int
    converted: int


def _period_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(day: date, unit: str) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def trend(days: Sequence[LeadDay], chosen: Range) -> tuple[str, list[Period]]:
    """Leads per day (per week, per month over a long range), every period of the range up
    to today included, with or without leads; and the unit."""
    first = chosen.first or (days[0].day if days else None)
    last = min(chosen.last, chosen.today)
    if first is None or last < first:
        return "day", []
    span = (last - first).days + 1
    unit = "day" if span <= DAILY_UP_TO else "week" if span <= WEEKLY_UP_TO else "month"
    counts: dict[date, list[int]] = {}
    for each in days:
        bucket = counts.setdefault(_period_start(each.day, unit), [0, 0])
        bucket[0] += each.leads
        bucket[1] += each.converted
    periods = []
    cursor = _period_start(first, unit)
    while cursor <= last:
        leads, converted = counts.get(cursor, (0, 0))
        periods.append(Period(cursor, leads, converted))
        cursor = _next(cursor, unit)
    return unit, periods


def period_label(first: date, unit: str) -> str:
    """A trend period as a person reads it: ``3 Mar``, ``week of 3 Mar``, ``Mar 2026``."""
    if unit == "month":
        return f"{first:%b %Y}"
    short = f"{first.day} {first:%b}"
    return f"week of {short}" if unit == "week" else short


# -- Tables ----------------------------------------------------------------------------------

#: The page's tables (CSV ``table=``): the API's pipeline tables, the payments figures, and
#: the trend.
PageTable = Literal["summary", "stages", "funnel", "by_source", "by_channel", "payments", "trend"]
#: Columns of the tables the API doesn't have: a summary with the previous period beside it.
COMPARED = ("figure", "value", "previous")
TREND = ("period", "leads", "converted")
COLUMNS: dict[str, tuple[str, ...]] = PIPELINE_TABLES | {
    "summary": COMPARED,
    "payments": COMPARED,
    "trend": TREND,
}
HEADERS = {
    "figure": "Figure",
    "value": "This period",
    "previous": "Previous period",
    "stage": "Stage",
    "leads": "Leads",
    "converted": "Converted",
    "conversion_rate": "Conversion",
    "conversion_from_previous": "From the step before",
    "conversion_from_start": "Of all leads",
    "time_to_first_contact_p50_s": "Speed (median)",
    "time_to_first_contact_p90_s": "Speed (p90)",
    "p50_s": "Speed (median)",
    "p90_s": "Speed (p90)",
    "revenue": "Revenue",
    "customers": "Customers",
    "ltv": "LTV",
    "source": "Source",
    "channel": "Channel (first touch)",
    "period": "Period",
}
#: The summary tables' figures: their name on the page and how their values read.
FIGURES: dict[str, tuple[str, str]] = {
    "leads": ("Leads", "count"),
    "conversion_rate": ("Conversion rate", "rate"),
    "time_to_first_contact_p50_s": ("Speed to lead, median (p50)", "seconds"),
    "time_to_first_contact_p90_s": ("Speed to lead, p90", "seconds"),
    "lead_value_total": ("Lead value, total (estimated)", "value"),
    "lead_value_average": ("Lead value, average", "value"),
    "currency": ("Currency", "currency"),
    "revenue": ("Revenue (paid less refunded)", "money"),
    "collected": ("Collected", "money"),
    "refunded": ("Refunded", "money"),
    "paid_payments": ("Payments that succeeded", "count"),
    "failed_payments": ("Failed payments", "count"),
    "payment_success_rate": ("Payment success rate", "rate"),
    "subscriptions_active": ("Active subscriptions (at the end)", "count"),
    "subscriptions_churned": ("Subscriptions that ended", "count"),
    "churn_rate": ("Churn rate", "rate"),
    "mrr": ("MRR (monthly recurring revenue, at the end)", "money"),
}
#: How each column of the API's tables reads.
KINDS = {
    "leads": "count",
    "converted": "count",
    "customers": "count",
    "conversion_rate": "rate",
    "conversion_from_previous": "rate",
    "conversion_from_start": "rate",
    "time_to_first_contact_p50_s": "seconds",
    "time_to_first_contact_p90_s": "seconds",
    "p50_s": "seconds",
    "p90_s": "seconds",
    "value": "value",
    "revenue": "money",
    "ltv": "money",
    "stage": "stage",
    "source": "source",
    "channel": "channel",
    "period": "period",
}


NUMERIC_KINDS = frozenset({"count", "rate", "seconds", "money", "value"})


@dataclass(frozen=True)
class Cell:
    """A table cell: what a person reads, and the CSV's cell (``data-value``)."""

    shown: str
    value: str
    #: A bar behind the number (0 to 1 of the column's largest): the funnel and stages.
    bar: float | None = None


@dataclass(frozen=True)
class TableView:
    """One table of the page, with its caption and its download."""

    name: str
    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    csv: str
    empty: str
    #: Numbers drawn as bars in this column (its index).
    bar_column: int | None = None
    numeric: set[int] = field(default_factory=set)


def _read(kind: str, value: Any, currency: str | None, unit: str) -> str:
    if kind == "count":
        return number(value)
    if kind == "rate":
        return percent(value)
    if kind == "seconds":
        return duration(value)
    if kind == "money":
        return money(value, currency)
    if kind == "value":
        return money(value, currency, minor=False)
    if kind == "currency":
        return (value or "—").upper()
    if kind == "stage":
        return STAGE_NAMES.get(value, str(value))
    if kind == "source":
        return value if value else "No source given"
    if kind == "channel":
        return CHANNEL_NAMES.get(value, value) if value else "Not recorded"
    if kind == "period":
        return period_label(date.fromisoformat(value), unit)
    return "—" if value is None else str(value)


def table_view(
    name: str,
    rows: list[dict[str, Any]],
    *,
    caption: str,
    empty: str,
    csv: str,
    currency: str | None,
    unit: str = "day",
    bar: str | None = None,
) -> TableView:
    """``rows`` (as the CSV holds them) as the page shows them."""
    columns = COLUMNS[name]
    largest = max((row.get(bar) or 0 for row in rows), default=0) if bar else 0
    shown_rows = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "figure":
                text = FIGURES.get(str(value), (str(value), ""))[0]
            elif column in ("value", "previous") and "figure" in row:
                text = _read(FIGURES.get(row["figure"], ("", ""))[1], value, currency, unit)
            else:
                text = _read(KINDS.get(column, ""), value, currency, unit)
            share = (value or 0) / largest if column == bar and largest else None
            cells.append(Cell(text, cell(value), share if column == bar else None))
        shown_rows.append(cells)
    numeric = {
        index
        for index, column in enumerate(columns)
        if column in ("value", "previous") or KINDS.get(column) in NUMERIC_KINDS
    }
    return TableView(
        name=name,
        caption=caption,
        headers=[
            "Lead value" if column == "value" and "figure" not in columns else HEADERS[column]
            for column in columns
        ],
        rows=shown_rows,
        csv=csv,
        empty=empty,
        bar_column=columns.index(bar) if bar else None,
        numeric=numeric,
    )


def compared(
    current: list[dict[str, Any]], before: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Summary rows (``figure``, ``value``) with the previous period's value beside each."""
    earlier = {row["figure"]: row["value"] for row in before or []}
    return [row | {"previous": earlier.get(row["figure"])} for row in current]


# -- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Everything the page shows for a range."""

    pipeline: PipelineReport
    revenue: RevenueReport
    unit: str
    periods: list[Period]

    @property
    def currency(self) -> str | None:
        """The currency of the money figures: the window's most used."""
        return self.pipeline.currency or self.revenue.currency


async def read_figures(
    database: Database, org: Org, chosen: Range, *, parts: frozenset[str] | None = None
) -> Figures:
    """The pipeline and revenue reports (with the previous period) and the trend, read
    concurrently; ``parts`` limits what is read to what a download needs."""
    wanted = parts or frozenset({"pipeline", "revenue", "trend"})
    empty_revenue = RevenueReport.model_validate(
        {
            "currency": None,
            "collected": 0,
            "refunded": 0,
            "paid_payments": 0,
            "failed_payments": 0,
            "payment_success_rate": None,
            "by_source": [],
            "subscriptions": {"active": 0, "churned": 0, "churn_rate": None, "mrr": 0.0},
        }
    )

    async def pipeline() -> PipelineReport | None:
        if "pipeline" not in wanted:
            return None
        return await read_pipeline(
            database, org_id=org.id, start=chosen.start, end=chosen.end, source=None, compare=True
        )

    async def revenue() -> RevenueReport:
        if "revenue" not in wanted:
            return empty_revenue
        return await database.read(
            revenue_report, org_id=org.id, start=chosen.start, end=chosen.end, compare=True
        )

    async def days() -> list[LeadDay]:
        if "trend" not in wanted:
            return []
        return await database.read(
            leads_by_day,
            org_id=org.id,
            start=chosen.start,
            end=chosen.end,
            timezone=org_settings(org).timezone,
        )

    report, money_report, lead_days = await asyncio.gather(pipeline(), revenue(), days())
    unit, periods = trend(lead_days, chosen)
    return Figures(
        pipeline=report or _empty_pipeline(),
        revenue=money_report,
        unit=unit,
        periods=periods,
    )


def _empty_pipeline() -> PipelineReport:
    return PipelineReport.model_validate(
        {
            "stages": {},
            "conversion_rate": 0.0,
            "time_to_first_contact": {"p50_s": None, "p90_s": None},
            "lead_value": {"total": 0.0, "average": None},
            "by_source": [],
        }
    )


def table_rows(figures: Figures, table: str) -> list[dict[str, Any]]:
    """The rows of one of the page's tables, as its CSV holds them."""
    report = figures.pipeline
    if table == "summary":
        before = report.previous
        return compared(
            pipeline_rows(report, "summary"),
            None if before is None else pipeline_rows(before, "summary"),
        )
    if table == "payments":
        money_before = figures.revenue.previous
        return compared(
            revenue_rows(figures.revenue, "summary"),
            None if money_before is None else revenue_rows(money_before, "summary"),
        )
    if table == "trend":
        return [
            {"period": p.first.isoformat(), "leads": p.leads, "converted": p.converted}
            for p in figures.periods
        ]
    return pipeline_rows(report, table)


#: Each table's caption and empty state, and the column drawn as bars.
TABLES: dict[str, tuple[str, str, str | None]] = {
    "summary": ("Headline figures, this period and the previous one", "", None),
    "trend": ("Leads created per {unit}, and how many of them have converted", "", None),
    "stages": ("Leads by the stage they are at now", "No leads in this range yet.", "leads"),
    "funnel": (
        "How far the leads got: each step counts the leads that reached it",
        "No leads in this range yet.",
        "leads",
    ),
    "by_source": (
        "Leads, conversion, speed to lead (intake to first touch), lead value and revenue "
        "by source",
        "No leads or revenue in this range yet.",
        None,
    ),
    "by_channel": (
        "Speed to lead by the channel of the first touch",
        "No lead was contacted in this range yet.",
        None,
    ),
    "payments": (
        "Payments and subscriptions from Stripe, this period and the previous one",
        "",
        None,
    ),
}


def views(figures: Figures, chosen: Range) -> dict[str, TableView]:
    """Every table of the page."""
    found = {}
    for name, (caption, empty, bar) in TABLES.items():
        found[name] = table_view(
            name,
            table_rows(figures, name),
            caption=caption.format(unit=figures.unit),
            empty=empty,
            csv=f"/app/pipeline.csv?{urlencode({'table': name})}&{chosen.query()}",
            currency=figures.currency,
            unit=figures.unit,
            bar=bar,
        )
    return found


# -- Headline and charts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """A headline figure with its change against the previous period."""

    label: str
    shown: str
    change: Change
    note: str = ""


def headlines(report: PipelineReport, currency: str | None) -> list[Headline]:
    """Leads, converted, conversion rate, speed to lead, lead value and revenue."""
    before: PipelineFigures | None = report.previous

    def leads(figures: PipelineFigures) -> int:
        return sum(figures.stages.values())

    def converted(figures: PipelineFigures) -> int:
        return figures.stages.get("converted", 0)

    def revenue(figures: PipelineFigures) -> int:
        return sum(line.revenue for line in figures.by_source)

    def compare(
        value: Callable[[PipelineFigures], Any], show: Callable[[Any], str], **how: Any
    ) -> Change:
        return change(value(report), None if before is None else value(before), show=show, **how)

    speed = report.time_to_first_contact

    def cash(amount: float | None) -> str:
        return money(amount, currency)

    def worth(amount: float | None) -> str:
        return money(amount, currency, minor=False)

    return [
        Headline("Leads", number(leads(report)), compare(leads, number)),
        Headline("Converted", number(converted(report)), compare(converted, number)),
        Headline(
            "Conversion rate",
            percent(report.conversion_rate if leads(report) else None),
            compare(lambda f: f.conversion_rate if leads(f) else None, percent, rate=True),
        ),
        Headline(
            "Speed to lead (median)",
            duration(speed.p50_s),
            compare(lambda f: f.time_to_first_contact.p50_s, duration, lower_is_better=True),
            note=f"p90: {duration(speed.p90_s)}",
        ),
        Headline(
            "Lead value",
            worth(report.lead_value.total),
            compare(lambda f: f.lead_value.total, worth),
        ),
        Headline(
            "Revenue", cash(revenue(report)), compare(revenue, cash), note="paid less refunded"
        ),
    ]


def charts(figures: Figures) -> dict[str, Any]:
    """The charts' data (``pipeline.js`` draws them): the trend, speed to lead by source."""
    lines = [
        line for line in figures.pipeline.by_source if line.time_to_first_contact_p50_s is not None
    ]
    slowest = max((line.time_to_first_contact_p90_s or 0 for line in lines), default=0)
    scale, unit = (60, "minutes") if slowest >= 120 else (1, "seconds")
    return {
        "trend": {
            "labels": [period_label(p.first, figures.unit) for p in figures.periods],
            "leads": [p.leads for p in figures.periods],
            "converted": [p.converted for p in figures.periods],
        },
        "speed": {
            "labels": [line.source or "No source given" for line in lines],
            "p50": [round((line.time_to_first_contact_p50_s or 0) / scale, 2) for line in lines],
            "p90": [round((line.time_to_first_contact_p90_s or 0) / scale, 2) for line in lines],
            "unit": unit,
        },
    }


# -- Routes ----------------------------------------------------------------------------------

FromParam = Annotated[DateParam, Query(alias="from")]
ToParam = Annotated[DateParam, Query(alias="to")]


def page_range(me: OperatorSessionDep, first: FromParam = None, last: ToParam = None) -> Range:
    """The range the query string names, in the signed-in operator's org's calendar."""
    return choose_range(me.org, first, last)


RangeDep = Annotated[Range, Depends(page_range)]


def page_context(me: Current, figures: Figures, chosen: Range) -> dict[str, Any]:
    """What ``pipeline.html`` needs."""
    report = figures.pipeline
    return {
        "range": chosen,
        "presets": presets(me.org, chosen),
        "timezone": org_settings(me.org).timezone,
        "figures": figures,
        "has_leads": bool(sum(report.stages.values())),
        "headlines": headlines(report, figures.currency),
        "tables": views(figures, chosen),
        "charts": charts(figures),
        "now": utcnow(),
    }


@router.get("/pipeline")
async def pipeline_page(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    chosen: RangeDep,
) -> Response:
    """The pipeline for a range of days (``from``, ``to``) against the period before."""
    figures = await read_figures(database, me.org, chosen)
    return page(
        request,
        "pipeline.html",
        me=me,
        title="Pipeline",
        section="pipeline",
        **page_context(me, figures, chosen),
    )


#: What each download reads.
_PARTS = {"payments": frozenset({"revenue"}), "trend": frozenset({"trend"})}


@router.get("/pipeline.csv")
async def pipeline_csv(
    me: OperatorSessionDep,
    database: DatabaseDep,
    table: PageTable,
    chosen: RangeDep,
) -> Response:
    """One of the page's tables as CSV: the rows the page shows, as the API writes them."""
    figures = await read_figures(
        database, me.org, chosen, parts=_PARTS.get(table, frozenset({"pipeline"}))
    )
    first_day = chosen.first.isoformat() if chosen.first else "start"
    name = filename("pipeline", table, first_day, chosen.last.isoformat())
    return csv_response(COLUMNS[table], table_rows(figures, table), name=name)
