"""The revenue report: payments, refunds, failures, revenue by the source of each customer's
first lead, and subscriptions (active, churned, churn rate, MRR), aggregated in SQL.

Every query is grouped: what comes back is a row per currency, per source or one row,
however many payments. Amounts are in the currency's smallest unit, as Stripe sends them.

Definitions (docs/api.md "Revenue"):

* A payment counts when it succeeded (``checkout.session.completed``, ``invoice.paid``), once:
  a Checkout Session that created an invoice is counted by that invoice's own event.
* ``refunded`` is what refund events refunded in the window; revenue is paid less refunded.
* A customer's revenue goes to the source of their contact's first lead (the oldest, by
  ``created_at`` then id), whichever lead the payment was for.
* A subscription bills from ``started_at`` until ``ended_at``, unless its latest status says
  it doesn't (``NOT_BILLING``). MRR spreads each period's price over a month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, or_, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.schemas import (
    PreviousWindow,
    RevenueFigures,
    RevenuePrevious,
    RevenueReport,
    SourceRevenue,
    SubscriptionFigures,
)
from models.tables import Payment, Subscription, utcnow

#: Payment statuses a Stripe event leaves (``api.routes.webhooks.stripe.STRIPE_EVENTS``).
PAID, FAILED, REFUNDED = "paid", "failed", "refunded"
#: Subscription statuses that don't bill: never paid (``incomplete*``), in a free trial, or
#: held (``paused``, ``unpaid``: Stripe stopped trying).
NOT_BILLING = ("incomplete", "incomplete_expired", "trialing", "paused", "unpaid")
#: Months in one billing interval of each kind (a yearly plan counts 1/12 a month).
MONTHS_PER_INTERVAL = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}


def for_aggregates(session: Session) -> None:
    """Settings for the rest of this read's transaction, on PostgreSQL, that suit aggregates
    over a whole org's rows (one statement).

    No JIT: such a query is estimated above ``jit_above_cost``, and compiling it took longer
    than running it (about 1 s of a 1.1 s answer at 100,000 leads, ``bench/analytics.py``).
    ``work_mem`` of 32 MB: the percentiles sort every wait of the window, which spilled to
    disk at the default 4 MB. ``random_page_cost`` 1.1: the indexes these reads scan whole
    (an org's leads in group order, the threads that moved in a window) are in memory, and at
    the default 4 the planner hashed rows from the table instead, twice as slow.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true), "
                "set_config('random_page_cost', '1.1', true)"
            )
        )


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places; ``None`` over nothing."""
    return round(part / whole, 4) if whole else None


def _window(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _counted() -> Any:
    """A payment that brought money in, counted once."""
    return and_(
        col(Payment.status) == PAID,
        or_(col(Payment.kind) != "checkout", col(Payment.invoice).is_(None)),
    )


def _sum_if(condition: Any, value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


@dataclass(frozen=True, kw_only=True)
class Takings:
    """Payments in one currency in a window."""

    currency: str | None
    collected: int = 0
    refunded: int = 0
    paid: int = 0
    failed: int = 0


def takings(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    currency: str | None = None,
) -> Takings:
    """What was paid, refunded and failed in ``[start, end)``, in ``currency`` or else the
    currency most of the window's payments are in (ties: alphabetical); ``None`` as the
    currency without any payment."""
    amount = func.coalesce(col(Payment.amount), 0)
    query = (
        sa_select(
            col(Payment.currency),
            func.count(),
            _sum_if(_counted(), amount),
            _sum_if(col(Payment.status) == REFUNDED, amount),
            _sum_if(_counted(), 1),
            _sum_if(col(Payment.status) == FAILED, 1),
        )
        .where(col(Payment.org_id) == org_id, *_window(col(Payment.occurred_at), start, end))
        .group_by(col(Payment.currency))
    )
    rows = session.execute(query).all()
    if currency is not None:
        rows = [row for row in rows if row[0] == currency]
    if not rows:
        return Takings(currency=currency)
    chosen = min(rows, key=lambda row: (-row[1], row[0] or ""))
    return Takings(
        currency=chosen[0],
        collected=int(chosen[2]),
        refunded=int(chosen[3]),
        paid=int(chosen[4]),
        failed=int(chosen[5]),
    )


def revenue_by_source(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    currency: str | None,
    source: str | None = None,
) -> list[SourceRevenue]:
    """Paid less refunded in ``[start, end)`` in ``currency``, the customers who paid and the
    revenue per customer, by the source of each customer's first lead (only ``source``'s,
    if given); most revenue first.

    Each payment carries its customer (``contact_id``) and the source of the customer's first
    lead (``source``, set when recorded and again by a merge): payments are summed per
    customer, then per source, without a join.
    """
    if currency is None:
        return []
    amount = func.coalesce(col(Payment.amount), 0)
    attributed = (
        sa_select(
            col(Payment.source).label("source"),
            _sum_if(_counted(), amount).label("paid"),
            _sum_if(col(Payment.status) == REFUNDED, amount).label("refunded"),
        )
        .where(
            col(Payment.org_id) == org_id,
            col(Payment.currency) == currency,
            col(Payment.status).in_([PAID, REFUNDED]),
            *_window(col(Payment.occurred_at), start, end),
        )
        .group_by(col(Payment.contact_id), col(Payment.source))
        .subquery("per_customer")
    )
    query = sa_select(
        attributed.c.source,
        func.sum(attributed.c.paid - attributed.c.refunded),
        _sum_if(attributed.c.paid > 0, 1),
    ).group_by(attributed.c.source)
    if source is not None:
        query = query.where(attributed.c.source == source)
    lines = [
        SourceRevenue(
            source=line_source,
            revenue=int(revenue),
            customers=int(customers),
            ltv=round(int(revenue) / int(customers), 2) if customers else None,
        )
        for line_source, revenue, customers in session.execute(query)
    ]
    return sorted(lines, key=lambda line: (-line.revenue, line.source or ""))


@dataclass(frozen=True, kw_only=True)
class SourceRevenueLines:
    """Revenue by source in the window's main currency (``None`` without payments)."""

    currency: str | None
    lines: list[SourceRevenue]


def source_revenue(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None = None,
) -> SourceRevenueLines:
    """Revenue, customers and LTV by source (only ``source``'s, if given) in the currency
    most of the window's payments are in: the pipeline report's revenue columns."""
    for_aggregates(session)
    currency = takings(session, org_id=org_id, start=start, end=end).currency
    lines = revenue_by_source(
        session, org_id=org_id, start=start, end=end, currency=currency, source=source
    )
    return SourceRevenueLines(currency=currency, lines=lines)


def _monthly() -> Any:
    """One subscription's monthly amount (``MONTHS_PER_INTERVAL``)."""
    amount = cast(func.coalesce(col(Subscription.amount), 0), Float)
    per_interval = amount / col(Subscription.interval_count)
    return case(
        *(
            (col(Subscription.interval) == interval, per_interval / literal(months, Float))
            for interval, months in MONTHS_PER_INTERVAL.items()
        ),
        else_=literal(0.0, Float),
    )


def subscription_figures(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime,
    currency: str | None,
) -> SubscriptionFigures:
    """Subscriptions billing at ``end``, ended in ``[start, end)``, the churn rate (ended over
    those billing at some moment of the window) and the MRR at ``end``, in ``currency`` (all
    currencies when ``None``)."""
    started = col(Subscription.started_at)
    ended = col(Subscription.ended_at)
    active_at_end = and_(started < end, or_(ended.is_(None), ended >= end))
    live_in_window = and_(
        started < end, *([] if start is None else [or_(ended.is_(None), ended >= start)])
    )
    churned = and_(ended.is_not(None), *_window(ended, start, end))
    query = sa_select(
        _sum_if(active_at_end, 1),
        _sum_if(and_(churned, started < end), 1),
        _sum_if(live_in_window, 1),
        func.coalesce(func.sum(case((active_at_end, _monthly()), else_=0.0)), 0.0),
    ).where(
        col(Subscription.org_id) == org_id,
        started.is_not(None),
        col(Subscription.status).not_in(NOT_BILLING),
    )
    if currency is not None:
        query = query.where(col(Subscription.currency) == currency)
    active, churned_count, live, mrr = session.execute(query).one()
    return SubscriptionFigures(
        active=int(active),
        churned=int(churned_count),
        churn_rate=rate(int(churned_count), int(live)),
        mrr=round(float(mrr), 2),
    )


def subscription_currency(session: Session, *, org_id: str) -> str | None:
    """The currency most of the org's subscriptions are in (ties: alphabetical)."""
    row = session.execute(
        sa_select(col(Subscription.currency))
        .where(col(Subscription.org_id) == org_id, col(Subscription.currency).is_not(None))
        .group_by(col(Subscription.currency))
        .order_by(func.count().desc(), col(Subscription.currency))
        .limit(1)
    ).first()
    return row[0] if row else None


def revenue_figures(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    currency: str | None = None,
) -> RevenueFigures:
    """Every revenue figure of ``[start, end)``: either end open (subscriptions are counted
    at ``end``, or now)."""
    money = takings(session, org_id=org_id, start=start, end=end, currency=currency)
    chosen = money.currency or currency or subscription_currency(session, org_id=org_id)
    return RevenueFigures(
        currency=chosen,
        collected=money.collected,
        refunded=money.refunded,
        paid_payments=money.paid,
        failed_payments=money.failed,
        payment_success_rate=rate(money.paid, money.paid + money.failed),
        by_source=revenue_by_source(
            session, org_id=org_id, start=start, end=end, currency=money.currency
        ),
        subscriptions=subscription_figures(
            session, org_id=org_id, start=start, end=end or utcnow(), currency=chosen
        ),
    )


def previous_window(
    start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime] | None:
    """The window of the same length just before ``[start, end)`` (``end`` open: now);
    ``None`` when ``start`` is open too, or still to come."""
    length = (end or utcnow()) - start if start is not None else None
    if start is None or length is None or length <= timedelta(0):
        return None  # from the beginning, or a window that hasn't begun
    return start - length, start


def revenue_report(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    currency: str | None = None,
    compare: bool = False,
) -> RevenueReport:
    """``GET /v1/revenue``: the figures of ``[start, end)`` and, with ``compare``, of the
    window before (in the same currency)."""
    for_aggregates(session)
    figures = revenue_figures(session, org_id=org_id, start=start, end=end, currency=currency)
    before = previous_window(start, end) if compare else None
    previous = None
    if before is not None:
        earlier = revenue_figures(
            session,
            org_id=org_id,
            start=before[0],
            end=before[1],
            currency=figures.currency,
        )
        previous = RevenuePrevious(
            **earlier.model_dump(), window=PreviousWindow(start=before[0], end=before[1])
        )
    return RevenueReport(**figures.model_dump(), previous=previous)
