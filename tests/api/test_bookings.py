"""Bookings over HTTP (API.md "Appointments and the people who do the work"), on the real
stack: a booking converts the lead and starts its Appointment workflow, which confirms it by
SMS; a move, a cancellation and the provider's news are recorded once and told to it; a
customer's C by text confirms; bad or foreign requests change nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.test_identity import lead_when_recorded, post
from tests.api.test_takeover import conversation, signed_api, text_in
from tests.conftest import create_org, eventually

__all__ = ["signed_api"]  # a fixture used here

Json = dict[str, Any]


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0).isoformat()


async def converted(api: httpx.AsyncClient, headers: dict[str, str], lead_id: str) -> bool:
    lead: dict[str, Any] = await lead_when_recorded(api, headers, lead_id)
    return bool(lead["stage"] == "converted")


async def booking(api: httpx.AsyncClient, headers: dict[str, str], booking_id: str) -> Json:
    answer = await api.get(f"/v1/bookings/{booking_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: Json = answer.json()
    return body


async def with_line(
    api: httpx.AsyncClient, headers: dict[str, str], booking_id: str, words: str
) -> Json:
    """The booking once a line of its timeline has ``words``."""

    async def found() -> Json | None:
        body = await booking(api, headers, booking_id)
        return body if any(words in item["summary"] for item in body["timeline"]) else None

    return await eventually(found, within=20)


async def test_a_booking_converts_the_lead_and_its_visit_is_confirmed_by_sms(
    api: httpx.AsyncClient,
) -> None:
    chat = await conversation(api)
    headers = chat.headers
    starts_at = later(days=3)
    body = {"event_id": "cal-1", "starts_at": starts_at, "service": "deep clean", "note": "cat"}
    path = f"/v1/leads/{chat.lead_id}/bookings"

    first = await api.post(path, json=body, headers=headers)
    again = await api.post(path, json=body, headers=headers)

    assert (first.status_code, first.json()["duplicate"]) == (201, False), first.text
    assert (again.status_code, again.json()["duplicate"]) == (201, True)
    made = first.json()
    assert again.json()["booking_id"] == made["booking_id"]
    assert made["workflow_id"] == f"appointment-{chat.org_id}-{made['booking_id']}"
    await eventually(lambda: converted(api, headers, chat.lead_id), within=15)
    shown = await with_line(api, headers, made["booking_id"], "Confirmation sent by sms")
    assert (shown["status"], shown["version"], shown["service"], shown["note"]) == (
        "scheduled",
        1,
        "deep clean",
        "cat",
    )
    assert [(r["offset_s"], r["status"]) for r in shown["reminders"]] == [
        (86400, "pending"),
        (7200, "pending"),
    ]
    assert shown["timeline"][0]["summary"].startswith("Booked deep clean for ")
    messages = await api.get(
        "/v1/messages", params={"lead_id": chat.lead_id, "direction": "outbound"}, headers=headers
    )
    confirmations = [m for m in messages.json()["items"] if "is booked for" in m["body"]]
    assert len(confirmations) == 1 and confirmations[0]["channel"] == "sms"

    # A returning customer books again on the converted lead.
    repeat = await api.post(
        path, json={"event_id": "cal-2", "starts_at": later(days=10)}, headers=headers
    )
    assert repeat.status_code == 201, repeat.text
    assert repeat.json()["booking_id"] != made["booking_id"]


async def test_a_move_is_recorded_once_and_the_reminders_follow_it(
    api: httpx.AsyncClient,
) -> None:
    chat = await conversation(api)
    headers = chat.headers
    made = (
        await api.post(
            f"/v1/leads/{chat.lead_id}/bookings",
            json={"event_id": "cal-1", "starts_at": later(days=3)},
            headers=headers,
        )
    ).json()
    booking_id = made["booking_id"]
    await with_line(api, headers, booking_id, "Confirmation sent")
    new_start = later(days=5)

    moved = await api.patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": new_start}, headers=headers
    )
    same = await api.patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": new_start}, headers=headers
    )

    assert moved.status_code == 200, moved.text
    assert (moved.json()["version"], moved.json()["changed"]) == (2, True)
    assert (same.json()["version"], same.json()["changed"]) == (2, False)
    shown = await with_line(api, headers, booking_id, "told of the new time")
    assert datetime.fromisoformat(shown["starts_at"]) == datetime.fromisoformat(new_start)
    reminders = {r["offset_s"]: datetime.fromisoformat(r["at"]) for r in shown["reminders"]}
    start = datetime.fromisoformat(new_start)
    assert reminders == {86400: start - timedelta(days=1), 7200: start - timedelta(hours=2)}
    assert sum(item["summary"].startswith("Moved from") for item in shown["timeline"]) == 1


async def test_a_cancelled_visit_refuses_moves_and_news(
    api: httpx.AsyncClient,
) -> None:
    chat = await conversation(api)
    headers = chat.headers
    made = (
        await api.post(
            f"/v1/leads/{chat.lead_id}/bookings",
            json={"event_id": "cal-1", "starts_at": later(days=2)},
            headers=headers,
        )
    ).json()
    booking_id = made["booking_id"]
    await with_line(api, headers, booking_id, "Confirmation sent")

    cancelled = await api.post(
        f"/v1/bookings/{booking_id}/cancel", json={"reason": "moving house"}, headers=headers
    )
    again = await api.post(f"/v1/bookings/{booking_id}/cancel", json={}, headers=headers)
    move = await api.patch(
        f"/v1/bookings/{booking_id}", json={"starts_at": later(days=4)}, headers=headers
    )
    news = await api.post(
        f"/v1/bookings/{booking_id}/events", json={"kind": "arrived"}, headers=headers
    )

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert (move.status_code, move.json()["error"]["code"]) == (409, "booking_closed")
    assert (news.status_code, news.json()["error"]["code"]) == (409, "booking_closed")
    shown = await with_line(api, headers, booking_id, "told of the cancellation")
    assert shown["cancel_reason"] == "moving house"
    assert [item["summary"] for item in shown["timeline"]].count("Cancelled: moving house") == 1


async def test_the_providers_news_is_recorded_once_and_contradictions_are_409(
    api: httpx.AsyncClient,
) -> None:
    chat = await conversation(api)
    headers = chat.headers
    provider = await api.post("/v1/providers", json={"name": "Maria"}, headers=headers)
    made = (
        await api.post(
            f"/v1/leads/{chat.lead_id}/bookings",
            json={
                "event_id": "cal-1",
                "starts_at": later(minutes=30),
                "provider_id": provider.json()["id"],
            },
            headers=headers,
        )
    ).json()
    events = f"/v1/bookings/{made['booking_id']}/events"

    on_way = await api.post(events, json={"kind": "on_my_way"}, headers=headers)
    await with_line(api, headers, made["booking_id"], "the provider is on the way")
    arrived = await api.post(events, json={"kind": "arrived"}, headers=headers)
    arrived_again = await api.post(events, json={"kind": "arrived"}, headers=headers)
    future = await api.post(
        events, json={"kind": "completed", "at": later(hours=2)}, headers=headers
    )
    done = await api.post(events, json={"kind": "completed"}, headers=headers)
    missed = await api.post(events, json={"kind": "no_show"}, headers=headers)

    assert [r.status_code for r in (on_way, arrived, arrived_again, done)] == [202] * 4
    assert arrived_again.json()["changed"] is False
    assert future.status_code == 422
    assert (missed.status_code, missed.json()["error"]["code"]) == (409, "booking_closed")
    shown = await booking(api, headers, made["booking_id"])
    assert shown["status"] == "completed" and shown["provider_name"] == "Maria"
    messages = await api.get(
        "/v1/messages", params={"lead_id": chat.lead_id, "direction": "outbound"}, headers=headers
    )
    assert [m["body"] for m in messages.json()["items"] if "on the way" in m["body"]] == [
        "Maria is on the way for your visit."
    ]
    listed = await api.get(
        "/v1/bookings",
        params={"provider_id": provider.json()["id"], "status": "completed"},
        headers=headers,
    )
    assert [b["booking_id"] for b in listed.json()["items"]] == [made["booking_id"]]


async def test_a_c_by_text_confirms_the_visit_and_the_customer_is_thanked(
    api: httpx.AsyncClient, signed_api: httpx.AsyncClient
) -> None:
    chat = await conversation(api)
    headers = chat.headers
    made = (
        await api.post(
            f"/v1/leads/{chat.lead_id}/bookings",
            json={"event_id": "cal-1", "starts_at": later(days=2)},
            headers=headers,
        )
    ).json()
    await with_line(api, headers, made["booking_id"], "Confirmation sent")

    await text_in(signed_api, chat, "C")

    shown = await with_line(api, headers, made["booking_id"], "Thanked the customer for confirming")
    assert shown["status"] == "confirmed"
    # The C was the booking's, not a new lead's: the lead stays converted, no new lead opened.
    leads = await api.get("/v1/leads", headers=headers)
    assert [lead["lead_id"] for lead in leads.json()["items"]] == [chat.lead_id]


async def test_bad_or_foreign_bookings_change_nothing(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    _, other_headers = await create_org(api)
    lead = await post(api, headers, name="Ada", email=f"{uuid.uuid4().hex[:8]}@example.com")
    await lead_when_recorded(api, headers, lead["lead_id"])
    path = f"/v1/leads/{lead['lead_id']}/bookings"
    good = {"event_id": "x", "starts_at": later(days=1)}

    foreign = await api.post(path, json=good, headers=other_headers)
    bad = [
        await api.post(path, json=body, headers=headers)
        for body in (
            {},
            {"event_id": ""},
            {"event_id": "x"},  # no time
            {"event_id": "x", "starts_at": "2026-12-01T10:00:00"},  # no timezone
            {"event_id": "x", "starts_at": later(days=-1)},  # past
            {**good, "ends_at": later(hours=1)},  # ends before it starts
            {**good, "when": "tomorrow"},
        )
    ]
    no_provider = await api.post(path, json={**good, "provider_id": "prov_nope"}, headers=headers)
    missing = await api.post("/v1/leads/lead_nope/bookings", json=good, headers=headers)

    assert foreign.status_code == 404
    assert [answer.status_code for answer in bad] == [422] * 7
    assert no_provider.status_code == 404 and "provider" in no_provider.json()["error"]["message"]
    assert missing.status_code == 404
    detail = await lead_when_recorded(api, headers, lead["lead_id"])
    assert detail["stage"] != "converted"
    assert (await api.get("/v1/bookings", headers=headers)).json()["items"] == []

    made = (await api.post(path, json=good, headers=headers)).json()
    booking_path = f"/v1/bookings/{made['booking_id']}"
    assert (await api.get(booking_path, headers=other_headers)).status_code == 404
    assert (
        await api.post(f"{booking_path}/cancel", json={}, headers=other_headers)
    ).status_code == 404
    assert (await api.patch(booking_path, json={}, headers=headers)).status_code == 422
    assert (
        await api.post(f"{booking_path}/events", json={"kind": "teleported"}, headers=headers)
    ).status_code == 422
    assert (
        await api.get(
            "/v1/bookings", params={"from": later(days=2), "to": later(days=1)}, headers=headers
        )
    ).status_code == 422
    assert (await booking(api, headers, made["booking_id"]))["status"] == "scheduled"
