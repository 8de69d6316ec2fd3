"""Stripe's events as Stripe sends them, signed, through the webhook to the revenue report:
a checkout and its refund (found by its PaymentIntent), a subscription's invoice (its lead in
the subscription's metadata the invoice carries), a failed one, subscriptions created and
deleted."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from api.routes.webhooks.stripe import period_price
from tests.channels.conftest import STRIPE_SECRET, Live, webhook_url
from tests.conftest import eventually

DAY = 86_400


def _subscription(
    stripe_id: str, lead_id: str, *, status: str, price: dict[str, Any], quantity: int
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": stripe_id,
        "object": "subscription",
        "status": status,
        "currency": "usd",
        "created": now - DAY,
        "start_date": now - DAY,
        "ended_at": None,
        "canceled_at": None,
        "metadata": {"lead_id": lead_id},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{stripe_id}",
                    "object": "subscription_item",
                    "quantity": quantity,
                    "price": price,
                }
            ],
        },
    }


def _price_object(amount: int, interval: str) -> dict[str, Any]:
    return {
        "id": f"price_{amount}_{interval}",
        "object": "price",
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
    }


async def test_stripe_events_make_the_revenue_report(live: Live) -> None:
    org_id, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "email": "ada@example.com", "source": "google"},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def recorded() -> bool:
        return (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).status_code == 200

    await eventually(recorded, within=15)
    url = webhook_url("stripe", org_id)
    yearly = _subscription(
        "sub_y", lead_id, status="active", price=_price_object(6_000, "year"), quantity=2
    )
    monthly = _subscription(
        "sub_m", lead_id, status="active", price=_price_object(2_500, "month"), quantity=1
    )
    events: list[tuple[str, dict[str, Any]]] = [
        ("checkout.session.completed", {
            "id": "cs_1", "object": "checkout.session", "mode": "payment", "amount_total": 4_900,
            "currency": "usd", "payment_intent": "pi_1", "invoice": None,
            "metadata": {"lead_id": lead_id},
        }),
        # Refunds carry no metadata of ours: the PaymentIntent ties this one to the checkout.
        ("charge.refunded", {
            "id": "ch_1", "object": "charge", "amount": 4_900, "amount_refunded": 900,
            "currency": "usd", "payment_intent": "pi_1", "metadata": {}, "refunded": False,
        }),
        ("customer.subscription.created", yearly),
        ("customer.subscription.created", monthly),
        # API 2025-03-31 and later: the subscription's metadata under parent.
        ("invoice.paid", {
            "id": "in_1", "object": "invoice", "amount_paid": 12_000, "currency": "usd",
            "metadata": {}, "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": "sub_y", "metadata": {"lead_id": lead_id}}},
        }),
        # No lead in sight but the subscription, recorded above.
        ("invoice.payment_failed", {
            "id": "in_2", "object": "invoice", "amount_due": 2_500, "currency": "usd",
            "metadata": {}, "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": "sub_m", "metadata": {}}},
        }),
        ("customer.subscription.deleted",
         monthly | {"status": "canceled", "ended_at": int(time.time()),
                    "cancellation_details": {"reason": "payment_failed", "comment": None}}),
    ]  # fmt: skip
    for event_type, data_object in events:
        hook = live.fake.stripe_event(
            url, type=event_type, data_object=data_object, secret=STRIPE_SECRET
        )
        answer = await live.deliver(hook)
        assert answer.status_code == 200, (event_type, answer.text)

    report = (await live.api.get("/v1/revenue", headers=headers)).json()

    assert report["currency"] == "usd"
    assert (report["collected"], report["refunded"]) == (4_900 + 12_000, 900)
    assert (report["paid_payments"], report["failed_payments"]) == (2, 1)
    assert report["payment_success_rate"] == 0.6667
    assert report["by_source"] == [
        {"source": "google", "revenue": 16_000, "customers": 1, "ltv": 16_000.0}
    ]
    # sub_y bills 2 x 6,000 a year (1,000 a month); sub_m was deleted: one of two churned.
    assert report["subscriptions"] == {"active": 1, "churned": 1, "churn_rate": 0.5, "mrr": 1_000.0}
    table = (await live.api.get("/v1/revenue", headers=headers | {"Accept": "text/csv"})).text
    assert list(csv.DictReader(io.StringIO(table))) == [
        {"source": "google", "revenue": "16000", "customers": "1", "ltv": "16000.0"}
    ]
    timeline = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()["timeline"]
    cancelled = [e["summary"] for e in timeline if e["summary"].startswith("Subscription canceled")]
    assert cancelled == ["Subscription canceled 25.00 USD every month (payment failed)"]
    pipeline = (await live.api.get("/v1/pipeline", headers=headers)).json()
    assert [(line["source"], line["revenue"]) for line in pipeline["by_source"]] == [
        ("google", 16_000)
    ]


def test_a_subscriptions_price_per_period() -> None:
    price = _price_object(1_000, "week")
    metered = {"id": "price_m", "unit_amount": None, "recurring": {"interval": "week"}}
    with_items = {
        "items": {"data": [{"price": price, "quantity": 3}, {"price": metered, "quantity": 1}]}
    }
    legacy = {"plan": {"amount": 9_900, "interval": "month", "interval_count": 3}, "quantity": 2}

    assert period_price(with_items) == (3_000, "week", 1)
    assert period_price(legacy) == (19_800, "month", 3)
    assert period_price({"items": {"data": [{"price": metered}]}}) == (None, None, 1)
    assert period_price({"items": "nonsense"}) == (None, None, 1)
