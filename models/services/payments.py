"""Stripe's word on money, recorded once per event on the org's lead: payments (paid, failed,
refunded) and subscriptions (created, updated, deleted).

Whose money it is comes from what keepwarm itself put in Stripe's metadata (``lead_id``), or
from a payment or subscription of the same org recorded earlier: the org in the webhook's path
is not covered by Stripe's signature, so it never decides alone.

Locks: the lead (a refund reads the charge's earlier refunds under it), or the subscription
row; never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from models.database import lock
from models.store.leads import is_open
from models.store.payments import (
    add_subscription,
    first_lead_source,
    lead_of_payment_intent,
    payment_of_event,
    refunded_so_far,
    subscription_of,
)
from models.store.timeline import add_to_timeline
from models.tables import Lead, Payment, Subscription, utcnow
from models.values import TimelineKind, new_id

#: The payment kind of a refund event (its row's ``amount`` is what that event refunded).
REFUND = "refund"


@dataclass(frozen=True, kw_only=True)
class PaymentEvent:
    """A Stripe event about money, reduced to what a lead's history and the revenue report
    need. Amounts are in the currency's smallest unit, as Stripe sends them."""

    stripe_event_id: str
    stripe_object_id: str
    kind: str
    status: str
    #: Paid or due; for a refund, the charge's running refund total (``amount_refunded``).
    amount: int | None
    currency: str | None
    lead_id: str | None
    #: When Stripe says it happened (the event's ``created``); now if it doesn't say.
    occurred_at: datetime | None = None
    payment_intent: str | None = None
    subscription: str | None = None
    #: The invoice a Checkout Session created (that invoice's own event carries the money).
    invoice: str | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRecorded:
    """The payment row and the lead's workflow, when the lead is this org's and still open."""

    payment_id: str
    lead_id: str | None
    workflow_id: str | None


def _lead_of(
    session: Session,
    *,
    org_id: str,
    lead_id: str | None,
    payment_intent: str | None = None,
    subscription: str | None = None,
) -> Lead | None:
    """The org's lead the money is for: the one in the metadata, else the one of the org's
    earlier payment through the same PaymentIntent or of the same subscription."""
    candidate = lead_id
    if candidate is None and payment_intent:
        candidate = lead_of_payment_intent(session, org_id=org_id, payment_intent=payment_intent)
    if candidate is None and subscription:
        row = subscription_of(session, org_id=org_id, stripe_subscription_id=subscription)
        candidate = row.lead_id if row is not None else None
    lead = session.get(Lead, candidate) if candidate else None
    return lead if lead is not None and lead.org_id == org_id else None


def record_payment(session: Session, *, org_id: str, event: PaymentEvent) -> PaymentRecorded | None:
    """One payment row per Stripe event, on the org's lead (see the module docstring).

    ``None`` (nothing recorded) unless the lead is this org's. A refund's row holds what that
    event refunded: its running total less the most recorded for the charge before (Stripe
    reports the total on every ``charge.refunded``), never below zero, so a late or repeated
    event adds nothing.
    """
    found = _lead_of(
        session,
        org_id=org_id,
        lead_id=event.lead_id,
        payment_intent=event.payment_intent,
        subscription=event.subscription,
    )
    if found is None:
        return None
    # Refunds of one charge are counted against each other under the lead's lock.
    lead = lock(session, Lead, found.id) if event.kind == REFUND else found
    assert lead is not None
    payment = payment_of_event(session, org_id=org_id, stripe_event_id=event.stripe_event_id)
    if payment is None:
        amount, refunded_total = event.amount, None
        if event.kind == REFUND and event.amount is not None:
            refunded_total = event.amount
            before = refunded_so_far(session, org_id=org_id, charge_id=event.stripe_object_id)
            amount = max(0, refunded_total - before)
        payment = Payment(
            id=new_id("pay"),
            org_id=org_id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            source=first_lead_source(session, contact_id=lead.contact_id),
            stripe_event_id=event.stripe_event_id,
            stripe_object_id=event.stripe_object_id,
            kind=event.kind,
            status=event.status,
            amount=amount,
            currency=event.currency,
            amount_refunded=refunded_total,
            payment_intent=event.payment_intent,
            subscription=event.subscription,
            invoice=event.invoice,
            occurred_at=event.occurred_at or utcnow(),
        )
        session.add(payment)
        session.flush()
        money = f" {_money(amount, event.currency)}" if amount is not None else ""
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.PAYMENT,
            summary=f"Payment {event.status}{money} ({event.kind})",
            data={"payment_id": payment.id, "stripe_object_id": event.stripe_object_id},
        )
    open_workflow = lead.workflow_id if is_open(lead.stage) else None
    return PaymentRecorded(payment_id=payment.id, lead_id=lead.id, workflow_id=open_workflow)


def _money(amount: int, currency: str | None) -> str:
    # Two decimals for display only; the row keeps Stripe's smallest unit.
    return f"{amount / 100:.2f} {(currency or '').upper()}".rstrip()


@dataclass(frozen=True, kw_only=True)
class SubscriptionEvent:
    """A ``customer.subscription.*`` event: the subscription as it stands after it."""

    stripe_subscription_id: str
    status: str
    lead_id: str | None
    currency: str | None
    #: One billing period's price (every item's unit amount times its quantity), smallest unit.
    amount: int | None
    interval: str | None
    interval_count: int
    started_at: datetime | None
    ended_at: datetime | None
    #: When Stripe says it happened (the event's ``created``); now if it doesn't say.
    occurred_at: datetime | None = None
    #: ``cancellation_details.reason`` of a cancelled (or cancelling) subscription.
    cancellation_reason: str | None = None


def record_subscription(
    session: Session, *, org_id: str, event: SubscriptionEvent
) -> Subscription | None:
    """The org's subscription row as ``event`` leaves it; ``None`` (nothing recorded) if
    neither its metadata nor an earlier event ties it to a lead of this org.

    An event older than the one the row last took changes nothing (Stripe doesn't promise
    order). A new row, and a change of status, go on the lead's timeline.
    """
    at = event.occurred_at or utcnow()
    row = subscription_of(
        session, org_id=org_id, stripe_subscription_id=event.stripe_subscription_id, for_update=True
    )
    lead = _lead_of(session, org_id=org_id, lead_id=event.lead_id)
    if row is None:
        if lead is None:
            return None
        row, new = add_subscription(
            session,
            row=Subscription(
                id=new_id("sub"),
                org_id=org_id,
                lead_id=lead.id,
                stripe_subscription_id=event.stripe_subscription_id,
                status=event.status,
                event_at=at,
            ),
        )
        if not new:  # another delivery inserted it first
            row = subscription_of(
                session,
                org_id=org_id,
                stripe_subscription_id=event.stripe_subscription_id,
                for_update=True,
            )
            assert row is not None
        previous_status = None if new else row.status
    else:
        previous_status = row.status
    if previous_status is not None and at < row.event_at:
        return row
    row.status = event.status
    row.currency = event.currency
    row.amount = event.amount
    row.interval = event.interval
    row.interval_count = max(1, event.interval_count)
    row.started_at = event.started_at
    row.ended_at = event.ended_at
    row.cancellation_reason = event.cancellation_reason
    row.event_at = at
    row.updated_at = utcnow()
    if row.lead_id is None and lead is not None:
        row.lead_id = lead.id
    session.add(row)
    session.flush()
    if row.lead_id is not None and event.status != previous_status:
        price = (
            f" {_money(event.amount, event.currency)} every "
            f"{'' if row.interval_count == 1 else f'{row.interval_count} '}{event.interval}"
            if event.amount is not None and event.interval
            else ""
        )
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=row.lead_id,
            kind=TimelineKind.PAYMENT,
            summary=f"Subscription {event.status}{price}"
            + (
                f" ({event.cancellation_reason.replace('_', ' ')})"
                if event.cancellation_reason
                else ""
            ),
            data={"subscription_id": row.id, "stripe_subscription_id": row.stripe_subscription_id},
        )
    return row
