"""Carts: abandoned carts are chased, purchases convert, and a cart is the same person."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_identity import lead_when_recorded, post, unique_phone
from tests.conftest import create_org, eventually


def cart(email: str | None = None, phone: str | None = None, **extra: Any) -> dict[str, Any]:
    customer = {k: v for k, v in {"email": email, "phone": phone}.items() if v}
    return {
        "event_id": uuid.uuid4().hex,
        "customer": customer,
        "status": "abandoned",
        "value": 180.0,
        "items": [{"sku": "deep-clean", "qty": 1}],
        "url": "https://shop.example/cart/1",
        **extra,
    }


async def test_a_form_then_an_abandoned_cart_is_one_contact_and_one_lead(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    email, phone = f"{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    form = await post(api, headers, name="Ada", email=email)
    await lead_when_recorded(api, headers, form["lead_id"])

    answer = await api.post("/v1/events/cart", json=cart(email, phone), headers=headers)

    assert answer.status_code == 202, answer.text
    assert (answer.json()["lead_id"], answer.json()["duplicate"]) == (form["lead_id"], True)

    async def linked() -> dict[str, Any] | None:
        lead = await lead_when_recorded(api, headers, form["lead_id"])
        contact: dict[str, Any] = lead["contact"]
        return contact if contact["phones"] else None

    contact = await eventually(linked, within=15)
    assert (contact["emails"], contact["phones"]) == ([email], [phone])


async def test_an_abandoned_cart_runs_the_cart_recovery_sequence(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    answer = (
        await api.post(
            "/v1/events/cart", json=cart(f"{uuid.uuid4().hex[:8]}@example.com"), headers=headers
        )
    ).json()
    lead = await lead_when_recorded(api, headers, answer["lead_id"])

    assert (lead["source"], lead["value"]) == ("cart", 180.0)

    async def recovering() -> dict[str, Any] | None:
        detail = await lead_when_recorded(api, headers, answer["lead_id"])
        live: dict[str, Any] = detail.get("live") or {}
        return live if "(step 1 of 3)" in (live.get("waiting_reason") or "") else None

    # cart_recovery: an email an hour after the first touch, then an SMS, then an email.
    live = await eventually(recovering, within=15)
    assert live["next_action"] == "send the next email (step 1 of 3)"
    assert live["attempts"] == {"used": 1, "cap": 4}


async def test_a_purchase_converts_the_open_lead(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    started = (await api.post("/v1/events/cart", json=cart(email), headers=headers)).json()
    await lead_when_recorded(api, headers, started["lead_id"])

    bought = await api.post(
        "/v1/events/cart", json=cart(email, status="purchased"), headers=headers
    )

    assert bought.status_code == 202
    assert bought.json()["lead_id"] == started["lead_id"]

    async def converted() -> bool:
        lead = await lead_when_recorded(api, headers, started["lead_id"])
        return bool(lead["stage"] == "converted")

    await eventually(converted, within=15)


async def test_bad_cart_events_are_refused(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    bad = [
        cart("a@example.com", status="emptied"),
        cart(),  # nobody to reach
        cart("a@example.com", value=-1),
        {k: v for k, v in cart("a@example.com").items() if k != "event_id"},
    ]

    answers = [await api.post("/v1/events/cart", json=body, headers=headers) for body in bad]

    assert [a.status_code for a in answers] == [422] * 4
    assert (await api.get("/v1/leads", headers=headers)).json()["items"] == []
