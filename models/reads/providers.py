"""The org's providers as the API lists them, and one provider's performance over a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.rules.providers import CANCELLED, Visit, flags, performance
from models.schemas import PerformanceFlag, ProviderList, ProviderPerformance, ProviderPublic
from models.store.providers import get_provider, providers_of
from models.tables import Booking, Provider

#: How far before the window the provider's usual and the org's norm are read: a year is
#: plenty to know anyone's usual, and it bounds the org's read (every provider's visits).
HISTORY = timedelta(days=365)
#: The range a stored time can take: a window reaching past either end is cut there.
EARLIEST, LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def reach_back(moment: datetime, span: timedelta) -> datetime:
    """``moment - span``, or ``EARLIEST`` if that is before it (no overflow near year 1)."""
    return moment - span if moment - EARLIEST > span else EARLIEST


def _public(provider: Provider) -> ProviderPublic:
    return ProviderPublic(
        id=provider.id,
        name=provider.name,
        phone=provider.phone,
        email=provider.email,
        created_at=provider.created_at,
    )


def provider_list(session: Session, *, org_id: str) -> ProviderList:
    """The org's providers, by name."""
    return ProviderList(items=[_public(p) for p in providers_of(session, org_id=org_id)])


def provider_of(session: Session, *, org_id: str, provider_id: str) -> ProviderPublic:
    """The org's provider; ``NotFound`` for another org's or none."""
    return _public(get_provider(session, org_id=org_id, provider_id=provider_id))


@dataclass(frozen=True, kw_only=True)
class ProviderFigures:
    """A provider and their performance over one window."""

    provider: ProviderPublic
    performance: ProviderPerformance


def provider_board(
    session: Session,
    *,
    org_id: str,
    start: datetime,
    end: datetime,
    grace: timedelta,
    now: datetime,
) -> list[ProviderFigures]:
    """Every provider of the org (by name) with their performance over ``[start, end)``, as
    ``provider_performance`` gives it, in one read (the org's norm read once for all)."""
    start, end = _bounded(start, end)
    org = _visits(session, col(Booking.org_id) == org_id, reach_back(start, HISTORY), start)
    return [
        ProviderFigures(
            provider=_public(provider),
            performance=_performance(
                session, provider.id, start=start, end=end, org=org, grace=grace, now=now
            ),
        )
        for provider in providers_of(session, org_id=org_id)
    ]


def _bounded(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """In UTC, within what can be stored: an offset near year 1 or 9999 can't be converted."""
    start, end = (min(max(moment, EARLIEST), LATEST).astimezone(UTC) for moment in (start, end))
    return start, end


def provider_performance(
    session: Session,
    *,
    org_id: str,
    provider_id: str,
    start: datetime,
    end: datetime,
    grace: timedelta,
    now: datetime,
) -> ProviderPerformance:
    """The provider's figures over their visits that start in ``[start, end)`` and were due
    by ``now`` (``models.rules.providers.performance``), and the flags where the window is
    worse than they usually are (``models.rules.providers.flags``).

    Their usual is their own visits in the ``HISTORY`` (365 days) before ``start``; the org's
    norm is every visit of the org (any provider) in the same year. Older visits aren't read.
    The window comes back in UTC, cut to the years a timestamp can hold.
    Three reads, each along an index: the provider's on ``ix_bookings_provider_starts``
    (window and history), the org's on ``ix_bookings_org_starts``.

    Raises:
        NotFound: no provider by that id in this org.
    """
    get_provider(session, org_id=org_id, provider_id=provider_id)
    start, end = _bounded(start, end)
    org = _visits(session, col(Booking.org_id) == org_id, reach_back(start, HISTORY), start)
    return _performance(session, provider_id, start=start, end=end, org=org, grace=grace, now=now)


def _performance(
    session: Session,
    provider_id: str,
    *,
    start: datetime,
    end: datetime,
    org: list[Visit],
    grace: timedelta,
    now: datetime,
) -> ProviderPerformance:
    """The provider's figures and flags over ``[start, end)`` (in UTC, bounded), against
    ``org``: every visit of the org in the ``HISTORY`` before ``start``."""
    mine = col(Booking.provider_id) == provider_id
    period = _visits(session, mine, start, end)
    history = _visits(session, mine, reach_back(start, HISTORY), start)
    figures = performance(period, grace=grace, now=now)
    return ProviderPerformance(
        provider_id=provider_id,
        start=start,
        end=end,
        visits=figures.visits,
        attended_rate=figures.attended_rate,
        on_time_rate=figures.on_time_rate,
        average_rating=figures.average_rating,
        ratings=figures.ratings,
        complaint_rate=figures.complaint_rate,
        average_lateness_s=figures.average_lateness_s,
        flags=[
            PerformanceFlag.model_validate(flag, from_attributes=True)
            for flag in flags(period, history=history, org=org, grace=grace, now=now)
        ],
    )


def _visits(session: Session, who: Any, start: datetime, end: datetime) -> list[Visit]:
    """The bookings ``who`` picks that start in ``[start, end)``, earliest first, as visits;
    only the columns the figures use. Cancelled ones never count, so they aren't read."""
    query = (
        sa_select(
            col(Booking.id),
            col(Booking.starts_at),
            col(Booking.status),
            col(Booking.arrived_at),
            col(Booking.rating),
            col(Booking.complained),
        )
        .where(
            who,
            col(Booking.starts_at) >= start,
            col(Booking.starts_at) < end,
            col(Booking.status) != CANCELLED,
        )
        .order_by(col(Booking.starts_at), col(Booking.id))
    )
    return [
        Visit(
            booking_id=booking_id,
            starts_at=starts_at,
            status=status,
            arrived_at=arrived_at,
            rating=rating,
            complained=complained,
        )
        for booking_id, starts_at, status, arrived_at, rating, complained in session.execute(query)
    ]
