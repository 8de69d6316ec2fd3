"""Stripe: payments for a lead (checkout, invoices, refunds) and subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlmodel import Session
from temporalio.client import Client

from api.deps import Database, DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.openapi import signed_body
from api.routes.webhooks.common import (
    JsonObject,
    JsonValue,
    Notify,
    NulFree,
    ProviderPayload,
    Routing,
    WebhookAck,
    handle,
    object_of,
    plain,
    validated,
    verified,
)
from api.signatures import verify_stripe
from api.temporal import tell
from models.services.payment_requests import settle_from_stripe
from models.services.payments import (
    REFUND,
    PaymentEvent,
    SubscriptionEvent,
    record_payment,
    record_subscription,
)
from models.tables import Org, utcnow
from models.values import WebhookProvider
from workflows.lead import LeadWorkflow, PaymentReceived
from workflows.payment import PaymentFollowupWorkflow, PaymentNews

router = APIRouter()

#: Stripe events that move money for a lead: (kind, status).
STRIPE_EVENTS: dict[str, tuple[str, str]] = {
    "checkout.session.completed": ("checkout", "paid"),
    "invoice.paid": ("invoice", "paid"),
    "invoice.payment_failed": ("invoice", "failed"),
    "charge.refunded": (REFUND, "refunded"),
}
#: Stripe events about a subscription: the subscription as it stands after each.
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)


_AMOUNT = "Minor units, an integer; anything else is recorded as no amount."
_LINK = "An id (or the expanded object): ties the event to a payment recorded earlier."


class StripeObject(ProviderPayload):
    """The event's object: a Checkout Session, an invoice, a charge or a subscription."""

    id: NulFree | None = Field(default=None, max_length=100)
    metadata: JsonObject | None = Field(
        default=None,
        description="`lead_id`: the lead the payment or subscription is for; "
        "`payment_request_id`: the payment request a Checkout Session pays.",
    )
    currency: NulFree | None = Field(default=None, max_length=8)
    amount_total: JsonValue = Field(default=None, description=_AMOUNT)
    amount_paid: JsonValue = Field(default=None, description=_AMOUNT)
    amount_due: JsonValue = Field(default=None, description=_AMOUNT)
    amount_refunded: JsonValue = Field(
        default=None, description=f"{_AMOUNT} The charge's refunds so far, in total."
    )
    payment_intent: JsonValue = Field(default=None, description=_LINK)
    subscription: JsonValue = Field(default=None, description=_LINK)
    cancellation_details: JsonObject | None = Field(
        default=None, description="A subscription's: `reason` it was cancelled."
    )
    payment_link: JsonValue = Field(
        default=None, description="A Checkout Session's payment link: ties it to its request."
    )
    invoice: JsonValue = Field(
        default=None, description="A Checkout Session's invoice: its own event is the payment."
    )
    parent: JsonValue = Field(
        default=None,
        description="An invoice's `subscription_details` (`subscription`, `metadata.lead_id`).",
    )
    status: JsonValue = Field(default=None, description="A subscription's status.")
    items: JsonValue = Field(
        default=None,
        description="A subscription's items: `data[].price` (`unit_amount`, `recurring."
        "interval`, `recurring.interval_count`) and `data[].quantity`.",
    )
    start_date: JsonValue = Field(default=None, description="Unix seconds.")
    ended_at: JsonValue = Field(default=None, description="Unix seconds.")


class StripeData(ProviderPayload):
    """What the event is about."""

    object: StripeObject


class StripeEvent(ProviderPayload):
    """A Stripe event."""

    id: NulFree = Field(min_length=1, max_length=100)
    type: NulFree = Field(description="Other types than these are acknowledged and ignored.")
    created: JsonValue = Field(
        default=None, description="Unix seconds: when the payment or change happened."
    )
    data: StripeData


#: The contract of ``POST /v1/webhooks/stripe/{org_id}`` beyond its path.
_REQUEST = signed_body(
    StripeEvent,
    media_type="application/json",
    headers=[
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256> of the timestamp and body "
            "(5 minutes' tolerance).",
        }
    ],
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    """A string field, or the id of an expanded object, if non-empty and id-sized (Stripe's
    ids are far shorter than 100 characters; anything longer is no id of theirs)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 100 else None


def _moment(value: Any) -> datetime | None:
    """Unix seconds as a UTC time (``None`` unless a plausible integer)."""
    seconds = _int(value)
    if seconds is None or not 0 < seconds < 32_503_680_000:  # before the year 3000
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _lead_id(obj: dict[str, Any]) -> str | None:
    """The ``lead_id`` keepwarm put in the object's metadata, or in the subscription's
    metadata an invoice carries (``parent.subscription_details``; before API 2025-03-31
    ``subscription_details``)."""
    details = object_of(object_of(obj.get("parent")).get("subscription_details"))
    for metadata in (
        obj.get("metadata"),
        details.get("metadata"),
        object_of(obj.get("subscription_details")).get("metadata"),
    ):
        lead_id = object_of(metadata).get("lead_id")
        if lead_id:
            return str(lead_id)
    return None


def _payment(parsed: StripeEvent, *, kind: str, status: str) -> PaymentEvent:
    """The payment an event reports: its object, amount (paid, due or refunded, in minor
    units), currency, time, the lead in its metadata and its links to other payments."""
    obj = parsed.data.object.model_dump()
    amount_field = {
        "checkout": "amount_total",
        REFUND: "amount_refunded",
        "invoice": "amount_paid" if status == "paid" else "amount_due",
    }[kind]
    details = object_of(object_of(obj.get("parent")).get("subscription_details"))
    return PaymentEvent(
        stripe_event_id=parsed.id,
        stripe_object_id=str(obj.get("id") or ""),
        kind=kind,
        status=status,
        amount=_int(obj.get(amount_field)),
        currency=obj.get("currency"),
        lead_id=_lead_id(obj),
        occurred_at=_moment(parsed.created),
        payment_intent=_text(obj.get("payment_intent")),
        subscription=_text(obj.get("subscription")) or _text(details.get("subscription")),
        invoice=_text(obj.get("invoice")) if kind == "checkout" else None,
    )


#: Stripe's billing intervals (the revenue report spreads each over a month).
_INTERVALS = frozenset({"day", "week", "month", "year"})


def period_price(obj: dict[str, Any]) -> tuple[int | None, str | None, int]:
    """One billing period's price of a subscription (every item's unit amount times its
    quantity, in minor units), its interval and interval count. Metered or tiered items have
    no unit amount and add nothing; a subscription without ``items`` falls back on its
    legacy ``plan`` and ``quantity``."""
    items = object_of(obj.get("items")).get("data")
    lines = [
        (object_of(item).get("price") or object_of(item).get("plan"), object_of(item))
        for item in (items if isinstance(items, list) else [])
    ]
    if not lines and isinstance(obj.get("plan"), dict):
        lines = [(obj["plan"], obj)]
    total: int | None = None
    interval: str | None = None
    count = 1
    for price_value, holder in lines:
        price = object_of(price_value)
        recurring = object_of(price.get("recurring")) or price  # a plan holds them itself
        unit = _int(price.get("unit_amount"))
        if unit is None:
            unit = _int(price.get("amount"))
        period = recurring.get("interval")
        if unit is None or period not in _INTERVALS:
            continue
        quantity = _int(holder.get("quantity"))
        total = (total or 0) + unit * (1 if quantity is None else quantity)
        interval = str(period)
        count = max(1, _int(recurring.get("interval_count")) or 1)
    return total, interval, count


def _subscription(parsed: StripeEvent) -> SubscriptionEvent | None:
    """The subscription a ``customer.subscription.*`` event reports, if it names one."""
    obj = parsed.data.object.model_dump()
    stripe_id = _text(obj.get("id"))
    if stripe_id is None:
        return None
    status = _text(obj.get("status")) or "unknown"
    if parsed.type == "customer.subscription.deleted":
        status = "canceled"
    occurred = _moment(parsed.created)
    ended = _moment(obj.get("ended_at"))
    if status == "canceled" and ended is None:
        ended = occurred or _moment(obj.get("canceled_at"))
    amount, interval, count = period_price(obj)
    return SubscriptionEvent(
        stripe_subscription_id=stripe_id,
        status=status[:32],
        lead_id=_lead_id(obj),
        currency=_text(obj.get("currency")),
        amount=amount,
        interval=interval,
        interval_count=count,
        started_at=_moment(obj.get("start_date")) or _moment(obj.get("created")) or occurred,
        ended_at=ended,
        occurred_at=occurred,
        cancellation_reason=(_text(object_of(obj.get("cancellation_details")).get("reason")) or "")[
            :64
        ]
        or None,
    )


@router.post("/stripe/{org_id}", openapi_extra=_REQUEST)
async def stripe_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """A Stripe event, signed with ``STRIPE_WEBHOOK_SECRET``."""
    body = await request.body()
    event = verified(
        request,
        WebhookProvider.STRIPE,
        org_id,
        lambda: verify_stripe(
            secret=plain(settings.stripe_webhook_secret),
            body=body,
            signature=request.headers.get("stripe-signature"),
        ),
    )
    raw = event.to_dict()
    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.STRIPE,
        payload=raw,
        routing=routing(raw, database=database),
    )


def routing(payload: dict[str, Any], *, database: Database) -> Routing | None:
    """A Stripe event that moves money for a lead (its payment recorded on the lead, and the
    lead's workflow told) or changes a subscription (recorded for the revenue report)."""
    parsed = validated(StripeEvent, payload)
    if parsed.type in SUBSCRIPTION_EVENTS:
        subscription = _subscription(parsed)
        if subscription is None:
            return None

        def record(session: Session, org: Org) -> Notify:
            assert subscription is not None
            record_subscription(session, org_id=org.id, event=subscription)
            return None

        return Routing(event_id=parsed.id, event_type=parsed.type, apply=record)
    known = STRIPE_EVENTS.get(parsed.type)
    if known is None:
        return None
    kind, status = known
    payment = _payment(parsed, kind=kind, status=status)

    obj = parsed.data.object.model_dump()
    request_id = _text(object_of(obj.get("metadata")).get("payment_request_id"))
    link_id = _text(obj.get("payment_link"))
    settles = kind in ("checkout", "invoice") and status in ("paid", "failed")

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_payment(session, org_id=org.id, event=payment)
        settled = (
            settle_from_stripe(
                session,
                org_id=org.id,
                request_id=request_id,
                link_id=link_id,
                paid=status == "paid",
                at=payment.occurred_at or utcnow(),
            )
            if settles and (request_id or link_id)
            else None
        )
        lead_workflow = recorded.workflow_id if recorded is not None else None
        if lead_workflow is None and settled is None:
            return None
        message = (
            PaymentReceived(payment_id=recorded.payment_id, status=status)
            if recorded is not None
            else None
        )

        async def notify(client: Client) -> None:
            if settled is not None:
                await tell(
                    client,
                    settled.workflow_id,
                    PaymentFollowupWorkflow.payment_changed,
                    PaymentNews(what=status),
                )
            if lead_workflow is not None and message is not None:
                await tell(client, lead_workflow, LeadWorkflow.payment_received, message)

        return notify

    return Routing(event_id=parsed.id, event_type=parsed.type, apply=apply)
