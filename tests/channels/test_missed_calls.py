"""Calls to the org's number: a missed one is texted back once (at most once per caller per
20 minutes, never after a STOP), and any call from someone with an open lead reaches the lead
like a text would."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models.tables import Message, Thread, WebhookReceipt, utcnow
from tests.channels.conftest import (
    PHONE_NUMBER_ID,
    SMS_FROM,
    TWILIO_TOKEN,
    VAPI_SECRET,
    Live,
    webhook_url,
)
from tests.conftest import eventually
from tests.fakes.providers import Webhook

#: The issue's promise: the caller has the text-back within this many seconds.
TEXT_BACK_WITHIN = 30
TEXT_BACK_START = "Sorry we missed your call - Shine Cleaning here."


def twilio_call(
    live: Live, org_id: str, caller: str, status: str = "no-answer", **extra: Any
) -> Webhook:
    """Twilio's signed status callback for a call to the org's number that ended."""
    return live.fake.twilio_voice_status(
        webhook_url("twilio", org_id),
        from_=caller,
        to=SMS_FROM,
        status=status,
        auth_token=TWILIO_TOKEN,
        **extra,
    )


def call_id(hook: Webhook) -> str:
    assert hook.form is not None
    return hook.form["CallSid"]


def texts_to(live: Live, number: str) -> list[dict[str, Any]]:
    """The SMS the fake Twilio accepted for ``number``, oldest first."""
    return [m for m in live.fake.objects("twilio") if m["to"] == number]


def call_message(engine: Engine, org_id: str, provider_call_id: str) -> Message:
    """The inbound message a call was recorded as."""
    with Session(engine) as session:
        return session.exec(
            select(Message).where(
                Message.org_id == org_id, Message.provider_message_id == provider_call_id
            )
        ).one()


async def text_back_settled(live: Live, engine: Engine, org_id: str, provider_call_id: str) -> None:
    """Wait until the call's text-back workflow has finished (sent, or withheld)."""
    message = call_message(engine, org_id, provider_call_id)
    handle = live.client.get_workflow_handle(f"text-back-{org_id}-{message.id}")
    await asyncio.wait_for(handle.result(), timeout=TEXT_BACK_WITHIN)


def contact_of(engine: Engine, org_id: str, provider_call_id: str) -> str:
    """The contact a call was recorded for."""
    message = call_message(engine, org_id, provider_call_id)
    with Session(engine) as session:
        thread = session.get(Thread, message.thread_id)
        assert thread is not None
        return thread.contact_id


def receipts(engine: Engine, org_id: str) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(WebhookReceipt).where(WebhookReceipt.org_id == org_id)
        ).one()


def backdate_text_backs(engine: Engine, org_id: str, *, minutes: int) -> None:
    """Make the org's text-backs look ``minutes`` old (the test can't wait 20 minutes)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Message).where(
                Message.org_id == org_id, col(Message.idempotency_key).startswith("text-back/")
            )
        ).all()
        assert rows
        for row in rows:
            row.created_at = utcnow() - timedelta(minutes=minutes)
            session.add(row)
        session.commit()


async def test_a_missed_call_is_texted_back_once_within_30_seconds(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    caller = "+447911200101"
    hook = twilio_call(live, org_id, caller)
    started = time.monotonic()

    answer = await live.deliver(hook)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "duplicate": False}

    async def texted() -> list[dict[str, Any]]:
        return texts_to(live, caller)

    await eventually(texted, within=TEXT_BACK_WITHIN)
    assert time.monotonic() - started < TEXT_BACK_WITHIN
    await text_back_settled(live, pg_engine, org_id, call_id(hook))
    [text] = texts_to(live, caller)
    assert text["from"] == SMS_FROM
    assert text["body"].startswith(TEXT_BACK_START)
    # On the caller's thread: their call, then our text. The call alone opens no lead.
    messages = (await live.api.get("/v1/messages", headers=headers)).json()["items"]
    assert sorted((m["direction"], m["channel"], m["sender"]) for m in messages) == [
        ("inbound", "voice", "customer"),
        ("outbound", "sms", "system"),
    ]
    assert (await live.api.get("/v1/leads", headers=headers)).json()["items"] == []
    # They called first, so they may be texted; automated calls need more than that.
    contact = contact_of(pg_engine, org_id, call_id(hook))
    log = await live.api.get(f"/v1/contacts/{contact}/consent-log", headers=headers)
    assert [(i["channel"], i["granted"], i["source"]) for i in log.json()["items"]] == [
        ("sms", True, "twilio call (the person called first)")
    ]


async def test_a_second_missed_call_within_20_minutes_gets_no_second_text(
    live: Live, pg_engine: Engine
) -> None:
    org_id, _ = await live.org()
    caller = "+447911200102"
    first = twilio_call(live, org_id, caller)
    assert (await live.deliver(first)).status_code == 200
    await text_back_settled(live, pg_engine, org_id, call_id(first))
    assert len(texts_to(live, caller)) == 1

    # Five minutes later, they call again.
    backdate_text_backs(pg_engine, org_id, minutes=5)
    second = twilio_call(live, org_id, caller, status="busy")
    assert (await live.deliver(second)).status_code == 200
    await text_back_settled(live, pg_engine, org_id, call_id(second))
    assert len(texts_to(live, caller)) == 1

    # Twenty-one minutes after the text, a third call is texted back again.
    backdate_text_backs(pg_engine, org_id, minutes=21)
    third = twilio_call(live, org_id, caller, status="canceled")
    assert (await live.deliver(third)).status_code == 200
    await text_back_settled(live, pg_engine, org_id, call_id(third))
    sent = texts_to(live, caller)
    assert len(sent) == 2
    assert all(text["body"].startswith(TEXT_BACK_START) for text in sent)


async def test_a_redelivered_missed_call_is_texted_back_once(live: Live, pg_engine: Engine) -> None:
    org_id, _ = await live.org()
    caller = "+447911200103"
    hook = twilio_call(live, org_id, caller)

    answers = [await live.deliver(hook) for _ in range(4)]

    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True]
    await text_back_settled(live, pg_engine, org_id, call_id(hook))
    await asyncio.sleep(0.5)  # room for a duplicate to show up, were there one
    assert len(texts_to(live, caller)) == 1
    assert receipts(pg_engine, org_id) == 1


async def test_a_caller_who_sent_stop_is_not_texted_back(
    live: Live, pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="activities.messages")
    org_id, headers = await live.org()
    caller = "+447911200104"
    stop = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_=caller,
        to=SMS_FROM,
        body="STOP",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(stop)).status_code == 200

    async def confirmed() -> list[dict[str, Any]]:
        return texts_to(live, caller)

    [confirmation] = await eventually(confirmed, within=TEXT_BACK_WITHIN)
    assert "unsubscribed" in confirmation["body"]
    hook = twilio_call(live, org_id, caller)

    assert (await live.deliver(hook)).status_code == 200

    await text_back_settled(live, pg_engine, org_id, call_id(hook))
    assert texts_to(live, caller) == [confirmation]
    contact = contact_of(pg_engine, org_id, call_id(hook))
    log = (await live.api.get(f"/v1/contacts/{contact}/consent-log", headers=headers)).json()
    assert [(i["channel"], i["granted"]) for i in log["items"]] == [("sms", False)]  # stands
    withheld = [r for r in caplog.records if "withheld" in r.getMessage()]
    assert [r.getMessage().split(": ", 1)[1] for r in withheld] == ["the person opted out of SMS"]
    assert not any(caller in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("status", "texted_back"), [("no-answer", True), ("completed", False)])
async def test_a_call_from_someone_with_an_open_lead_reaches_the_lead_like_a_reply(
    live: Live, pg_engine: Engine, status: str, texted_back: bool
) -> None:
    org_id, headers = await live.org()
    caller = "+447911200105"
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": caller, "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def lead() -> dict[str, Any]:
        detail: dict[str, Any] = (
            await live.api.get(f"/v1/leads/{lead_id}", headers=headers)
        ).json()
        return detail

    async def contacted() -> bool:
        return bool((await lead()).get("stage") == "contacted")

    await eventually(contacted, within=TEXT_BACK_WITHIN)
    hook = twilio_call(live, org_id, caller, status=status, duration=95)

    assert (await live.deliver(hook)).status_code == 200

    async def engaged() -> dict[str, Any] | None:
        detail = await lead()
        return detail if detail["stage"] == "engaged" else None

    detail = await eventually(engaged, within=15)
    call = call_message(pg_engine, org_id, call_id(hook))
    assert call.lead_id == lead_id
    assert call.body == ("Missed call" if texted_back else "Inbound call")
    replies = [item for item in detail["timeline"] if item["kind"] == "reply"]
    assert [item["data"]["message_id"] for item in replies] == [call.id]
    assert any(
        item["kind"] == "stage_changed" and "replied by voice" in item["summary"]
        for item in detail["timeline"]
    )
    if texted_back:
        await text_back_settled(live, pg_engine, org_id, call_id(hook))
    else:
        await asyncio.sleep(1)  # room for a wrong text-back to show up
    bodies = [text["body"] for text in texts_to(live, caller)]
    assert sum(body.startswith(TEXT_BACK_START) for body in bodies) == int(texted_back)


@pytest.mark.parametrize("forgery", ["wrong token", "tampered body", "another org's url"])
async def test_a_forged_call_callback_gets_401_and_records_nothing(
    live: Live, pg_engine: Engine, forgery: str
) -> None:
    org_id, _ = await live.org()
    caller = "+447911200106"
    if forgery == "wrong token":
        hook = live.fake.twilio_voice_status(
            webhook_url("twilio", org_id),
            from_=caller,
            to=SMS_FROM,
            status="no-answer",
            auth_token="not-the-token",
        )
    elif forgery == "tampered body":
        hook = twilio_call(live, org_id, caller)
        hook = replace(hook, body=hook.body.replace(b"no-answer", b"busy"))
    else:
        other_org, _ = await live.org()
        hook = replace(twilio_call(live, other_org, caller), url=webhook_url("twilio", org_id))

    answer = await live.deliver(hook)

    assert answer.status_code == 401, answer.text
    assert receipts(pg_engine, org_id) == 0
    with Session(pg_engine) as session:
        assert not session.exec(select(Message).where(Message.org_id == org_id)).all()
    await asyncio.sleep(0.5)
    assert texts_to(live, caller) == []


@pytest.mark.parametrize(
    ("ended_reason", "texted_back"),
    [("customer-did-not-answer", True), ("customer-ended-call", False)],
)
async def test_a_vapi_inbound_call_that_ended_unanswered_is_texted_back(
    live: Live, pg_engine: Engine, ended_reason: str, texted_back: bool
) -> None:
    org_id, _ = await live.org()
    caller = "+447911200107"
    vapi_call_id = str(uuid.uuid4())
    hook = live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id=vapi_call_id,
        secret=VAPI_SECRET,
        ended_reason=ended_reason,
        customer={"number": caller},
        call_type="inboundPhoneCall",
        phone_number_id=PHONE_NUMBER_ID,
    )

    for _ in range(2):  # and once more, as a retry
        assert (await live.deliver(hook)).status_code == 200

    call = call_message(pg_engine, org_id, vapi_call_id)
    assert (call.channel, call.from_address) == ("voice", caller)
    if texted_back:
        await text_back_settled(live, pg_engine, org_id, vapi_call_id)
    else:
        await asyncio.sleep(1)  # room for a wrong text-back to show up
    assert [t["body"].startswith(TEXT_BACK_START) for t in texts_to(live, caller)] == (
        [True] if texted_back else []
    )


async def test_a_vapi_call_to_another_orgs_number_is_not_answered(
    live: Live, pg_engine: Engine
) -> None:
    org_id, _ = await live.org()
    caller = "+447911200108"
    hook = live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id=str(uuid.uuid4()),
        secret=VAPI_SECRET,
        ended_reason="customer-did-not-answer",
        customer={"number": caller},
        call_type="inboundPhoneCall",
        phone_number_id="pn_someone_else",
    )

    assert (await live.deliver(hook)).status_code == 200

    with Session(pg_engine) as session:
        assert not session.exec(select(Message).where(Message.org_id == org_id)).all()
    await asyncio.sleep(0.5)
    assert texts_to(live, caller) == []


async def test_a_forwarded_call_nobody_picked_up_is_texted_back(
    live: Live, pg_engine: Engine
) -> None:
    """With ``<Dial>`` the caller's own leg completes either way; the dial status decides."""
    org_id, _ = await live.org()
    caller = "+447911200109"
    hook = twilio_call(live, org_id, caller, status="completed", dial_status="no-answer")

    assert (await live.deliver(hook)).status_code == 200

    await text_back_settled(live, pg_engine, org_id, call_id(hook))
    assert len(texts_to(live, caller)) == 1


async def test_calls_still_ringing_or_placed_by_keepwarm_are_ignored(
    live: Live, pg_engine: Engine
) -> None:
    org_id, _ = await live.org()
    caller = "+447911200110"
    ringing = twilio_call(live, org_id, caller, status="ringing")
    outbound = twilio_call(live, org_id, caller, direction="outbound-api")

    answers = [await live.deliver(ringing), await live.deliver(outbound)]

    assert [a.status_code for a in answers] == [200, 200]
    assert receipts(pg_engine, org_id) == 0
    await asyncio.sleep(0.5)
    assert texts_to(live, caller) == []
