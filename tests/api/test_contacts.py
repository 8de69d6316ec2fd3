"""Merging two contacts an operator knows are one person."""

from __future__ import annotations

import uuid

import httpx

from tests.api.test_identity import lead_when_recorded, post, unique_phone
from tests.conftest import create_org


async def test_merge_moves_identities_and_leads_and_tells_their_workflows(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    email, phone = f"{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    by_email = await post(api, headers, name="Ada", email=email)
    by_phone = await post(api, headers, phone=phone)
    kept = (await lead_when_recorded(api, headers, by_email["lead_id"]))["contact"]["id"]
    other = (await lead_when_recorded(api, headers, by_phone["lead_id"]))["contact"]["id"]

    merged = await api.post(f"/v1/contacts/{kept}/merge", json={"other_id": other}, headers=headers)

    assert merged.status_code == 200, merged.text
    assert sorted(merged.json()["workflows_told"]) == sorted(
        {by_email["workflow_id"], by_phone["workflow_id"]}
    )
    for lead_id in (by_email["lead_id"], by_phone["lead_id"]):
        lead = await lead_when_recorded(api, headers, lead_id)
        assert lead["contact"]["id"] == kept
        assert (lead["contact"]["emails"], lead["contact"]["phones"]) == ([email], [phone])
        assert "contact_merged" in [event["kind"] for event in lead["timeline"]]
    again = await api.post(f"/v1/contacts/{kept}/merge", json={"other_id": other}, headers=headers)
    assert again.status_code == 404  # the other contact is gone


async def test_merge_refuses_itself_and_other_orgs_contacts(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    _, stranger = await create_org(api, name="Other")
    mine = await post(api, headers, email=f"{uuid.uuid4().hex[:8]}@example.com")
    theirs = await post(api, stranger, email=f"{uuid.uuid4().hex[:8]}@example.com")
    my_contact = (await lead_when_recorded(api, headers, mine["lead_id"]))["contact"]["id"]
    their_contact = (await lead_when_recorded(api, stranger, theirs["lead_id"]))["contact"]["id"]

    itself = await api.post(
        f"/v1/contacts/{my_contact}/merge", json={"other_id": my_contact}, headers=headers
    )
    foreign = await api.post(
        f"/v1/contacts/{my_contact}/merge", json={"other_id": their_contact}, headers=headers
    )

    assert itself.status_code == 422
    assert foreign.status_code == 404
    still = await lead_when_recorded(api, stranger, theirs["lead_id"])
    assert still["contact"]["id"] == their_contact
