"""Payments and subscriptions as Stripe reported them: one payment row per Stripe event, one
subscription row per Stripe subscription."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from models.database import insert_once, locking
from models.tables import Lead, Payment, Subscription


def payment_of_event(session: Session, *, org_id: str, stripe_event_id: str) -> Payment | None:
    """The org's payment recorded for a Stripe event, if any."""
    return session.exec(
        select(Payment).where(Payment.org_id == org_id, Payment.stripe_event_id == stripe_event_id)
    ).first()


def refunded_so_far(session: Session, *, org_id: str, charge_id: str) -> int:
    """The most of a charge's running refund total recorded yet (0 before its first refund)."""
    total = session.execute(
        select(func.max(col(Payment.amount_refunded))).where(
            col(Payment.org_id) == org_id,
            col(Payment.stripe_object_id) == charge_id,
            col(Payment.kind) == "refund",
        )
    ).scalar()
    return int(total or 0)


def lead_of_payment_intent(session: Session, *, org_id: str, payment_intent: str) -> str | None:
    """The lead of the org's payment made through a PaymentIntent, if it has one."""
    return session.exec(
        select(Payment.lead_id).where(
            Payment.org_id == org_id,
            Payment.payment_intent == payment_intent,
            col(Payment.lead_id).is_not(None),
        )
    ).first()


def subscription_of(
    session: Session, *, org_id: str, stripe_subscription_id: str, for_update: bool = False
) -> Subscription | None:
    """The org's row for a Stripe subscription (locked until the transaction ends with
    ``for_update``)."""
    query = select(Subscription).where(
        Subscription.org_id == org_id,
        Subscription.stripe_subscription_id == stripe_subscription_id,
    )
    if for_update:
        query = locking(query)
    return session.exec(query).first()


def add_subscription(session: Session, *, row: Subscription) -> tuple[Subscription, bool]:
    """Insert ``row`` unless the org already has its Stripe subscription: the row and whether
    it is new."""
    return insert_once(
        session,
        row,
        Subscription.org_id == row.org_id,
        Subscription.stripe_subscription_id == row.stripe_subscription_id,
    )


def first_lead_source(session: Session, *, contact_id: str) -> str | None:
    """The source of the contact's first lead (the oldest; ties: the lower id)."""
    return session.exec(
        select(Lead.source)
        .where(Lead.contact_id == contact_id)
        .order_by(col(Lead.created_at), col(Lead.id))
        .limit(1)
    ).first()


def reattribute_payments(session: Session, *, org_id: str, contact_id: str) -> None:
    """Give the contact's payments the source of their first lead again (after a merge brought
    in leads, one of them maybe older)."""
    session.execute(
        update(Payment)
        .where(col(Payment.org_id) == org_id, col(Payment.contact_id) == contact_id)
        .values(source=first_lead_source(session, contact_id=contact_id))
    )
