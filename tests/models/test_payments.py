"""Stripe's payments and subscriptions recorded once, on the org's own lead, on SQLite and on
PostgreSQL: refunds counted by what each event adds, links that find the lead when the
metadata doesn't name it, subscriptions that ignore late events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models.database import make_engine, session_scope
from models.reads.revenue import revenue_by_source
from models.schemas import OrgSettings
from models.services.merge import merge_contacts
from models.services.orgs import create_org
from models.services.payments import (
    PaymentEvent,
    SubscriptionEvent,
    record_payment,
    record_subscription,
)
from models.tables import Contact, Lead, Payment, Subscription, TimelineEvent, utcnow
from models.values import new_id

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    engine = make_engine(any_db_url, pool_size=1)
    yield engine
    engine.dispose()


def org_with_lead(engine: Engine) -> tuple[str, str]:
    """A new org with one lead; their ids."""
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings())
        contact = Contact(id=new_id("ct"), org_id=org.id)
        session.add(contact)
        session.flush()
        lead = Lead(
            id=new_id("lead"),
            org_id=org.id,
            contact_id=contact.id,
            workflow_id=f"lead-{contact.id}",
            stage="engaged",
            source="google",
        )
        session.add(lead)
        return org.id, lead.id


def paid(
    org_id: str, *, event: str, lead_id: str | None, kind: str = "invoice", **fields: object
) -> PaymentEvent:
    values: dict[str, object] = {
        "stripe_event_id": f"{org_id}-{event}",
        "stripe_object_id": f"obj-{event}",
        "kind": kind,
        "status": "paid",
        "amount": 1_000,
        "currency": "usd",
        "lead_id": lead_id,
        "occurred_at": T0,
    }
    return PaymentEvent(**(values | fields))  # type: ignore[arg-type]


def subscription(
    lead_id: str | None, *, status: str, at: float, **fields: object
) -> SubscriptionEvent:
    values: dict[str, object] = {
        "stripe_subscription_id": "sub_1",
        "status": status,
        "lead_id": lead_id,
        "currency": "usd",
        "amount": 2_000,
        "interval": "month",
        "interval_count": 1,
        "started_at": T0,
        "ended_at": None,
        "occurred_at": T0 + timedelta(hours=at),
    }
    return SubscriptionEvent(**(values | fields))  # type: ignore[arg-type]


def payments(session: Session, org_id: str) -> list[Payment]:
    return list(
        session.exec(
            select(Payment).where(Payment.org_id == org_id).order_by(col(Payment.occurred_at))
        )
    )


def test_a_payment_for_another_orgs_lead_is_not_recorded(engine: Engine) -> None:
    org_id, _ = org_with_lead(engine)
    _, stranger_lead = org_with_lead(engine)

    with session_scope(engine) as session:
        recorded = record_payment(
            session, org_id=org_id, event=paid(org_id, event="e1", lead_id=stranger_lead)
        )
        unnamed = record_payment(
            session, org_id=org_id, event=paid(org_id, event="e2", lead_id=None)
        )

    assert recorded is None and unnamed is None
    with Session(engine) as session:
        assert payments(session, org_id) == []


def test_a_refund_finds_its_lead_through_the_payment_intent_and_counts_what_it_adds(
    engine: Engine,
) -> None:
    org_id, lead_id = org_with_lead(engine)
    other_org, _ = org_with_lead(engine)

    with session_scope(engine) as session:
        record_payment(
            session,
            org_id=org_id,
            event=paid(org_id, event="e1", lead_id=lead_id, kind="checkout", payment_intent="pi_9"),
        )
        refunds = [
            # Running totals, as Stripe reports them on each charge.refunded; the third is late.
            paid(org_id, event=name, lead_id=None, kind="refund", status="refunded",
                 stripe_object_id="ch_9", payment_intent="pi_9", amount=total,
                 occurred_at=T0 + timedelta(days=day))
            for name, total, day in (("r1", 300, 1), ("r2", 1_000, 2), ("r3", 300, 3))
        ]  # fmt: skip
        for refund in refunds:
            assert record_payment(session, org_id=org_id, event=refund) is not None
        # The same charge refunded in another org's path: that org has no such payment.
        assert record_payment(session, org_id=other_org, event=refunds[0]) is None

    with Session(engine) as session:
        rows = payments(session, org_id)
        assert [(row.kind, row.amount, row.amount_refunded, row.lead_id) for row in rows] == [
            ("checkout", 1_000, None, lead_id),
            ("refund", 300, 300, lead_id),
            ("refund", 700, 1_000, lead_id),
            ("refund", 0, 300, lead_id),
        ]
        timeline = session.exec(
            select(TimelineEvent.summary).where(TimelineEvent.lead_id == lead_id)
        ).all()
        assert "Payment refunded 7.00 USD (refund)" in timeline


def test_the_same_event_twice_is_one_row(engine: Engine) -> None:
    org_id, lead_id = org_with_lead(engine)

    with session_scope(engine) as session:
        first = record_payment(
            session, org_id=org_id, event=paid(org_id, event="e1", lead_id=lead_id)
        )
        again = record_payment(
            session, org_id=org_id, event=paid(org_id, event="e1", lead_id=lead_id)
        )

    assert first is not None and again is not None
    assert first.payment_id == again.payment_id
    assert first.workflow_id == f"lead-{_contact_of(engine, lead_id)}"


def _contact_of(engine: Engine, lead_id: str) -> str:
    with Session(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead.contact_id


def test_a_subscription_invoice_finds_its_lead_through_the_subscription(engine: Engine) -> None:
    org_id, lead_id = org_with_lead(engine)

    with session_scope(engine) as session:
        assert record_subscription(
            session, org_id=org_id, event=subscription(lead_id, status="active", at=0)
        )
        invoice = paid(org_id, event="e1", lead_id=None, subscription="sub_1")
        recorded = record_payment(session, org_id=org_id, event=invoice)

    assert recorded is not None and recorded.lead_id == lead_id


def test_a_subscription_keeps_its_latest_event(engine: Engine) -> None:
    org_id, lead_id = org_with_lead(engine)
    ended = T0 + timedelta(days=40)

    with session_scope(engine) as session:
        # Updated (an hour in) arrives before created (at once), then deleted without metadata.
        record_subscription(
            session,
            org_id=org_id,
            event=subscription(lead_id, status="past_due", at=1, amount=2_500),
        )
        record_subscription(
            session, org_id=org_id, event=subscription(lead_id, status="active", at=0)
        )
    with session_scope(engine) as session:
        row = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        assert (row.status, row.amount) == ("past_due", 2_500)
        record_subscription(
            session,
            org_id=org_id,
            event=subscription(None, status="canceled", at=24 * 40, ended_at=ended),
        )
    with Session(engine) as session:
        row = session.exec(select(Subscription).where(Subscription.org_id == org_id)).one()
        assert (row.status, row.ended_at, row.lead_id) == ("canceled", ended, lead_id)
        summaries = session.exec(
            select(TimelineEvent.summary)
            .where(TimelineEvent.lead_id == lead_id)
            .order_by(col(TimelineEvent.at))
        ).all()
        assert summaries == [
            "Subscription past_due 25.00 USD every month",
            "Subscription canceled 20.00 USD every month",
        ]


def test_a_subscription_of_nobody_here_is_not_recorded(engine: Engine) -> None:
    org_id, _ = org_with_lead(engine)
    _, stranger_lead = org_with_lead(engine)

    with session_scope(engine) as session:
        assert (
            record_subscription(
                session, org_id=org_id, event=subscription(None, status="active", at=0)
            )
            is None
        )
        assert (
            record_subscription(
                session, org_id=org_id, event=subscription(stranger_lead, status="active", at=0)
            )
            is None
        )

    with Session(engine) as session:
        assert session.exec(select(Subscription).where(Subscription.org_id == org_id)).all() == []


def test_a_merged_customers_revenue_goes_to_their_first_lead(engine: Engine) -> None:
    org_id, first_lead = org_with_lead(engine)  # google, the older lead
    with session_scope(engine) as session:
        other = Contact(id=new_id("ct"), org_id=org_id)
        session.add(other)
        session.flush()
        later = Lead(
            id=new_id("lead"),
            org_id=org_id,
            contact_id=other.id,
            workflow_id=f"lead-{other.id}",
            stage="converted",
            source="facebook",
            created_at=utcnow() + timedelta(days=1),
        )
        session.add(later)
        session.flush()
        record_payment(session, org_id=org_id, event=paid(org_id, event="e1", lead_id=later.id))
        other_id = other.id
        keep_id = session.get(Lead, first_lead).contact_id  # type: ignore[union-attr]

    def by_source() -> list[tuple[str | None, int, int]]:
        with Session(engine) as session:
            lines = revenue_by_source(session, org_id=org_id, start=None, end=None, currency="usd")
            return [(line.source, line.revenue, line.customers) for line in lines]

    before = by_source()
    with session_scope(engine) as session:
        merge_contacts(session, org_id=org_id, keep_id=keep_id, other_id=other_id)

    assert before == [("facebook", 1_000, 1)]
    assert by_source() == [("google", 1_000, 1)]
