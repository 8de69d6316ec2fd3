"""Admin retry in live mode: a failed send retried through the API reaches the provider (the
fake Twilio and Resend, through the real SDKs) exactly once, however often it is asked for and
however its first attempt ends; what must not go again is refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType

from models.database import session_scope
from models.rules.messages import sender_address
from models.store import agent_days
from models.store.consent import record_consent_change
from models.store.contacts import address_for
from models.store.orgs import settings_for
from models.store.sessions import add_session
from models.tables import Lead, Message, utcnow
from models.values import Channel, Direction, MessageStatus, Sender, new_id
from tests.channels.conftest import Live
from tests.channels.test_live_sends import new_lead, outbound
from tests.conftest import (
    agent_totals_of,
    assert_running_totals_follow_the_rows,
    eventually,
    per_metric,
)
from tests.fakes.providers import Provider
from workflows.retry import RetrySendInput, RetrySendResult, RetrySendWorkflow
from workflows.task_queues import LEADS

GAVE_UP = "down: Twilio answered 503 (no attempt left before the send's deadline)"


def failed_message(
    engine: Engine,
    lead_id: str,
    *,
    body: str,
    error: str,
    channel: Channel = Channel.SMS,
    attempted: bool = True,
    provider_message_id: str | None = None,
) -> str:
    """A touch of the lead that failed for good, as the send path leaves one: its row written
    with its key and address, ``attempted_at`` set when a provider call was made."""
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        settings = settings_for(session, org_id=lead.org_id)
        now = utcnow()
        message = Message(
            id=new_id("msg"),
            org_id=lead.org_id,
            lead_id=lead.id,
            channel=channel,
            direction=Direction.OUTBOUND,
            sender=Sender.AI,
            to_address=address_for(
                session, org_id=lead.org_id, contact_id=lead.contact_id, channel=channel
            ),
            from_address=sender_address(settings, channel),
            body=body,
            subject="A note from Shine Cleaning" if channel == Channel.EMAIL else None,
            status=MessageStatus.FAILED,
            error=error,
            idempotency_key=f"test-retry/{uuid.uuid4().hex}/touch-2",
            mode=settings.provider_mode.value,
            created_at=now - timedelta(hours=2),
            attempted_at=now - timedelta(hours=2) if attempted else None,
            touched_at=now - timedelta(hours=2),
            provider_message_id=provider_message_id,
            sent_at=now - timedelta(hours=2) if provider_message_id else None,
            status_at=now - timedelta(hours=1),
        )
        session.add(message)
        return message.id


def row(engine: Engine, message_id: str) -> Message:
    with Session(engine) as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


async def settled(engine: Engine, message_id: str) -> Message:
    async def check() -> Message | None:
        found = row(engine, message_id)
        return found if found.status not in {"pending", "failed"} else None

    return await eventually(check, within=60, every=0.2)


def posts_of(live: Live, body: str) -> list[Any]:
    return [
        r
        for r in live.fake.requests("twilio")
        if r.method == "POST" and r.form is not None and r.form.get("Body") == body
    ]


async def retry(
    live: Live, headers: dict[str, str], message_id: str, **body: Any
) -> dict[str, Any]:
    answer = await live.api.post(
        f"/v1/messages/{message_id}/retry", json=body or None, headers=headers
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


async def texted_lead(live: Live, headers: dict[str, str], phone: str) -> str:
    """A lead whose first touch went: the failed message is a later one."""
    lead_id = await new_lead(live, headers, name="Ada", phone=phone, consent={"sms": True})
    await outbound(live, headers, lead_id)
    return lead_id


async def test_a_failed_sms_retried_twice_at_once_reaches_twilio_once(
    live: Live, pg_engine: Engine
) -> None:
    _, headers = await live.org()
    lead_id = await texted_lead(live, headers, "+447911123470")
    body = "Hi Ada, still looking for a deep clean this week?"
    message_id = failed_message(pg_engine, lead_id, body=body, error=GAVE_UP)

    failed = await live.api.get("/v1/messages", params={"status": "failed"}, headers=headers)
    [item] = failed.json()["items"]
    assert (item["id"], item["error"], item["error_class"]) == (message_id, GAVE_UP, "down")

    first, second = await asyncio.gather(
        retry(live, headers, message_id), retry(live, headers, message_id)
    )
    sent = await settled(pg_engine, message_id)
    again = await retry(live, headers, message_id)  # a click on a stale page

    assert first["workflow_id"] == second["workflow_id"] == f"retry-{message_id}"
    assert sorted([first["duplicate"], second["duplicate"]]) == [False, True]
    assert again["duplicate"] is True
    [post] = posts_of(live, body)
    assert post.form is not None
    callback = parse_qs(urlsplit(post.form["StatusCallback"]).query)
    assert callback["key"] == [sent.idempotency_key]
    assert (sent.status, sent.error) == ("queued", None)
    [created] = [m for m in live.fake.objects("twilio") if m["body"] == body]
    assert sent.provider_message_id == created["sid"]
    listed = await live.api.get("/v1/messages", params={"status": "failed"}, headers=headers)
    assert listed.json()["items"] == []
    await asyncio.sleep(1)  # nothing else comes of the three requests
    assert len(posts_of(live, body)) == 1


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.EMAIL])
async def test_a_retry_whose_first_attempt_lost_the_answer_sends_once(
    live: Live, pg_engine: Engine, channel: Channel
) -> None:
    _, headers = await live.org()
    if channel == Channel.SMS:
        lead_id = await texted_lead(live, headers, "+447911123471")
    else:
        lead_id = await new_lead(live, headers, name="Grace", email="grace@example.com")
        await outbound(live, headers, lead_id)
    body = f"A last note about your quote ({channel.value})."
    # It failed before any provider call (the worker had no live adapter then).
    message_id = failed_message(
        pg_engine,
        lead_id,
        body=body,
        channel=channel,
        error=f"this worker has no live {channel.value} adapter",
        attempted=False,
    )
    provider: Provider = "twilio" if channel == Channel.SMS else "resend"
    before = len(live.fake.objects(provider))
    # The provider takes the retry's request at once and answers after the SDK gave up
    # waiting (10 s): the attempt ends without knowing it was sent, like a worker killed there.
    live.fake.delay_next(provider, 15)

    accepted = await retry(live, headers, message_id)
    sent = await settled(pg_engine, message_id)

    created = live.fake.objects(provider)[before:]
    assert len(created) == 1
    assert sent.provider_message_id == created[0]["sid" if provider == "twilio" else "id"]
    if channel == Channel.SMS:
        assert len(posts_of(live, body)) == 1  # reconciled by listing Twilio's messages
    else:
        # Resend is asked again with the same key, and answers with the first email.
        asked = [r for r in live.fake.requests("resend") if r.json and r.json["text"] == body]
        assert len(asked) == 2
        assert {r.idempotency_key for r in asked} == {sent.idempotency_key}
        assert asked[0].json["headers"]["List-Unsubscribe"].startswith("<https://")
    history = await live.client.get_workflow_handle(accepted["workflow_id"]).fetch_history()
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) >= 2  # the first attempt really was cut off


async def test_an_opted_out_recipient_is_never_sent_to_again(live: Live, pg_engine: Engine) -> None:
    org_id, headers = await live.org()
    lead_id = await texted_lead(live, headers, "+447911123472")
    body = "Hi Ada, one more thing about your booking."
    message_id = failed_message(pg_engine, lead_id, body=body, error=GAVE_UP)
    with session_scope(pg_engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        record_consent_change(
            session,
            org_id=org_id,
            contact_id=lead.contact_id,
            channel=Channel.SMS,
            granted=False,
            source="twilio",
            evidence="STOP",
        )

    plain = await live.api.post(f"/v1/messages/{message_id}/retry", headers=headers)
    forced = await live.api.post(
        f"/v1/messages/{message_id}/retry", json={"force": True}, headers=headers
    )
    # Consent is read again when the retry sends: a retry started before the opt-out (as
    # the API would have) refuses it too.
    result: RetrySendResult = await live.client.execute_workflow(
        RetrySendWorkflow.run,
        RetrySendInput(org_id=org_id, message_id=message_id, force=True),
        id=f"retry-test-{uuid.uuid4().hex[:8]}",
        task_queue=LEADS,
    )

    assert plain.status_code == forced.status_code == 409
    assert plain.json()["error"]["code"] == forced.json()["error"]["code"] == "opted_out"
    assert result.status == "failed" and result.reason and "opted out" in result.reason
    assert posts_of(live, body) == []
    assert row(pg_engine, message_id).status == "failed"


async def test_a_business_refusal_goes_again_only_when_forced(
    live: Live, pg_engine: Engine
) -> None:
    _, headers = await live.org()
    lead_id = await texted_lead(live, headers, "+447911123473")
    body = "Hi Ada, your quote is ready."
    refusal = "business_refusal: Twilio refused the message (400, code 21408)"
    message_id = failed_message(pg_engine, lead_id, body=body, error=refusal)

    listed = await live.api.get("/v1/messages", params={"status": "failed"}, headers=headers)
    refused = await live.api.post(f"/v1/messages/{message_id}/retry", headers=headers)
    assert posts_of(live, body) == []
    await retry(live, headers, message_id, force=True)
    sent = await settled(pg_engine, message_id)

    assert listed.json()["items"][0]["error_class"] == "business_refusal"
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "business_refusal"
    assert '{"force": true}' in refused.json()["error"]["message"]
    assert sent.status == "queued"
    assert len(posts_of(live, body)) == 1


async def test_an_sms_a_carrier_did_not_deliver_is_sent_anew_and_a_bounce_is_not(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    lead_id = await texted_lead(live, headers, "+447911123474")
    body = "Hi Ada, we can come on Thursday."
    # Twilio took it, then reported it undelivered: finding it again would not send it.
    old_sid = "SM" + uuid.uuid4().hex
    message_id = failed_message(
        pg_engine, lead_id, body=body, error="Twilio error 30003", provider_message_id=old_sid
    )
    emailed = await new_lead(live, headers, name="Grace", email="grace@example.com")
    await outbound(live, headers, emailed)
    bounced = failed_message(
        pg_engine,
        emailed,
        body="Your quote",
        channel=Channel.EMAIL,
        error="bounced",
        provider_message_id=str(uuid.uuid4()),
    )
    with session_scope(pg_engine) as session:  # the rows written here, counted
        agent_days.rebuild(session, org_id=org_id)
    before = per_metric(agent_totals_of(pg_engine, org_id)[0])

    await retry(live, headers, message_id)
    sent = await settled(pg_engine, message_id)
    refused = await live.api.post(f"/v1/messages/{bounced}/retry", headers=headers)

    assert len(posts_of(live, body)) == 1
    assert sent.provider_message_id not in {None, old_sid}
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "bounced"
    # Taken back when it was reopened, counted again when it went: one send still.
    assert per_metric(assert_running_totals_follow_the_rows(pg_engine, org_id)) == before


async def test_only_the_orgs_owner_retries_only_its_own_failed_outbound_messages(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    _, other_headers = await live.org()
    lead_id = await texted_lead(live, headers, "+447911123475")
    [first_touch] = (
        await live.api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
    ).json()["items"]
    body = "Hi Ada, just checking in."
    message_id = failed_message(pg_engine, lead_id, body=body, error=GAVE_UP)
    sessions = {}
    for role in ("operator", "owner"):
        created = await live.api.post(
            "/v1/operators",
            json={"name": role.title(), "email": f"{role}-{org_id}@shine.example", "role": role},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        with session_scope(pg_engine) as session:
            token, _ = add_session(
                session,
                org_id=org_id,
                operator_id=created.json()["id"],
                now=utcnow(),
                user_agent="tests",
            )
        sessions[role] = {
            "Cookie": f"kw_session={token}",
            "Sec-Fetch-Site": "same-origin",
            "HX-Request": "true",
        }

    another_org = await live.api.post(f"/v1/messages/{message_id}/retry", headers=other_headers)
    operator = await live.api.post(f"/v1/messages/{message_id}/retry", headers=sessions["operator"])
    already_sent = await live.api.post(f"/v1/messages/{first_touch['id']}/retry", headers=headers)
    unknown = await live.api.post("/v1/messages/msg_nothing/retry", headers=headers)
    assert posts_of(live, body) == []
    owner = await live.api.post(f"/v1/messages/{message_id}/retry", headers=sessions["owner"])
    await settled(pg_engine, message_id)

    assert another_org.status_code == unknown.status_code == 404
    assert operator.status_code == 403 and operator.json()["error"]["code"] == "owner_only"
    assert already_sent.status_code == 409
    assert already_sent.json()["error"]["code"] == "not_failed"
    assert "queued" in already_sent.json()["error"]["message"]
    assert owner.status_code == 202, owner.text
    assert len(posts_of(live, body)) == 1
