"""Escalations through the API on the live stack: a complaint text, an agent's flag, the
acknowledge and resolve endpoints, each reaching the Escalation workflow."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus

from tests.channels.conftest import SMS_FROM, TWILIO_TOKEN, Live, webhook_url
from tests.conftest import eventually
from workflows import search_attributes as sa
from workflows.escalation import EscalationWorkflow


async def attention_items(live: Live, headers: dict[str, str]) -> list[dict[str, Any]]:
    listed = await live.api.get("/v1/attention", headers=headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def first_touch_sent(live: Live, headers: dict[str, str], *, leads: int = 1) -> None:
    """Each text opened a lead whose first SMS goes out on its own: wait for all ``leads`` of
    them, so none can reach the fake provider during the next test."""

    async def sent() -> bool:
        listed = await live.api.get(
            "/v1/messages", params={"direction": "outbound"}, headers=headers
        )
        done = [m for m in listed.json()["items"] if m["sender"] == "ai"]
        return len([m for m in done if m["status"] != "pending"]) >= leads

    await eventually(sent, within=30)


async def test_a_complaint_text_opens_a_high_priority_escalation_with_its_ladder(
    live: Live,
) -> None:
    org_id, headers = await live.org()
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200031",
        to=SMS_FROM,
        body="This is TERRIBLE. I want my money back!",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200

    async def flagged() -> list[dict[str, Any]]:
        return [i for i in await attention_items(live, headers) if i["reason"] == "complaint"]

    [item] = await eventually(flagged, within=30)
    assert item["priority"] == "high"
    assert "terrible" in item["summary"] and "money back" in item["summary"]
    ladder = live.client.get_workflow_handle(f"escalation-{org_id}-{item['thread_id']}")
    state = await eventually(lambda: _state(ladder), within=30)
    assert state.level == 0

    # The same complaint again is one item, not two.
    assert (await live.deliver(hook)).status_code == 200
    assert len(await flagged()) == 1

    ada = await operator_of(live, headers)
    acked = await live.api.post(
        f"/v1/escalations/{item['escalation_id']}/acknowledge",
        json={"operator_id": ada},
        headers=headers,
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == ada
    state = await eventually(lambda: _state(ladder, acknowledged=True), within=15)
    assert state.acknowledged_by == ada

    resolved = await live.api.post(
        f"/v1/escalations/{item['escalation_id']}/resolve",
        json={"operator_id": ada, "resolution": "refund agreed"},
        headers=headers,
    )
    assert resolved.status_code == 200
    result = await live.client.get_workflow_handle(ladder.id, result_type=type(state)).result()
    assert result.resolved_by == ada
    assert await flagged() == []
    await first_touch_sent(live, headers)


async def test_an_agent_flags_a_thread_once_and_another_org_cannot(live: Live) -> None:
    org_id, headers = await live.org()
    _, other_headers = await live.org()
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200032",
        to=SMS_FROM,
        body="Can you do Saturday?",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200

    async def thread() -> str | None:
        listed = (await live.api.get("/v1/threads", headers=headers)).json()["items"]
        return listed[0]["thread_id"] if listed else None

    thread_id = await eventually(thread, within=30)
    body = {"reason": "agent_needs_help", "priority": "medium", "summary": "Asks for Saturday"}

    first = await live.api.post(f"/v1/threads/{thread_id}/escalate", json=body, headers=headers)
    again = await live.api.post(f"/v1/threads/{thread_id}/escalate", json=body, headers=headers)
    foreign = await live.api.post(
        f"/v1/threads/{thread_id}/escalate", json=body, headers=other_headers
    )
    bad = await live.api.post(
        f"/v1/threads/{thread_id}/escalate",
        json={"reason": "x", "priority": "whenever"},
        headers=headers,
    )

    assert first.status_code == 202 and first.json()["duplicate"] is False
    assert again.status_code == 202
    assert again.json() == {"escalation_id": first.json()["escalation_id"], "duplicate": True}
    assert foreign.status_code == 404
    assert bad.status_code == 422
    [item] = await attention_items(live, headers)
    assert (item["reason"], item["priority"]) == ("agent_needs_help", "medium")
    ladder = live.client.get_workflow_handle(f"escalation-{org_id}-{thread_id}")
    await eventually(lambda: _state(ladder), within=30)
    described = await ladder.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    # Ops find what waits for a person in the Web UI with `NeedsAttention = true`.
    assert described.typed_search_attributes.get(sa.NEEDS_ATTENTION) is True
    assert described.typed_search_attributes.get(sa.ORG_ID) == org_id
    missing = await live.api.post(
        "/v1/escalations/esc_nope/acknowledge", json={"operator_id": "x"}, headers=headers
    )
    assert missing.status_code == 404
    await first_touch_sent(live, headers)


async def _state(handle: Any, *, acknowledged: bool = False) -> Any:
    try:
        state = await handle.query(EscalationWorkflow.state)
    except Exception:  # not started yet, or its first task not run yet
        return None
    if acknowledged and state.acknowledged_by is None:
        return None
    return state


async def operator_of(live: Live, headers: dict[str, str], name: str = "Ada") -> str:
    created = await live.api.post(
        "/v1/operators", json={"name": name, "role": "operator"}, headers=headers
    )
    assert created.status_code == 201, created.text
    operator_id: str = created.json()["id"]
    return operator_id


async def test_a_vip_who_writes_gets_a_person_and_resolving_it_resolves_the_thread(
    live: Live,
) -> None:
    org_id, headers = await live.org()
    ada = await operator_of(live, headers)
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Vera", "phone": "+447911200041", "value": 4000, "consent": {"sms": True}},
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.text
    await first_touch_sent(live, headers)
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200041",
        to=SMS_FROM,
        body="Could you also do the windows?",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200

    [item] = await eventually(lambda: attention_items(live, headers), within=30)
    assert (item["reason"], item["priority"]) == ("vip", "medium")
    assert "value 4000" in item["summary"] and "windows" in item["summary"]
    # The inbox ranks the thread by its open escalation.
    thread = (await live.api.get(f"/v1/threads/{item['thread_id']}", headers=headers)).json()
    assert thread["priority"] == "medium"
    ranked = await live.api.get("/v1/threads", params={"priority": "medium"}, headers=headers)
    assert [t["thread_id"] for t in ranked.json()["items"]] == [item["thread_id"]]

    unknown = await live.api.post(
        f"/v1/escalations/{item['escalation_id']}/resolve",
        json={"operator_id": "op_nobody"},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "operator_id"
    resolved = await live.api.post(
        f"/v1/escalations/{item['escalation_id']}/resolve",
        json={"operator_id": ada, "resolution": "booked the windows"},
        headers=headers,
    )
    assert resolved.status_code == 200, resolved.text
    thread = (await live.api.get(f"/v1/threads/{item['thread_id']}", headers=headers)).json()
    assert thread["status"] == "resolved" and thread["open_escalations"] == 0
    assert thread["priority"] == "low"


async def test_below_the_vip_value_or_with_the_rule_off_nobody_is_paged(live: Live) -> None:
    org_id, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Vic", "phone": "+447911200042", "value": 4000, "consent": {"sms": True}},
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.text
    await first_touch_sent(live, headers)

    async def writes() -> None:
        hook = live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_="+447911200042",
            to=SMS_FROM,
            body="Thanks!",
            auth_token=TWILIO_TOKEN,
        )
        assert (await live.deliver(hook)).status_code == 200

    off = await live.api.patch("/v1/orgs/me", json={"vip_value": None}, headers=headers)
    assert off.status_code == 200 and off.json()["vip_value"] is None
    await writes()
    higher = await live.api.patch("/v1/orgs/me", json={"vip_value": 5000}, headers=headers)
    assert higher.status_code == 200 and higher.json()["vip_value"] == 5000
    await writes()
    bad = await live.api.patch("/v1/orgs/me", json={"vip_value": -1}, headers=headers)
    assert bad.status_code == 422

    assert await attention_items(live, headers) == []


async def test_an_operator_takes_a_thread_over_and_replies_through_twilio(live: Live) -> None:
    org_id, headers = await live.org()
    ada = await operator_of(live, headers)
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200044",
        to=SMS_FROM,
        body="Is anyone there? I need a person.",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200
    await first_touch_sent(live, headers)

    async def thread() -> str | None:
        listed = (await live.api.get("/v1/threads", headers=headers)).json()["items"]
        return listed[0]["thread_id"] if listed else None

    thread_id = await eventually(thread, within=30)
    held = await live.api.post(
        f"/v1/threads/{thread_id}/takeover", json={"operator_id": ada}, headers=headers
    )
    assert held.status_code == 200, held.text
    sent = await live.api.post(
        f"/v1/threads/{thread_id}/reply",
        json={"operator_id": ada, "body": "Ada here, a real person. How can I help?"},
        headers=headers,
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "sms" and sent.json()["took_over"] is False

    def to_customer() -> list[str]:
        return [
            r.form["Body"]
            for r in live.fake.requests("twilio")
            if r.method == "POST" and r.form and r.form.get("To") == "+447911200044"
        ]

    async def delivered() -> bool:
        return "Ada here, a real person. How can I help?" in to_customer()

    await eventually(delivered, within=30)

    async def recorded() -> dict[str, str] | None:
        # Twilio has it before the activity records Twilio's answer: wait for the record.
        messages = (
            await live.api.get("/v1/messages", params={"thread_id": thread_id}, headers=headers)
        ).json()["items"]
        [human] = [m for m in messages if m["sender"] == "human"]
        return human if human["status"] != "pending" else None

    human = await eventually(recorded, within=10)
    assert human["operator_id"] == ada and human["status"] in {"queued", "sent"}
    released = await live.api.post(
        f"/v1/threads/{thread_id}/release", json={"operator_id": ada}, headers=headers
    )
    assert released.status_code == 200 and released.json()["held_by"] is None


async def test_a_negative_text_without_complaint_words_pages_a_person(live: Live) -> None:
    org_id, headers = await live.org()
    for phone, body in (
        ("+447911200045", "I'm not happy, nobody turned up at all"),
        ("+447911200046", "No thanks, maybe next month"),
    ):
        hook = live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_=phone,
            to=SMS_FROM,
            body=body,
            auth_token=TWILIO_TOKEN,
        )
        assert (await live.deliver(hook)).status_code == 200

    [item] = await eventually(lambda: attention_items(live, headers), within=30)
    assert (item["reason"], item["priority"]) == ("negative_sentiment", "medium")
    assert "nobody turned up" in item["summary"] and "sentiment -0." in item["summary"]
    await first_touch_sent(live, headers, leads=2)  # one per text: both must be out
    assert len(await attention_items(live, headers)) == 1  # the polite no paged nobody
