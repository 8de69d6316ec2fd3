"""Takeover through HTTP on the real app: an operator takes a thread over from the AI,
replies on it and hands it back (API.md "Acting"), with the worker running behind the API.

Each test opens its own org and a lead whose first SMS it waits for, and waits at the end
for the workflows its calls started (Takeover, HumanReply, the escalation ladder) to settle,
so nothing of one test reaches the next.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from models.settings import Settings
from tests.api.test_identity import unique_phone
from tests.conftest import (
    assert_running_totals_follow_the_rows,
    create_org,
    eventually,
    make_settings,
    per_metric,
    serve,
)
from tests.fakes.providers import twilio_signature_headers
from workflows.escalation import EscalationWorkflow
from workflows.payloads import EscalationState, TakeoverState
from workflows.takeover import TakeoverWorkflow

Headers = dict[str, str]
Json = dict[str, Any]

#: The default ``takeover_timeout``: a hold ends after this long without a message.
TIMEOUT = timedelta(minutes=30)
#: Polls go no faster than this: the API allows an org 600 requests a minute.
POLL = 0.1
#: An API app that can verify Twilio's signatures (the session's has no auth token).
TWILIO_TOKEN = "takeover-tests-twilio-token"
PUBLIC_URL = "https://hooks.takeover.test"
SMS_TO = "+447700900000"
#: How a lead's live status begins while an operator holds its contact's thread.
PAUSED = "paused: an operator has the conversation"


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """A lead's contact and their thread, its first SMS sent."""

    org_id: str
    headers: Headers
    thread_id: str
    lead_id: str
    phone: str


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def add_operator(
    api: httpx.AsyncClient, headers: Headers, name: str, *, role: str = "operator"
) -> str:
    response = await api.post("/v1/operators", json={"name": name, "role": role}, headers=headers)
    assert response.status_code == 201, response.text
    operator_id: str = response.json()["id"]
    return operator_id


async def outbound(api: httpx.AsyncClient, headers: Headers, thread_id: str) -> list[Json]:
    listed = await api.get(
        "/v1/messages", params={"thread_id": thread_id, "direction": "outbound"}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    items: list[Json] = listed.json()["items"]
    return items


async def conversation(api: httpx.AsyncClient) -> Conversation:
    """A new org and a lead by phone with SMS consent; back once its first SMS has gone
    (it goes on its own, and must not land in the middle of what the test checks)."""
    org_id, headers = await create_org(api)
    phone = unique_phone()
    created = await api.post(
        "/v1/leads",
        json={
            "name": "Grace Hopper",
            "phone": phone,
            "consent": {"sms": True},
            "source": "website_form",
        },
        headers=headers,
    )
    assert created.status_code == 202, created.text
    lead_id: str = created.json()["lead_id"]

    async def first_touch() -> Json | None:
        listed = await api.get(
            "/v1/messages", params={"lead_id": lead_id, "direction": "outbound"}, headers=headers
        )
        items: list[Json] = listed.json()["items"]
        sent = [m for m in items if m["status"] != "pending" and m["thread_id"]]
        return sent[0] if sent else None

    touch = await eventually(first_touch, within=20, every=POLL)
    assert touch["channel"] == "sms"
    return Conversation(
        org_id=org_id, headers=headers, thread_id=touch["thread_id"], lead_id=lead_id, phone=phone
    )


async def thread_of(api: httpx.AsyncClient, chat: Conversation) -> Json:
    response = await api.get(f"/v1/threads/{chat.thread_id}", headers=chat.headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def human_messages(thread: Json) -> list[Json]:
    return [m for m in thread["messages"] if m["sender"] == "human"]


async def act(
    api: httpx.AsyncClient, chat: Conversation, action: str, operator_id: str, **extra: Any
) -> httpx.Response:
    """``POST /v1/threads/{id}/{action}`` as ``operator_id``."""
    return await api.post(
        f"/v1/threads/{chat.thread_id}/{action}",
        json={"operator_id": operator_id, **extra},
        headers=chat.headers,
    )


def error_of(response: httpx.Response) -> tuple[int, str, list[str]]:
    """Status, error code and the fields the details name."""
    error = response.json()["error"]
    return response.status_code, error["code"], [d["field"] for d in error["details"]]


async def hold_settled(client: Client, chat: Conversation, held_by: str | None) -> None:
    """Wait until the thread's Takeover workflow has caught up with the hold: still
    running with ``held_by``, or (released) told the contact's leads and ended."""
    handle = client.get_workflow_handle(
        f"takeover-{chat.org_id}-{chat.thread_id}", result_type=TakeoverState
    )
    if held_by is None:
        state = await asyncio.wait_for(handle.result(), timeout=15)
        assert state.held_by is None
        return

    async def holding() -> bool:
        try:
            state = await handle.query(TakeoverWorkflow.state)
        except (RPCError, WorkflowQueryFailedError):
            return False
        return state.held_by == held_by

    await eventually(holding, within=15, every=POLL)


async def lead_paused(api: httpx.AsyncClient, chat: Conversation, paused: bool) -> bool:
    """Whether the lead's live status says (``paused``) or no longer says that its
    automation waits for the operator."""
    lead = (await api.get(f"/v1/leads/{chat.lead_id}", headers=chat.headers)).json()
    reason = (lead.get("live") or {}).get("waiting_reason") or ""
    return reason.startswith(PAUSED) == paused


async def reply_sent(api: httpx.AsyncClient, chat: Conversation, message_id: str) -> Json:
    """The reply's row once its HumanReply workflow has sent it."""

    async def settled() -> Json | None:
        found = [m for m in human_messages(await thread_of(api, chat)) if m["id"] == message_id]
        return found[0] if found and found[0]["status"] != "pending" else None

    return await eventually(settled, within=15, every=POLL)


async def ladder_ended(
    api: httpx.AsyncClient, client: Client, chat: Conversation, escalation_id: str, by: str
) -> EscalationState:
    """Resolve the escalation and wait for its ladder to end."""
    resolved = await api.post(
        f"/v1/escalations/{escalation_id}/resolve", json={"operator_id": by}, headers=chat.headers
    )
    assert resolved.status_code == 200, resolved.text
    handle = client.get_workflow_handle(
        f"escalation-{chat.org_id}-{chat.thread_id}", result_type=EscalationState
    )
    return await asyncio.wait_for(handle.result(), timeout=15)


async def escalate(api: httpx.AsyncClient, chat: Conversation) -> str:
    response = await api.post(
        f"/v1/threads/{chat.thread_id}/escalate",
        json={"reason": "agent_needs_help", "priority": "high", "summary": "Wants a person"},
        headers=chat.headers,
    )
    assert response.status_code == 202, response.text
    escalation_id: str = response.json()["escalation_id"]
    return escalation_id


async def attention_item(api: httpx.AsyncClient, chat: Conversation, escalation_id: str) -> Json:
    listed = await api.get("/v1/attention", headers=chat.headers)
    assert listed.status_code == 200, listed.text
    items: list[Json] = listed.json()["items"]
    [item] = [i for i in items if i["escalation_id"] == escalation_id]
    return item


@pytest.fixture(scope="module")
async def signed_api(
    stack_settings: Settings, api: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app on the session's database and Temporal (the session's worker behind
    it), able to verify Twilio webhooks: how a contact's text reaches keepwarm."""
    settings = make_settings(
        database_url=stack_settings.database_url,
        temporal_address=stack_settings.temporal_address,
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        public_url=PUBLIC_URL,
    )
    async with serve(settings) as client:
        yield client


async def text_in(signed_api: httpx.AsyncClient, chat: Conversation, body: str) -> None:
    """The contact texts ``body`` to the org's number (a signed Twilio webhook)."""
    path = f"/v1/webhooks/twilio/{chat.org_id}"
    sid = "SM" + uuid.uuid4().hex
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": chat.phone,
        "To": SMS_TO,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    response = await signed_api.post(
        path,
        content=urlencode(form),
        headers=twilio_signature_headers(PUBLIC_URL + path, form, TWILIO_TOKEN),
    )
    assert response.status_code == 200, response.text


# --- takeover and release --------------------------------------------------------------------


async def test_an_operator_holds_a_thread_until_they_release_it(
    api: httpx.AsyncClient, stack_client: Client, pg_engine: Engine
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    bob = await add_operator(api, chat.headers, "Bob")
    before = await thread_of(api, chat)
    assert (before["held_by"], before["handled_by"], before["releases_at"]) == (None, "ai", None)

    taken = await act(api, chat, "takeover", ann)

    assert taken.status_code == 200, taken.text
    hold = taken.json()
    assert hold["thread_id"] == chat.thread_id
    assert (hold["held_by"], hold["acknowledged"], hold["changed"]) == (ann, [], True)
    assert when(hold["releases_at"]) == when(hold["held_since"]) + TIMEOUT
    thread = await thread_of(api, chat)
    assert (thread["held_by"], thread["handled_by"], thread["status"]) == (ann, "human", "assigned")
    assert thread["held_since"] is not None
    assert when(thread["held_since"]) == when(hold["held_since"])
    assert when(thread["releases_at"]) == when(hold["releases_at"])
    listed = (await api.get("/v1/threads", headers=chat.headers)).json()["items"]
    assert [(t["thread_id"], t["held_by"]) for t in listed] == [(chat.thread_id, ann)]

    again = await act(api, chat, "takeover", ann)
    assert again.status_code == 200, again.text
    assert (again.json()["held_by"], again.json()["changed"]) == (ann, False)
    assert when(again.json()["held_since"]) == when(hold["held_since"])  # the hold goes on

    stolen = await act(api, chat, "takeover", bob)
    assert error_of(stolen) == (409, "thread_held", [])
    assert "Ann holds this thread" in stolen.json()["error"]["message"]
    refused = await act(api, chat, "release", bob)
    assert error_of(refused) == (409, "thread_held", [])
    assert (await thread_of(api, chat))["held_by"] == ann
    await hold_settled(stack_client, chat, ann)
    await eventually(lambda: lead_paused(api, chat, True), within=15, every=POLL)

    released = await act(api, chat, "release", ann)

    assert released.status_code == 200, released.text
    assert {k: released.json()[k] for k in ("held_by", "held_since", "releases_at", "changed")} == {
        "held_by": None,
        "held_since": None,
        "releases_at": None,
        "changed": True,
    }
    thread = await thread_of(api, chat)
    assert (thread["held_by"], thread["held_since"], thread["releases_at"]) == (None, None, None)
    assert thread["handled_by"] == "ai"
    await hold_settled(stack_client, chat, None)
    await eventually(lambda: lead_paused(api, chat, False), within=15, every=POLL)
    # Released without a message, the takeover still counts for the lead.
    totals = per_metric(assert_running_totals_follow_the_rows(pg_engine, chat.org_id))
    assert (totals["leads:touched"], totals["leads:touched:taken_over"]) == (1, 1)

    # Nobody holds it now: a second release changes nothing, and Bob may take it.
    twice = await act(api, chat, "release", ann)
    assert twice.status_code == 200, twice.text
    assert (twice.json()["held_by"], twice.json()["changed"]) == (None, False)
    await hold_settled(stack_client, chat, None)
    bobs = await act(api, chat, "takeover", bob)
    assert bobs.status_code == 200, bobs.text
    assert (bobs.json()["held_by"], bobs.json()["changed"]) == (bob, True)
    assert (await thread_of(api, chat))["held_by"] == bob
    await hold_settled(stack_client, chat, bob)

    lead = (await api.get(f"/v1/leads/{chat.lead_id}", headers=chat.headers)).json()
    takeovers = sorted(
        (when(e["at"]), e["summary"]) for e in lead["timeline"] if e["kind"] == "takeover"
    )
    assert [summary.split(":")[0] for _, summary in takeovers] == [
        "Taken over by Ann",
        "Released by Ann",
        "Taken over by Bob",
    ]
    assert (await act(api, chat, "release", bob)).status_code == 200
    await hold_settled(stack_client, chat, None)


async def test_the_owner_may_release_another_operators_hold(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    owner = await add_operator(api, chat.headers, "Sam", role="owner")
    assert (await act(api, chat, "takeover", ann)).status_code == 200
    await hold_settled(stack_client, chat, ann)

    released = await act(api, chat, "release", owner)

    assert released.status_code == 200, released.text
    assert (released.json()["held_by"], released.json()["changed"]) == (None, True)
    thread = await thread_of(api, chat)
    assert (thread["held_by"], thread["handled_by"]) == (None, "ai")
    await hold_settled(stack_client, chat, None)


async def test_takeover_and_release_refuse_bad_requests_and_other_orgs(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    _, other_headers = await create_org(api, name="Other Cleaning")
    stranger = await add_operator(api, other_headers, "Stranger")
    path = f"/v1/threads/{chat.thread_id}"

    for action in ("takeover", "release"):
        unknown = await act(api, chat, action, "op_nobody")
        foreign_operator = await act(api, chat, action, stranger)
        foreign_key = await api.post(
            f"{path}/{action}", json={"operator_id": stranger}, headers=other_headers
        )
        missing_thread = await api.post(
            "/v1/threads/th_nope/" + action, json={"operator_id": ann}, headers=chat.headers
        )
        no_operator = await api.post(f"{path}/{action}", json={}, headers=chat.headers)
        blank = await act(api, chat, action, "")
        extra = await act(api, chat, action, ann, note="mine now")

        assert error_of(unknown) == (422, "invalid_input", ["operator_id"]), action
        assert error_of(foreign_operator) == (422, "invalid_input", ["operator_id"]), action
        assert error_of(foreign_key)[:2] == (404, "not_found"), action
        assert error_of(missing_thread)[:2] == (404, "not_found"), action
        assert error_of(no_operator) == (422, "invalid_input", ["operator_id"]), action
        assert error_of(blank) == (422, "invalid_input", ["operator_id"]), action
        assert error_of(extra) == (422, "invalid_input", ["note"]), action

    thread = await thread_of(api, chat)
    assert (thread["held_by"], thread["handled_by"]) == (None, "ai")
    assert (await api.get("/v1/threads", headers=other_headers)).json()["items"] == []
    # None of that reached Temporal: no Takeover workflow was started for the thread.
    takeover = stack_client.get_workflow_handle(f"takeover-{chat.org_id}-{chat.thread_id}")
    with pytest.raises(RPCError) as never:
        await takeover.describe()
    assert never.value.status == RPCStatusCode.NOT_FOUND


# --- replies ---------------------------------------------------------------------------------


async def test_a_reply_goes_out_as_the_operators_on_the_threads_channel_once(
    api: httpx.AsyncClient, stack_client: Client, pg_engine: Engine
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    body = "Hi Grace, Ann here: Thursday at 10 works."

    replied = await act(api, chat, "reply", ann, body=body, idempotency_key="reply-1")

    assert replied.status_code == 202, replied.text
    answer = replied.json()
    assert (answer["thread_id"], answer["channel"]) == (chat.thread_id, "sms")
    assert (answer["took_over"], answer["duplicate"]) == (True, False)
    thread = await thread_of(api, chat)
    assert (thread["held_by"], thread["handled_by"], thread["status"]) == (ann, "human", "assigned")
    [message] = human_messages(thread)
    assert message["id"] == answer["message_id"]
    assert (message["operator_id"], message["channel"], message["direction"], message["body"]) == (
        ann,
        "sms",
        "outbound",
        body,
    )
    # The hold runs from the operator's last message.
    assert when(thread["releases_at"]) == when(message["created_at"]) + TIMEOUT

    sent = await reply_sent(api, chat, answer["message_id"])
    assert sent["status"] == "simulated"  # dry run: sent without a provider

    retry = await act(api, chat, "reply", ann, body=body, idempotency_key="reply-1")

    assert retry.status_code == 202, retry.text
    assert retry.json()["message_id"] == answer["message_id"]
    assert (retry.json()["duplicate"], retry.json()["took_over"]) == (True, False)
    thread = await thread_of(api, chat)
    assert [m["id"] for m in human_messages(thread)] == [answer["message_id"]]
    assert [m["status"] for m in human_messages(thread)] == ["simulated"]
    messages = await outbound(api, chat.headers, chat.thread_id)
    assert [m["sender"] for m in messages].count("human") == 1

    # The holder's next reply (no key) is a new message; the thread was theirs already.
    second = await act(api, chat, "reply", ann, body="See you then!")
    assert second.status_code == 202, second.text
    assert (second.json()["took_over"], second.json()["duplicate"]) == (False, False)
    assert second.json()["message_id"] != answer["message_id"]
    assert (await reply_sent(api, chat, second.json()["message_id"]))["status"] == "simulated"
    assert [m["body"] for m in human_messages(await thread_of(api, chat))] == [
        body,
        "See you then!",
    ]
    await hold_settled(stack_client, chat, ann)
    assert (await act(api, chat, "release", ann)).status_code == 200
    await hold_settled(stack_client, chat, None)

    # A late retry of the first reply, after the release: the same answer, and the thread
    # stays the AI's (a retry takes nothing over).
    late = await act(api, chat, "reply", ann, body=body, idempotency_key="reply-1")
    assert late.status_code == 202, late.text
    assert (late.json()["message_id"], late.json()["duplicate"], late.json()["took_over"]) == (
        answer["message_id"],
        True,
        False,
    )
    assert (await thread_of(api, chat))["held_by"] is None
    # The agents' totals: the AI's first touch (dry run), and the lead taken over by Ann.
    totals = per_metric(assert_running_totals_follow_the_rows(pg_engine, chat.org_id))
    assert (totals["leads:touched"], totals["leads:touched:taken_over"]) == (1, 1)
    assert (totals["sent:sms:other"], totals.get("leads:touched:replied", 0)) == (1, 0)


async def test_a_reply_while_another_operator_holds_the_thread_is_refused(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    bob = await add_operator(api, chat.headers, "Bob")
    assert (await act(api, chat, "takeover", ann)).status_code == 200

    refused = await act(api, chat, "reply", bob, body="Bob here, I can help", idempotency_key="k")

    assert error_of(refused) == (409, "thread_held", [])
    thread = await thread_of(api, chat)
    assert human_messages(thread) == []
    assert thread["held_by"] == ann
    await hold_settled(stack_client, chat, ann)
    assert (await act(api, chat, "release", ann)).status_code == 200
    await hold_settled(stack_client, chat, None)


async def test_bad_replies_get_422_and_send_nothing(api: httpx.AsyncClient) -> None:
    chat = await conversation(api)  # the contact has a phone and no email
    ann = await add_operator(api, chat.headers, "Ann")
    _, other_headers = await create_org(api, name="Other Cleaning")
    stranger = await add_operator(api, other_headers, "Stranger")

    cases: list[tuple[Json, str]] = [
        ({"operator_id": ann, "body": "   "}, "body"),
        ({"operator_id": ann, "body": ""}, "body"),
        ({"operator_id": ann}, "body"),
        ({"body": "Hello"}, "operator_id"),
        ({"operator_id": "op_nobody", "body": "Hello"}, "operator_id"),
        ({"operator_id": stranger, "body": "Hello"}, "operator_id"),
        ({"operator_id": ann, "body": "Hello", "channel": "voice"}, "channel"),
        ({"operator_id": ann, "body": "Hello", "channel": "email"}, "channel"),
        ({"operator_id": ann, "body": "Hello", "idempotency_key": ""}, "idempotency_key"),
        ({"operator_id": ann, "body": "Hello", "cc": "bob"}, "cc"),
    ]
    for body, field in cases:
        response = await api.post(
            f"/v1/threads/{chat.thread_id}/reply", json=body, headers=chat.headers
        )
        assert error_of(response) == (422, "invalid_input", [field]), body

    foreign = await api.post(
        f"/v1/threads/{chat.thread_id}/reply",
        json={"operator_id": stranger, "body": "Hello"},
        headers=other_headers,
    )
    assert error_of(foreign)[:2] == (404, "not_found")
    thread = await thread_of(api, chat)
    assert human_messages(thread) == []
    assert (thread["held_by"], thread["handled_by"]) == (None, "ai")  # refused: not taken over


async def test_a_reply_to_a_contact_who_texted_stop_is_refused(
    api: httpx.AsyncClient, signed_api: httpx.AsyncClient
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    await text_in(signed_api, chat, "STOP")

    async def opted_out() -> bool:
        lead = (await api.get(f"/v1/leads/{chat.lead_id}", headers=chat.headers)).json()
        sent = await outbound(api, chat.headers, chat.thread_id)
        # The lead has ended and the opt-out's confirmation has gone: nothing else is coming.
        return (
            lead["stage"] == "opted_out"
            and len(sent) == 2
            and all(m["status"] != "pending" for m in sent)
        )

    await eventually(opted_out, within=20, every=POLL)

    refused = await act(api, chat, "reply", ann, body="Sorry to see you go!", channel="sms")
    default = await act(api, chat, "reply", ann, body="Sorry to see you go!")

    assert error_of(refused) == (409, "opted_out", [])
    assert error_of(default) == (409, "opted_out", [])  # the thread's channel is SMS
    thread = await thread_of(api, chat)
    assert human_messages(thread) == []
    assert thread["held_by"] is None
    assert [m["sender"] for m in await outbound(api, chat.headers, chat.thread_id)].count(
        "human"
    ) == 0


# --- escalations -----------------------------------------------------------------------------


async def test_taking_over_acknowledges_the_threads_open_escalation(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    escalation_id = await escalate(api, chat)
    assert (await attention_item(api, chat, escalation_id))["status"] == "open"

    taken = await act(api, chat, "takeover", ann)

    assert taken.status_code == 200, taken.text
    assert taken.json()["acknowledged"] == [escalation_id]
    item = await attention_item(api, chat, escalation_id)
    assert (item["status"], item["acknowledged_by"]) == ("acknowledged", ann)
    [shown] = (await thread_of(api, chat))["escalations"]
    assert (shown["escalation_id"], shown["status"]) == (escalation_id, "acknowledged")
    again = await act(api, chat, "takeover", ann)
    assert again.json()["acknowledged"] == []  # nothing more to acknowledge

    ladder = stack_client.get_workflow_handle(f"escalation-{chat.org_id}-{chat.thread_id}")

    async def ladder_knows() -> bool:
        try:
            state = await ladder.query(EscalationWorkflow.state)
        except (RPCError, WorkflowQueryFailedError):
            return False
        return state.acknowledged_by == ann

    await eventually(ladder_knows, within=15, every=POLL)
    state = await ladder_ended(api, stack_client, chat, escalation_id, ann)
    assert (state.acknowledged_by, state.resolved_by, state.level) == (ann, ann, 0)
    await hold_settled(stack_client, chat, ann)
    assert (await act(api, chat, "release", ann)).status_code == 200
    await hold_settled(stack_client, chat, None)


async def test_acknowledging_an_escalation_needs_one_of_the_orgs_operators(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    chat = await conversation(api)
    ann = await add_operator(api, chat.headers, "Ann")
    _, other_headers = await create_org(api, name="Other Cleaning")
    stranger = await add_operator(api, other_headers, "Stranger")
    escalation_id = await escalate(api, chat)
    path = f"/v1/escalations/{escalation_id}/acknowledge"

    unknown = await api.post(path, json={"operator_id": "op_nobody"}, headers=chat.headers)
    foreign = await api.post(path, json={"operator_id": stranger}, headers=chat.headers)

    assert error_of(unknown) == (422, "invalid_input", ["operator_id"])
    assert error_of(foreign) == (422, "invalid_input", ["operator_id"])
    item = await attention_item(api, chat, escalation_id)
    assert (item["status"], item["acknowledged_by"]) == ("open", None)

    acked = await api.post(path, json={"operator_id": ann}, headers=chat.headers)

    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", ann)
    state = await ladder_ended(api, stack_client, chat, escalation_id, ann)
    assert (state.acknowledged_by, state.resolved_by) == (ann, ann)
