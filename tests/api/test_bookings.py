"""Bookings: a lead that books converts, once, and only the org's own lead can be booked."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_identity import lead_when_recorded, post
from tests.conftest import create_org, eventually


async def converted(api: httpx.AsyncClient, headers: dict[str, str], lead_id: str) -> bool:
    lead: dict[str, Any] = await lead_when_recorded(api, headers, lead_id)
    return bool(lead["stage"] == "converted")


async def test_a_booking_converts_the_lead_once(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    lead = await post(api, headers, name="Ada", email=f"{uuid.uuid4().hex[:8]}@example.com")
    await lead_when_recorded(api, headers, lead["lead_id"])
    booking = {"event_id": "cal-1", "starts_at": "2026-12-01T10:00:00Z", "note": "deep clean"}

    first = await api.post(f"/v1/leads/{lead['lead_id']}/bookings", json=booking, headers=headers)
    again = await api.post(f"/v1/leads/{lead['lead_id']}/bookings", json=booking, headers=headers)

    assert (first.status_code, first.json()["duplicate"]) == (202, False)
    assert (again.status_code, again.json()["duplicate"]) == (202, True)
    assert again.json()["booking_id"] == first.json()["booking_id"]
    await eventually(lambda: converted(api, headers, lead["lead_id"]), within=15)
    timeline = (await lead_when_recorded(api, headers, lead["lead_id"]))["timeline"]
    assert [e["summary"] for e in timeline if e["kind"] == "booking"] == [
        "Booked for 2026-12-01 10:00 UTC"
    ]
    stage_changes = [e["summary"] for e in timeline if e["kind"] == "stage_changed"]
    assert any("converted" in summary and "booked" in summary for summary in stage_changes)

    late = await api.post(
        f"/v1/leads/{lead['lead_id']}/bookings", json={"event_id": "cal-2"}, headers=headers
    )
    assert (late.status_code, late.json()["error"]["code"]) == (409, "lead_closed")


async def test_bad_or_foreign_bookings_change_nothing(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    _, other_headers = await create_org(api)
    lead = await post(api, headers, name="Ada", email=f"{uuid.uuid4().hex[:8]}@example.com")
    await lead_when_recorded(api, headers, lead["lead_id"])
    path = f"/v1/leads/{lead['lead_id']}/bookings"

    foreign = await api.post(path, json={"event_id": "x"}, headers=other_headers)
    bad = [
        await api.post(path, json=body, headers=headers)
        for body in (
            {},
            {"event_id": ""},
            {"event_id": "x", "starts_at": "2026-12-01T10:00:00"},  # no timezone
            {"event_id": "x", "when": "tomorrow"},
        )
    ]
    missing = await api.post(
        "/v1/leads/lead_nope/bookings", json={"event_id": "x"}, headers=headers
    )

    assert foreign.status_code == 404
    assert [answer.status_code for answer in bad] == [422] * 4
    assert missing.status_code == 404
    detail = await lead_when_recorded(api, headers, lead["lead_id"])
    assert detail["stage"] != "converted"
    assert not [e for e in detail["timeline"] if e["kind"] == "booking"]
