"""Payment requests in live mode against the fake Stripe and Twilio: one payment link even
when its creation is retried after a crash, sent by SMS, closed by the signed
``checkout.session.completed``; a failed invoice payment starts the dunning steps."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.channels.conftest import STRIPE_SECRET, Live, webhook_url
from tests.conftest import eventually

Json = dict[str, Any]


async def lead_with_phone(live: Live, headers: dict[str, str]) -> tuple[str, str]:
    phone = f"+4479111{uuid.uuid4().int % 100000:05d}"
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": phone, "consent": {"sms": True}, "source": "google"},
        headers=headers,
    )
    lead_id: str = accepted.json()["lead_id"]

    async def recorded() -> bool:
        return (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).status_code == 200

    await eventually(recorded, within=15)
    return lead_id, phone


def texts_to(live: Live, phone: str) -> list[str]:
    return [
        request.form["Body"]
        for request in live.fake.requests("twilio")
        if request.method == "POST" and request.form and request.form.get("To") == phone
    ]


async def state(live: Live, headers: dict[str, str], request_id: str) -> Json:
    answer = await live.api.get(f"/v1/payment-requests/{request_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


async def test_a_live_request_sends_one_link_and_ends_when_stripe_says_paid(live: Live) -> None:
    org_id, headers = await live.org()
    lead_id, phone = await lead_with_phone(live, headers)
    body = {
        "event_id": "quote-7",
        "amount": 12_050,
        "currency": "USD",
        "description": "Deep clean",
        "due_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
    }

    made = await live.api.post(f"/v1/leads/{lead_id}/payment-requests", json=body, headers=headers)
    again = await live.api.post(f"/v1/leads/{lead_id}/payment-requests", json=body, headers=headers)

    assert made.status_code == 201, made.text
    created = made.json()
    assert created["url"].startswith("https://buy.stripe.com/")
    assert (again.json()["payment_request_id"], again.json()["duplicate"]) == (
        created["payment_request_id"],
        True,
    )
    links = [
        request
        for request in live.fake.requests("stripe")
        if request.method == "POST" and request.path.endswith("/payment_links")
    ]
    assert len(links) == 1
    assert links[0].idempotency_key == f"payment-link/{created['payment_request_id']}"
    sent = await eventually(lambda: _with(texts_to(live, phone), created["url"]), within=20)
    assert "$120.50" in sent[0]

    session = {
        "id": "cs_paid_1",
        "object": "checkout.session",
        "mode": "payment",
        "amount_total": 12_050,
        "currency": "usd",
        "payment_intent": "pi_paid_1",
        "metadata": {"lead_id": lead_id, "payment_request_id": created["payment_request_id"]},
    }
    hook = live.fake.stripe_event(
        webhook_url("stripe", org_id),
        type="checkout.session.completed",
        data_object=session,
        secret=STRIPE_SECRET,
    )
    assert (await live.deliver(hook)).status_code == 200

    async def paid() -> Json | None:
        found = await state(live, headers, created["payment_request_id"])
        return found if found["status"] == "paid" else None

    shown = await eventually(paid, within=20)
    assert shown["amount"] == 12_050 and shown["mode"] == "live"
    thanks = await eventually(lambda: _with(texts_to(live, phone), "Thank you"), within=20)
    assert "$120.50" in thanks[0]
    handle = live.client.get_workflow_handle(created["workflow_id"])
    assert (await asyncio.wait_for(handle.result(), 20))["outcome"] == "paid"
    lead = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert lead["stage"] == "converted"
    revenue = (await live.api.get("/v1/revenue", headers=headers)).json()
    assert revenue["collected"] == 12_050


async def test_a_failed_invoice_payment_starts_the_dunning_steps(live: Live) -> None:
    org_id, headers = await live.org()
    lead_id, phone = await lead_with_phone(live, headers)
    made = await live.api.post(
        f"/v1/leads/{lead_id}/payment-requests",
        json={"event_id": "inv-1", "amount": 9_900, "currency": "gbp", "description": "Boiler"},
        headers=headers,
    )
    created = made.json()
    await eventually(lambda: _with(texts_to(live, phone), created["url"]), within=20)

    invoice = {
        "id": "in_failed_1",
        "object": "invoice",
        "amount_due": 9_900,
        "currency": "gbp",
        "metadata": {"lead_id": lead_id, "payment_request_id": created["payment_request_id"]},
    }
    hook = live.fake.stripe_event(
        webhook_url("stripe", org_id),
        type="invoice.payment_failed",
        data_object=invoice,
        secret=STRIPE_SECRET,
    )
    assert (await live.deliver(hook)).status_code == 200
    # Stripe sends an event again when it isn't sure it arrived: counted once.
    assert (await live.deliver(hook)).status_code == 200

    notice = await eventually(lambda: _with(texts_to(live, phone), "didn't go through"), within=20)
    assert "£99.00" in notice[0]
    shown = await state(live, headers, created["payment_request_id"])
    assert (shown["status"], shown["failures"]) == ("open", 1)
    await live.client.get_workflow_handle(created["workflow_id"]).terminate("test finished")


async def _with(texts: list[str], words: str) -> list[str] | None:
    found = [text for text in texts if words in text]
    return found or None
