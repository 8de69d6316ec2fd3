"""Payment requests over HTTP on the dry-run stack: the simulated link comes back at once and
is texted; the same event again is the same request; bad or foreign requests change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.api.test_takeover import conversation
from tests.conftest import create_org, eventually


async def test_a_request_answers_with_its_simulated_link_and_texts_it(
    api: httpx.AsyncClient,
) -> None:
    chat = await conversation(api)
    path = f"/v1/leads/{chat.lead_id}/payment-requests"
    body = {"event_id": "q-1", "amount": 4_500, "currency": "gbp", "description": "Oven clean"}

    first = await api.post(path, json=body, headers=chat.headers)
    again = await api.post(path, json=body, headers=chat.headers)

    assert first.status_code == 201, first.text
    made = first.json()
    assert made["url"] == f"https://pay.dry-run.invalid/{made['payment_request_id']}"
    assert made["workflow_id"] == f"payment-{chat.org_id}-{made['payment_request_id']}"
    assert (again.json()["payment_request_id"], again.json()["duplicate"]) == (
        made["payment_request_id"],
        True,
    )
    shown = (
        await api.get(f"/v1/payment-requests/{made['payment_request_id']}", headers=chat.headers)
    ).json()
    assert (shown["status"], shown["mode"], shown["amount"], shown["currency"]) == (
        "open",
        "dry_run",
        4_500,
        "gbp",
    )
    due = datetime.fromisoformat(shown["due_at"]) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < due <= timedelta(days=7)

    async def texted() -> list[str] | None:
        listed = await api.get(
            "/v1/messages",
            params={"lead_id": chat.lead_id, "direction": "outbound"},
            headers=chat.headers,
        )
        found = [m["body"] for m in listed.json()["items"] if made["url"] in m["body"]]
        return found or None

    link_texts = await eventually(texted, within=20)
    assert len(link_texts) == 1 and "£45.00" in link_texts[0]
    listed = await api.get("/v1/payment-requests", params={"status": "open"}, headers=chat.headers)
    assert [r["payment_request_id"] for r in listed.json()["items"]] == [made["payment_request_id"]]


async def test_bad_or_foreign_payment_requests_change_nothing(api: httpx.AsyncClient) -> None:
    chat = await conversation(api)
    _, other = await create_org(api)
    path = f"/v1/leads/{chat.lead_id}/payment-requests"
    good = {"event_id": "q-1", "amount": 4_500, "currency": "usd", "description": "Oven"}
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    bad = [
        await api.post(path, json=body, headers=chat.headers)
        for body in (
            {**good, "amount": 0},
            {**good, "amount": 12.5},
            {**good, "currency": "dollars"},
            {**good, "description": ""},
            {**good, "due_at": past},
            {**good, "due_at": "2027-01-01T10:00:00"},
            {**good, "tip": 5},
        )
    ]
    foreign = await api.post(path, json=good, headers=other)
    missing = await api.post(
        "/v1/leads/lead_nope/payment-requests", json=good, headers=chat.headers
    )

    assert [answer.status_code for answer in bad] == [422] * 7
    assert foreign.status_code == 404 and missing.status_code == 404
    assert (await api.get("/v1/payment-requests", headers=chat.headers)).json()["items"] == []
    made = (await api.post(path, json=good, headers=chat.headers)).json()
    one = f"/v1/payment-requests/{made['payment_request_id']}"
    assert (await api.get(one, headers=other)).status_code == 404
    assert (await api.get("/v1/payment-requests", headers=other)).json()["items"] == []
