"""Identity: one person is one contact across emails, phones and platform ids; conflicts are
flagged, never merged."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import create_org, eventually

Headers = dict[str, str]


def unique_phone() -> str:
    return f"+4479111{uuid.uuid4().int % 100_000:05d}"


async def lead_when_recorded(api: httpx.AsyncClient, headers: Headers, lead_id: str) -> Any:
    async def recorded() -> dict[str, Any] | None:
        found = await api.get(f"/v1/leads/{lead_id}", headers=headers)
        if found.status_code != 200:
            return None
        body: dict[str, Any] = found.json()
        return body

    return await eventually(recorded, within=15)


async def post(api: httpx.AsyncClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/leads", json=body, headers=headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_form_then_a_cart_with_phone_and_the_same_email_is_one_contact(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    email, phone = f"{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    first = await post(api, headers, name="Ada", email=email, source="website_form")
    await lead_when_recorded(api, headers, first["lead_id"])

    second = await post(api, headers, email=email, phone=phone, source="cart")

    assert (second["lead_id"], second["duplicate"]) == (first["lead_id"], True)

    async def linked() -> dict[str, Any] | None:
        lead = await lead_when_recorded(api, headers, first["lead_id"])
        contact: dict[str, Any] = lead["contact"]
        return contact if contact["phones"] else None

    contact = await eventually(linked, within=15)
    assert (contact["emails"], contact["phones"]) == ([email], [phone])


async def test_an_email_of_one_contact_and_a_phone_of_another_are_flagged_not_merged(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    email, phone = f"{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    by_email = await post(api, headers, name="Ada", email=email)
    by_phone = await post(api, headers, name="Ada L", phone=phone)
    ada = await lead_when_recorded(api, headers, by_email["lead_id"])
    other = await lead_when_recorded(api, headers, by_phone["lead_id"])

    both = await post(api, headers, email=email, phone=phone)

    async def flagged() -> dict[str, Any] | None:
        lead = await lead_when_recorded(api, headers, both["lead_id"])
        kinds = [event["kind"] for event in lead["timeline"]]
        return lead if "identity_conflict" in kinds else None

    lead = await eventually(flagged, within=15)
    [conflict] = [e for e in lead["timeline"] if e["kind"] == "identity_conflict"]
    assert "not merged" in conflict["summary"]
    # Each identity stays with the contact that held it.
    ada = await lead_when_recorded(api, headers, by_email["lead_id"])
    other = await lead_when_recorded(api, headers, by_phone["lead_id"])
    assert (ada["contact"]["emails"], ada["contact"]["phones"]) == ([email], [])
    assert (other["contact"]["emails"], other["contact"]["phones"]) == ([], [phone])


async def test_a_platform_id_links_submissions_with_different_emails(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    first = await post(
        api,
        headers,
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        fields={"stripe_customer_id": customer},
    )
    await lead_when_recorded(api, headers, first["lead_id"])
    new_email = f"{uuid.uuid4().hex[:8]}@example.com"

    second = await post(api, headers, email=new_email, fields={"stripe_customer_id": customer})

    assert second["lead_id"] == first["lead_id"]

    async def linked() -> dict[str, Any] | None:
        lead = await lead_when_recorded(api, headers, first["lead_id"])
        contact: dict[str, Any] = lead["contact"]
        return contact if new_email in contact["emails"] else None

    contact = await eventually(linked, within=15)
    assert {"kind": "stripe_customer", "value": customer} in [
        {"kind": i["kind"], "value": i["value"]} for i in contact["identities"]
    ]
