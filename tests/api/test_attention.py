"""The attention queue: identity conflicts wait there for a person, who merges or resolves."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.api.test_identity import lead_when_recorded, post, unique_phone
from tests.conftest import create_org, eventually


async def conflict(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Ada by email, another contact by phone, then one submission with both."""
    email, phone = f"{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    by_email = await post(api, headers, name="Ada", email=email)
    by_phone = await post(api, headers, name="Ada L", phone=phone)
    ada = await lead_when_recorded(api, headers, by_email["lead_id"])
    other = await lead_when_recorded(api, headers, by_phone["lead_id"])
    both = await post(api, headers, email=email, phone=phone)

    async def queued() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await api.get("/v1/attention", headers=headers)).json()[
            "items"
        ]
        return items or None

    [item] = await eventually(queued, within=15)
    return {"item": item, "ada": ada, "other": other, "both": both}


async def test_an_identity_conflict_waits_in_the_queue_until_the_contacts_are_merged(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    found = await conflict(api, headers)
    item, ada, other = found["item"], found["ada"], found["other"]

    assert (item["reason"], item["priority"], item["status"]) == (
        "identity_conflict",
        "low",
        "open",
    )
    assert item["lead_id"] == found["both"]["lead_id"]
    assert other["contact"]["id"] in item["summary"]
    due = datetime.fromisoformat(item["sla_due_at"]) - datetime.fromisoformat(item["opened_at"])
    assert due == timedelta(hours=4)  # the default SLA for low priority

    merged = await api.post(
        f"/v1/contacts/{ada['contact']['id']}/merge",
        json={"other_id": other["contact"]["id"]},
        headers=headers,
    )

    assert merged.status_code == 200, merged.text
    assert (await api.get("/v1/attention", headers=headers)).json()["items"] == []


async def operator(api: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    created = await api.post(
        "/v1/operators", json={"name": name, "role": "operator"}, headers=headers
    )
    assert created.status_code == 201, created.text
    operator_id: str = created.json()["id"]
    return operator_id


async def test_an_operator_resolves_a_conflict_of_two_different_people(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    _, other_headers = await create_org(api)
    first, second = [await operator(api, headers, name) for name in ("Ann", "Bob")]
    item = (await conflict(api, headers))["item"]
    path = f"/v1/escalations/{item['escalation_id']}/resolve"

    foreign = await api.post(path, json={"operator_id": first}, headers=other_headers)
    bad = await api.post(path, json={"operator": first}, headers=headers)
    stranger = await api.post(path, json={"operator_id": "op_nobody"}, headers=headers)
    assert (foreign.status_code, bad.status_code, stranger.status_code) == (404, 422, 422)
    assert (await api.get("/v1/attention", headers=other_headers)).json()["items"] == []
    assert len((await api.get("/v1/attention", headers=headers)).json()["items"]) == 1

    body = {"operator_id": first, "resolution": "twins sharing an inbox"}
    resolved = await api.post(path, json=body, headers=headers)
    again = await api.post(path, json={"operator_id": second}, headers=headers)

    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("resolved", first)
    assert again.json()["resolved_by"] == first  # resolving twice changes nothing
    assert (await api.get("/v1/attention", headers=headers)).json()["items"] == []
