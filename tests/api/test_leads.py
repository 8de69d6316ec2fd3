"""Intake and reading leads through HTTP, with the real worker, dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from temporalio.client import Client

from models.tables import IntakeReceipt, Lead, Message
from tests.conftest import create_org, eventually

Headers = dict[str, str]


async def messages(api: httpx.AsyncClient, headers: Headers, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/v1/messages", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def sent_messages(
    api: httpx.AsyncClient, headers: Headers, **params: str
) -> list[dict[str, Any]]:
    """Messages that have left (or, in dry run, been simulated); ``pending`` rows are not yet."""
    return [m for m in await messages(api, headers, **params) if m["status"] != "pending"]


def unique_email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


def count_rows(engine: Engine, model: Any, org_id: str) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(model).where(model.org_id == org_id)
        ).one()


async def test_a_lead_gets_one_simulated_first_touch_sms(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)

    accepted = await api.post(
        "/v1/leads",
        json={
            "name": "Ada Lovelace",
            "phone": "07911 123456",
            "email": unique_email(),
            "source": "website_form",
            "message": "Need a quote for a deep clean",
            "value": 250.0,
            "consent": {"sms": True, "email": True},
        },
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["duplicate"] is False

    # Latency is measured by bench/intake.py; here only that it goes out, once.
    sent = await eventually(lambda: sent_messages(api, headers, lead_id=body["lead_id"]))

    [message] = sent
    assert message["channel"] == "sms"
    assert message["status"] == "simulated"
    assert message["direction"] == "outbound"
    assert message["sender"] == "ai"
    assert message["idempotency_key"] == f"{body['workflow_id']}/{body['lead_id']}/touch-1"
    lead = (await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)).json()
    assert lead["contact"]["phones"] == ["+447911123456"]
    assert lead["first_contact_at"] is not None
    assert lead["value"] == 250.0


async def test_lead_view_shows_timeline_and_live_status(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    body = (
        await api.post(
            "/v1/leads",
            json={"name": "Grace Hopper", "email": unique_email(), "source": "referral"},
            headers=headers,
        )
    ).json()

    async def contacted() -> dict[str, Any] | None:
        # The lead row is written by the workflow's first activity, moments after the 202.
        lead: dict[str, Any] = (
            await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)
        ).json()
        return lead if lead.get("stage") == "contacted" else None

    lead = await eventually(contacted)

    assert [event["kind"] for event in lead["timeline"]] == [
        "stage_changed",
        "touch_sent",
        "scored",
        "intake",
    ]
    assert (lead["score"], lead["intent"]) == (30, "window_shopper")  # base 10 + referral 20
    [scored] = [event for event in lead["timeline"] if event["kind"] == "scored"]
    assert scored["summary"] == "Scored 30 (window_shopper): base +10; source referral +20"
    assert lead["contact"]["consent"]["sms"] is None
    live = lead["live"]
    assert live["workflow_id"] == body["workflow_id"]
    assert live["status"] == "running"

    async def sequenced() -> dict[str, Any] | None:
        detail: dict[str, Any] = (
            await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)
        ).json()
        reason = detail["live"]["waiting_reason"] or ""
        return detail["live"] if "(step 1 of 2)" in reason else None

    # A window shopper: the first touch, then the two-step nurture sequence by email.
    live = await eventually(sequenced)
    assert live["attempts"] == {"used": 1, "cap": 3}
    assert live["waiting_reason"].startswith("next email at ")
    [message] = await messages(api, headers, lead_id=body["lead_id"])
    assert message["channel"] == "email"


async def test_same_event_posted_five_times_at_once_is_one_lead_and_one_touch(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    payload = {"event_id": "form-123", "email": unique_email(), "consent": {"email": True}}

    answers = await asyncio.gather(
        *(api.post("/v1/leads", json=payload, headers=headers) for _ in range(5))
    )

    assert [answer.status_code for answer in answers] == [202] * 5
    bodies = [answer.json() for answer in answers]
    assert len({body["lead_id"] for body in bodies}) == 1
    assert sorted(body["duplicate"] for body in bodies) == [False, True, True, True, True]
    lead_id = bodies[0]["lead_id"]
    await eventually(lambda: sent_messages(api, headers, lead_id=lead_id))
    await asyncio.sleep(0.5)  # give a second touch, if there were one, time to appear
    assert len(await messages(api, headers)) == 1
    assert count_rows(pg_engine, Lead, org_id) == 1
    assert count_rows(pg_engine, IntakeReceipt, org_id) == 1


async def test_same_person_again_while_open_is_a_duplicate_noted_on_the_timeline(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    email = unique_email()
    first = (await api.post("/v1/leads", json={"email": email}, headers=headers)).json()

    second = await api.post(
        "/v1/leads",
        json={"email": email.upper(), "source": "cart", "event_id": "cart-9"},
        headers=headers,
    )

    assert second.status_code == 202
    assert second.json() == {**first, "duplicate": True}

    async def noted() -> bool:
        lead = (await api.get(f"/v1/leads/{first['lead_id']}", headers=headers)).json()
        return "repeat_intake" in [event["kind"] for event in lead.get("timeline", [])]

    await eventually(noted)
    again = await api.post(
        "/v1/leads", json={"email": email, "event_id": "cart-9"}, headers=headers
    )
    assert again.json() == {**first, "duplicate": True}
    # A replay of that event with a different body still lands on the original lead.
    changed = await api.post(
        "/v1/leads", json={"email": unique_email(), "event_id": "cart-9"}, headers=headers
    )
    assert changed.json() == {**first, "duplicate": True}
    assert len(await messages(api, headers)) == 1


BAD_BODIES: list[tuple[str, bytes, set[str]]] = [
    ("invalid JSON", b'{"email": "a@example.com",', {"body"}),
    ("neither email nor phone", json.dumps({"name": "Nobody"}).encode(), {"body"}),
    ("malformed phone", json.dumps({"phone": "12"}).encode(), {"phone"}),
    ("unparseable phone", json.dumps({"phone": "call me maybe"}).encode(), {"phone"}),
    ("malformed email", json.dumps({"email": "ada@"}).encode(), {"email"}),
    (
        "value of the wrong type",
        json.dumps({"email": "a@example.com", "value": "lots"}).encode(),
        {"value"},
    ),
    ("unknown field", json.dumps({"email": "a@example.com", "emial": "x"}).encode(), {"emial"}),
    (
        "unknown timezone",
        json.dumps({"email": "a@example.com", "timezone": "Moon/Base"}).encode(),
        {"timezone"},
    ),
    (
        "consent not boolean",
        json.dumps({"email": "a@example.com", "consent": {"sms": "maybe"}}).encode(),
        {"consent.sms"},
    ),
    ("array body", b"[]", {"body"}),
    (
        "NUL in the message",
        json.dumps({"email": "a@example.com", "message": "hi\u0000"}).encode(),
        {"message"},
    ),
    (
        "NUL deep in fields",
        json.dumps({"email": "a@example.com", "fields": {"k": ["\u0000"]}}).encode(),
        {"fields"},
    ),
    (
        "consent as a word",
        json.dumps({"email": "a@example.com", "consent": {"sms": "yes"}}).encode(),
        {"consent.sms"},
    ),
    (
        "value as a boolean",
        json.dumps({"email": "a@example.com", "value": True}).encode(),
        {"value"},
    ),
    (
        "value as a string",
        json.dumps({"email": "a@example.com", "value": "250"}).encode(),
        {"value"},
    ),
    ("not UTF-8", b'{"email": "\xff@example.com"}', {"body"}),
]


@pytest.mark.parametrize(
    ("case", "raw", "fields"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES]
)
async def test_bad_intake_gets_422_naming_the_field_and_writes_nothing(
    api: httpx.AsyncClient, pg_engine: Engine, case: str, raw: bytes, fields: set[str]
) -> None:
    org_id, headers = await create_org(api)

    response = await api.post(
        "/v1/leads", content=raw, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"]
    assert {detail["field"] for detail in error["details"]} >= fields
    assert count_rows(pg_engine, IntakeReceipt, org_id) == 0
    assert count_rows(pg_engine, Lead, org_id) == 0
    assert count_rows(pg_engine, Message, org_id) == 0


async def test_a_body_over_256_kib_gets_413_and_writes_nothing(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    big = json.dumps({"email": unique_email(), "message": "x" * (1024 * 1024)}).encode()

    declared = await api.post(
        "/v1/leads", content=big, headers={**headers, "Content-Type": "application/json"}
    )

    async def chunks() -> Any:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await api.post(
        "/v1/leads", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
    assert count_rows(pg_engine, IntakeReceipt, org_id) == 0


async def test_another_orgs_lead_messages_and_settings_are_invisible(
    api: httpx.AsyncClient,
) -> None:
    _, org_a = await create_org(api, name="A")
    _, org_b = await create_org(api, name="B")
    lead = (await api.post("/v1/leads", json={"email": unique_email()}, headers=org_a)).json()
    [message] = await eventually(lambda: sent_messages(api, org_a, lead_id=lead["lead_id"]))

    lead_as_b = await api.get(f"/v1/leads/{lead['lead_id']}", headers=org_b)
    messages_as_b = await messages(api, org_b)
    filtered_as_b = await messages(api, org_b, lead_id=lead["lead_id"])
    list_as_b = (await api.get("/v1/leads", headers=org_b)).json()
    settings_as_b = (await api.get("/v1/orgs/me", headers=org_b)).json()

    assert lead_as_b.status_code == 404
    assert lead_as_b.json()["error"]["code"] == "not_found"
    assert messages_as_b == filtered_as_b == []
    assert list_as_b["items"] == []
    assert settings_as_b["name"] == "B"
    assert message["lead_id"] == lead["lead_id"]


async def test_leads_list_filters_searches_sorts_and_pages(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    people = [
        ("Ada Lovelace", "website_form", 100.0),
        ("Grace Hopper", "referral", 900.0),
        ("Alan Turing", "website_form", None),
        ("Edsger Dijkstra", "referral", 50.0),
    ]
    ids = []
    for name, source, value in people:
        body: dict[str, object] = {
            "name": name,
            "email": unique_email(),
            "source": source,
            "message": f"hi from {name}",
        }
        if value is not None:
            body["value"] = value
        ids.append((await api.post("/v1/leads", json=body, headers=headers)).json()["lead_id"])

    async def all_listed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await api.get("/v1/leads", headers=headers)).json()["items"]
        return items if len(items) == len(people) else None

    recent = await eventually(all_listed)
    assert [item["lead_id"] for item in recent] == ids[::-1]

    by_source = (await api.get("/v1/leads", params={"source": "referral"}, headers=headers)).json()
    assert {item["name"] for item in by_source["items"]} == {"Grace Hopper", "Edsger Dijkstra"}

    searched = (await api.get("/v1/leads", params={"q": "TURING"}, headers=headers)).json()
    assert [item["name"] for item in searched["items"]] == ["Alan Turing"]

    by_value = (await api.get("/v1/leads", params={"sort": "value"}, headers=headers)).json()
    assert [item["value"] for item in by_value["items"]] == [900.0, 100.0, 50.0, None]

    pages: list[str] = []
    cursor = None
    while True:
        params = {"sort": "oldest", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/leads", params=params, headers=headers)).json()
        pages += [item["lead_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == ids

    bad = await api.get("/v1/leads", params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "cursor"
    bad_stage = await api.get("/v1/leads", params={"stage": "sleeping"}, headers=headers)
    assert bad_stage.status_code == 422


async def test_the_same_phone_with_an_email_later_is_the_same_open_lead(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    first = (
        await api.post(
            "/v1/leads", json={"phone": "+447911000111", "consent": {"sms": True}}, headers=headers
        )
    ).json()
    email = unique_email()

    async def recorded() -> bool:
        response = await api.get(f"/v1/leads/{first['lead_id']}", headers=headers)
        return response.status_code == 200

    await eventually(recorded)
    second = await api.post(
        "/v1/leads",
        json={"phone": "07911 000111", "email": email, "consent": {"sms": True}},
        headers=headers,
    )

    assert second.json() == {**first, "duplicate": True}

    async def linked() -> dict[str, Any] | None:
        lead: dict[str, Any] = (
            await api.get(f"/v1/leads/{first['lead_id']}", headers=headers)
        ).json()
        return lead if lead["contact"]["emails"] else None

    lead = await eventually(linked)
    assert lead["contact"]["emails"] == [email]
    assert lead["contact"]["phones"] == ["+447911000111"]
    await asyncio.sleep(0.3)
    assert len(await messages(api, headers)) == 1


async def test_a_blank_name_is_no_name(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    lead = (
        await api.post("/v1/leads", json={"email": unique_email(), "name": "   "}, headers=headers)
    ).json()

    [message] = await eventually(lambda: sent_messages(api, headers, lead_id=lead["lead_id"]))
    assert message["body"].startswith("Hi there, thanks for getting in touch")


async def test_control_characters_in_query_or_path_get_422(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    responses = [
        await api.get("/v1/leads", params={"q": "a\x00b"}, headers=headers),
        await api.get("/v1/leads", params={"source": "\x00"}, headers=headers),
        await api.get("/v1/messages", params={"lead_id": "lead_\x00"}, headers=headers),
        await api.get("/v1/leads/lead_%00x", headers=headers),
    ]

    assert [response.status_code for response in responses] == [422] * 4
    assert all(r.json()["error"]["code"] == "invalid_input" for r in responses)


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("recent", ["2020-01-01T00:00:00", "lead_x"]),  # no timezone
        ("recent", ["2020-01-01T00:00:00+00:00", 7]),  # id not a string
        ("score", ["high", "2020-01-01T00:00:00+00:00", "lead_x"]),
        ("value", [True, "2020-01-01T00:00:00+00:00", "lead_x"]),
        ("oldest", {"created_at": 1}),
    ],
)
async def test_forged_cursors_get_422(api: httpx.AsyncClient, sort: str, values: object) -> None:
    _, headers = await create_org(api)
    cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode()

    response = await api.get("/v1/leads", params={"sort": sort, "cursor": cursor}, headers=headers)

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "cursor"


async def test_after_a_lead_is_lost_the_same_person_opens_a_new_one(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    patched = await api.patch("/v1/orgs/me", json={"inactivity_threshold": "PT1S"}, headers=headers)
    assert patched.status_code == 200
    # A one-step sequence a second long: the lead is lost only once its sequence has run out.
    short = {
        "applies_to": ["browsing", "window_shopper"],
        "steps": [{"after": "PT1S", "channel": "email", "template": "Still there?"}],
        "max_attempts": 1,
    }
    assert (await api.put("/v1/sequences/nurture", json=short, headers=headers)).status_code == 200
    email = unique_email()
    first = (await api.post("/v1/leads", json={"email": email}, headers=headers)).json()

    async def lost() -> bool:
        lead = (await api.get(f"/v1/leads/{first['lead_id']}", headers=headers)).json()
        return bool(lead.get("stage") == "lost" and lead["live"]["status"] == "completed")

    await eventually(lost, within=20)
    second = (await api.post("/v1/leads", json={"email": email}, headers=headers)).json()

    assert second["duplicate"] is False
    assert second["lead_id"] != first["lead_id"]
    assert second["workflow_id"] == first["workflow_id"]
    await eventually(lambda: sent_messages(api, headers, lead_id=second["lead_id"]))
    old = (await api.get(f"/v1/leads/{first['lead_id']}", headers=headers)).json()
    assert old["live"]["status"] == "closed"  # its workflow id now runs the new lead


async def test_no_personal_data_reaches_temporal_history(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    _, headers = await create_org(api)
    email = unique_email()
    personal = ["Zebedee Quixote", email, "+447911222333", "07911 222333", "Quixote's kitchen"]
    lead = (
        await api.post(
            "/v1/leads",
            json={
                "name": "Zebedee Quixote",
                "email": email,
                "phone": "07911 222333",
                "message": "Quixote's kitchen needs a deep clean",
                "consent": {"sms": True},
                "fields": {"address": "1 Quixote's kitchen"},
            },
            headers=headers,
        )
    ).json()
    await eventually(lambda: sent_messages(api, headers, lead_id=lead["lead_id"]))
    handle = stack_client.get_workflow_handle(lead["workflow_id"])
    await handle.query("status")  # the workflow has processed everything so far

    history = readable((await handle.fetch_history()).to_json_dict())

    assert lead["lead_id"] in history  # the ids are there...
    assert [text for text in personal if text in history] == []  # ...the person is not


def readable(node: Any) -> str:
    """Every string in a history, with payloads (base64 in the JSON form) decoded."""
    if isinstance(node, dict):
        parts = [readable(value) for value in node.values()]
        if isinstance(node.get("data"), str) and "metadata" in node:
            parts.append(base64.b64decode(node["data"]).decode(errors="replace"))
        return "\n".join(parts)
    if isinstance(node, list):
        return "\n".join(readable(item) for item in node)
    return str(node)


async def test_a_lead_is_scored_by_the_orgs_rules_and_searchable_by_score(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    _, headers = await create_org(api)
    patched = await api.patch(
        "/v1/orgs/me", json={"scoring": {"words": {"boiler": 30}}}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["scoring"]["words"]["boiler"] == 30
    assert patched.json()["scoring"]["words"]["urgent"] == 20  # the other rules stay
    body = (
        await api.post(
            "/v1/leads",
            json={
                "email": unique_email(),
                "source": "referral",
                "value": 400,
                "message": "Our boiler broke, urgent!",
            },
            headers=headers,
        )
    ).json()

    async def scored() -> dict[str, Any] | None:
        lead: dict[str, Any] = (
            await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)
        ).json()
        return lead if lead.get("score") else None

    lead = await eventually(scored)

    assert (lead["score"], lead["intent"]) == (100, "high_value")  # 10+25+20+30+20, clamped
    [event] = [e for e in lead["timeline"] if e["kind"] == "scored"]
    assert "mentions 'boiler' +30" in event["summary"]

    async def searchable() -> bool:
        query = f'WorkflowId = "{body["workflow_id"]}" AND LeadScore >= 70'
        return [w async for w in stack_client.list_workflows(query)] != []

    await eventually(searchable, within=15)


async def test_bad_scoring_rules_are_refused_and_change_nothing(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    response = await api.patch(
        "/v1/orgs/me",
        json={"scoring": {"thresholds": {"high_value": 10, "engaged": 45, "window_shopper": 20}}},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"].startswith("scoring")
    current = (await api.get("/v1/orgs/me", headers=headers)).json()
    assert current["scoring"]["thresholds"]["high_value"] == 70


@pytest.mark.parametrize(
    ("extra", "intent", "channel"),
    [
        ({"value": 2000, "source": "referral"}, "high_value", "sms"),  # 10 + 40 + 20
        ({}, "browsing", "email"),
        # Issue 19's intake form: an explicit request is texted first, not emailed.
        (
            {"source": "website_form", "message": "Need a quote for a deep clean"},
            "engaged",
            "sms",
        ),
        ({"source": "website_form", "message": "Lovely website"}, "window_shopper", "email"),
    ],
)
async def test_the_intent_picks_the_first_touch_channel(
    api: httpx.AsyncClient, extra: dict[str, Any], intent: str, channel: str
) -> None:
    _, headers = await create_org(api)
    body = (
        await api.post(
            "/v1/leads",
            json={
                "name": "Ada",
                "email": unique_email(),
                "phone": f"+4479111{uuid.uuid4().int % 100_000:05d}",
                "consent": {"sms": True, "email": True},
                **extra,
            },
            headers=headers,
        )
    ).json()

    [message] = await eventually(
        lambda: sent_messages(api, headers, lead_id=body["lead_id"]), within=15
    )
    lead = (await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)).json()

    assert (lead["intent"], message["channel"]) == (intent, channel)


async def test_live_status_names_the_next_step_in_the_contacts_local_time(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)  # Europe/London
    body = (
        await api.post(
            "/v1/leads",
            json={
                "name": "Ada",
                "phone": f"+4479111{uuid.uuid4().int % 100_000:05d}",
                "consent": {"sms": True},
                "value": 2000,
                "source": "referral",
                "timezone": "America/New_York",
            },
            headers=headers,
        )
    ).json()

    async def sequenced() -> dict[str, Any] | None:
        lead: dict[str, Any] = (
            await api.get(f"/v1/leads/{body['lead_id']}", headers=headers)
        ).json()
        live = lead.get("live") or {}
        return live if "step 1 of 3" in (live.get("waiting_reason") or "") else None

    live = await eventually(sequenced, within=15)

    assert live["waiting_reason"].startswith("next SMS at ")
    assert "America/New_York (step 1 of 3)" in live["waiting_reason"]
    assert live["attempts"] == {"used": 1, "cap": 4}
