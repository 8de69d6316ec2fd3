"""Leads per day in the org's own calendar: the Pipeline page's trend chart.

A day is a calendar day in the org's timezone, not in UTC: a lead that came in at 23:30 UTC
on a summer evening in London counts on the next day. PostgreSQL converts each lead's time
to that zone (``timezone(zone, created_at)``) and groups by the date: a row per day, read off
``ix_leads_org_report``. SQLite has no time zones: it groups by the UTC minute (every zone's
offset is whole minutes) and the minutes are put into local days here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.reads.revenue import for_aggregates
from models.tables import Lead
from models.values import Stage


@dataclass(frozen=True, kw_only=True)
class LeadDay:
    """The leads created on one local day, and how many of them have converted since."""

    day: date
    leads: int
    converted: int


def leads_by_day(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    timezone: str,
) -> list[LeadDay]:
    """The org's leads created in ``[start, end)`` counted by their local day in
    ``timezone``, oldest first; days without a lead are left out."""
    for_aggregates(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    bucket: Any = (
        cast(func.timezone(timezone, col(Lead.created_at)), Date)
        if postgres
        else func.substr(col(Lead.created_at), 1, 16)
    )
    # The bucket is named in a subquery and grouped by that name: PostgreSQL can't tell
    # that two bound copies of the zone in SELECT and GROUP BY are the same expression.
    leads_in = sa_select(
        bucket.label("bucket"), (col(Lead.stage) == Stage.CONVERTED).label("won")
    ).where(col(Lead.org_id) == org_id)
    if start is not None:
        leads_in = leads_in.where(col(Lead.created_at) >= start)
    if end is not None:
        leads_in = leads_in.where(col(Lead.created_at) < end)
    rows = leads_in.subquery("lead_buckets")
    converted = func.coalesce(func.sum(case((rows.c.won, 1), else_=0)), 0)
    query = sa_select(rows.c.bucket, func.count(), converted).group_by(rows.c.bucket)
    leads: Counter[date] = Counter()
    won: Counter[date] = Counter()
    zone = ZoneInfo(timezone)
    for key, count, converted_count in session.execute(query):
        day = key if postgres else _local_day(key, zone)
        leads[day] += int(count)
        won[day] += int(converted_count)
    return [LeadDay(day=day, leads=leads[day], converted=won[day]) for day in sorted(leads)]


def _local_day(utc_minute: str, zone: ZoneInfo) -> date:
    """``'YYYY-MM-DD HH:MM'`` (UTC, as SQLite stores it) as a date in ``zone``."""
    moment = datetime.strptime(utc_minute, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return moment.astimezone(zone).date()
