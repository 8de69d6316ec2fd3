"""Provider webhooks: verified, recorded once, routed; forged ones change nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.tables import Message, Payment, WebhookReceipt
from tests.channels.conftest import (
    RESEND_SECRET,
    SMS_FROM,
    STRIPE_SECRET,
    TWILIO_TOKEN,
    VAPI_SECRET,
    Live,
    webhook_url,
)
from tests.conftest import assert_running_totals_follow_the_rows, eventually, per_metric
from tests.fakes.providers import Webhook, new_resend_webhook_secret, stripe_signature_header

STALE = int(time.time()) - 3600

#: Builds a valid signed webhook of each provider for an org (``secret`` overrides the right
#: one, ``timestamp`` makes it old where the scheme has one).
Build = Callable[..., Webhook]


def twilio_inbound(live: Live, org_id: str, secret: str = TWILIO_TOKEN, **_: Any) -> Webhook:
    return live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200001",
        to=SMS_FROM,
        body="Hi, do you clean ovens?",
        auth_token=secret,
    )


def resend_delivered(
    live: Live, org_id: str, secret: str = RESEND_SECRET, timestamp: int | None = None
) -> Webhook:
    return live.fake.resend_event(
        webhook_url("resend", org_id),
        type="email.delivered",
        email_id="email-not-ours",
        secret=secret,
        timestamp=timestamp,
    )


def stripe_paid(
    live: Live, org_id: str, secret: str = STRIPE_SECRET, timestamp: int | None = None
) -> Webhook:
    return live.fake.stripe_event(
        webhook_url("stripe", org_id),
        type="invoice.paid",
        data_object={"id": "in_123", "object": "invoice", "amount_paid": 5000, "currency": "gbp"},
        secret=secret,
        timestamp=timestamp,
    )


def vapi_report(
    live: Live, org_id: str, secret: str = VAPI_SECRET, timestamp: int | None = None
) -> Webhook:
    return live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id="call-not-ours",
        secret=secret,
        mode="hmac",
        timestamp=timestamp,
    )


PROVIDERS: dict[str, Build] = {
    "twilio": twilio_inbound,
    "resend": resend_delivered,
    "stripe": stripe_paid,
    "vapi": vapi_report,
}
WRONG_SECRETS = {
    "twilio": "not-the-token",
    "resend": new_resend_webhook_secret(),
    "stripe": "whsec_wrong",
    "vapi": "not-the-secret",
}


def receipts(engine: Engine, org_id: str) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(WebhookReceipt).where(WebhookReceipt.org_id == org_id)
        ).one()


def tampered(hook: Webhook) -> Webhook:
    body = hook.body.replace(b"1", b"2", 1) if b"1" in hook.body else hook.body + b" "
    return replace(hook, body=body)


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_the_same_event_five_times_is_handled_once(
    live: Live, pg_engine: Engine, provider: str
) -> None:
    org_id, _ = await live.org()
    hook = PROVIDERS[provider](live, org_id)

    answers = [await live.deliver(hook) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5, answers[0].text
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True, True]
    assert receipts(pg_engine, org_id) == 1


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("forgery", ["tampered body", "wrong secret", "stale timestamp"])
async def test_a_forged_webhook_gets_401_and_records_nothing(
    live: Live, pg_engine: Engine, provider: str, forgery: str
) -> None:
    org_id, _ = await live.org()
    build = PROVIDERS[provider]
    if forgery == "tampered body":
        hook = tampered(build(live, org_id))
    elif forgery == "wrong secret":
        hook = build(live, org_id, secret=WRONG_SECRETS[provider])
    elif provider == "twilio":
        # Twilio signs no timestamp; a signature for another URL (another org) is its replay.
        other_org, _ = await live.org()
        hook = replace(build(live, other_org), url=webhook_url("twilio", org_id))
    else:
        hook = build(live, org_id, timestamp=STALE)

    answer = await live.deliver(hook)

    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
    assert receipts(pg_engine, org_id) == 0
    with Session(pg_engine) as session:
        assert not session.exec(select(Message).where(Message.org_id == org_id)).all()


async def test_a_missing_signature_is_refused(live: Live) -> None:
    org_id, _ = await live.org()
    for provider in PROVIDERS:
        answer = await live.api.post(
            f"/v1/webhooks/{provider}/{org_id}",
            content=b'{"type": "email.delivered"}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 401, provider


async def test_an_unknown_org_is_404_and_an_unknown_event_type_is_ignored(
    live: Live, pg_engine: Engine
) -> None:
    org_id, _ = await live.org()
    stranger = await live.deliver(stripe_paid(live, "org_" + "0" * 32))
    ignored = live.fake.stripe_event(
        webhook_url("stripe", org_id),
        type="customer.created",
        data_object={"id": "cus_1", "object": "customer"},
        secret=STRIPE_SECRET,
    )

    answer = await live.deliver(ignored)

    assert stranger.status_code == 404
    assert answer.status_code == 200
    assert receipts(pg_engine, org_id) == 0


async def test_a_text_from_someone_new_opens_a_lead_and_a_reply_engages_it(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    first = twilio_inbound(live, org_id)

    assert (await live.deliver(first)).status_code == 200

    async def opened() -> list[dict[str, Any]]:
        listed = await live.api.get("/v1/leads", headers=headers)
        items: list[dict[str, Any]] = listed.json()["items"]
        return [item for item in items if item["first_contact_at"]]

    [lead] = await eventually(opened, within=30)
    messages = (
        await live.api.get("/v1/messages", params={"lead_id": lead["lead_id"]}, headers=headers)
    ).json()["items"]
    assert sorted((m["direction"], m["sender"]) for m in messages) == [
        ("inbound", "customer"),
        ("outbound", "ai"),
    ]

    reply = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200001",
        to=SMS_FROM,
        body="Great, Tuesday works",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(reply)).status_code == 200

    async def engaged() -> bool:
        detail = (await live.api.get(f"/v1/leads/{lead['lead_id']}", headers=headers)).json()
        return bool(detail["stage"] == "engaged")

    await eventually(engaged, within=15)
    # The texting agent's totals: one lead touched (live), which replied after the touch (the
    # text that opened it came before it, and does not count).
    totals = assert_running_totals_follow_the_rows(pg_engine, org_id)
    assert per_metric(totals) == {
        "sent:sms:live": 1,
        "leads:touched": 1,
        "leads:touched:replied": 1,
    }


async def test_stop_withdraws_sms_consent_without_opening_a_lead(live: Live) -> None:
    org_id, headers = await live.org()
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200002",
        to=SMS_FROM,
        body="STOP",
        auth_token=TWILIO_TOKEN,
        opt_out_type="STOP",
    )

    assert (await live.deliver(hook)).status_code == 200

    leads = (await live.api.get("/v1/leads", headers=headers)).json()["items"]
    inbound = (await live.api.get("/v1/messages", headers=headers)).json()["items"]
    assert leads == []
    assert [m["body"] for m in inbound] == ["STOP"]


async def test_status_callbacks_out_of_order_never_move_a_status_back(
    live: Live, pg_engine: Engine
) -> None:
    _, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": "+447911200003", "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def queued() -> list[dict[str, Any]]:
        return live.fake.objects("twilio")

    [created] = await eventually(queued, within=30)
    order = ["delivered", "queued", "sent", "undelivered", "sent"]
    seen = []
    for status in order:
        assert (
            await live.deliver(live.fake.twilio_status_callback(created["sid"], status))
        ).status_code == 200

        async def settled() -> str | None:
            listed = await live.api.get(
                "/v1/messages", params={"lead_id": lead_id}, headers=headers
            )
            current: str = listed.json()["items"][0]["status"]
            return current if current != "pending" else None

        seen.append(await eventually(settled, within=15))

    assert seen == ["delivered"] * 5


async def test_a_payment_event_for_another_orgs_lead_touches_nothing(
    live: Live, pg_engine: Engine
) -> None:
    _, owner_headers = await live.org()
    intruder_id, _ = await live.org()
    accepted = await live.api.post(
        "/v1/leads", json={"name": "Ada", "email": "ada@example.com"}, headers=owner_headers
    )
    lead_id = accepted.json()["lead_id"]

    async def recorded() -> bool:
        found = await live.api.get(f"/v1/leads/{lead_id}", headers=owner_headers)
        return found.status_code == 200

    await eventually(recorded, within=15)
    hook = live.fake.stripe_event(
        webhook_url("stripe", intruder_id),
        type="invoice.paid",
        data_object={
            "id": "in_x",
            "object": "invoice",
            "amount_paid": 100,
            "currency": "gbp",
            "metadata": {"lead_id": lead_id},
        },
        secret=STRIPE_SECRET,
    )

    assert (await live.deliver(hook)).status_code == 200

    with Session(pg_engine) as session:
        assert not session.exec(select(Payment).where(Payment.org_id == intruder_id)).all()
    await asyncio.sleep(0.5)  # time for a wrongly routed signal to convert the lead
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=owner_headers)).json()
    assert detail["stage"] in {"new", "contacted"}  # not converted
    with Session(pg_engine) as session:
        assert not session.exec(select(Payment).where(Payment.lead_id == lead_id)).all()


def test_secrets_never_appear_in_settings_repr(live: Live) -> None:
    text = repr(live.settings) + str(live.settings.model_dump())
    for secret in (TWILIO_TOKEN, RESEND_SECRET, STRIPE_SECRET, VAPI_SECRET):
        assert secret not in text


async def test_a_webhook_that_is_not_a_form_or_json_is_refused(live: Live) -> None:
    org_id, _ = await live.org()
    answer = await live.api.post(
        f"/v1/webhooks/vapi/{org_id}",
        content=b"not json",
        headers={"x-vapi-secret": VAPI_SECRET},
    )
    assert answer.status_code == 422
    assert "JSON" in answer.json()["error"]["message"]


async def test_a_failed_delivery_with_21610_withdraws_sms_consent(live: Live) -> None:
    _, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": "+447911200004", "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def queued() -> list[dict[str, Any]]:
        return live.fake.objects("twilio")

    [created] = await eventually(queued, within=30)
    hook = live.fake.twilio_status_callback(created["sid"], "failed", error_code=21610)

    assert (await live.deliver(hook)).status_code == 200

    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert detail["contact"]["consent"]["sms"] is False
    messages = (
        await live.api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
    ).json()["items"]
    assert [m["status"] for m in messages] == ["failed"]


async def test_a_bounce_fails_the_email_and_withdraws_email_consent(live: Live) -> None:
    org_id, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads", json={"name": "Grace", "email": "grace@example.com"}, headers=headers
    )
    lead_id = accepted.json()["lead_id"]

    async def sent() -> list[dict[str, Any]]:
        return live.fake.objects("resend")

    [email] = await eventually(sent, within=30)

    async def recorded() -> bool:
        # Resend's events come after its answer, which the worker records first.
        rows = (
            await live.api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
        ).json()["items"]
        return [m["status"] for m in rows] == ["sent"]

    await eventually(recorded, within=15)
    for event in ("email.delivered", "email.bounced"):
        hook = live.fake.resend_event(
            webhook_url("resend", org_id), type=event, email_id=email["id"], secret=RESEND_SECRET
        )
        assert (await live.deliver(hook)).status_code == 200

    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert detail["contact"]["consent"]["email"] is False

    async def opted_out() -> bool:
        detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return bool(detail["stage"] == "opted_out")

    await eventually(opted_out, within=10)  # email was the only way to reach her
    # Delivered first, then bounced: a bounce after delivery does not undo the delivery.
    messages = (
        await live.api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
    ).json()["items"]
    assert [m["status"] for m in messages] == ["delivered"]


async def test_a_whatsapp_message_is_recorded_on_the_whatsapp_channel(live: Live) -> None:
    org_id, headers = await live.org()
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200005",
        to=SMS_FROM,
        body="Hello from WhatsApp",
        auth_token=TWILIO_TOKEN,
        whatsapp=True,
    )

    assert (await live.deliver(hook)).status_code == 200

    inbound = (
        await live.api.get("/v1/messages", params={"direction": "inbound"}, headers=headers)
    ).json()["items"]
    assert [(m["channel"], m["body"]) for m in inbound] == [("whatsapp", "Hello from WhatsApp")]


async def test_yes_is_a_reply_as_well_as_an_opt_in(live: Live) -> None:
    org_id, headers = await live.org()
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": "+447911200006", "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def contacted() -> bool:
        lead = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return bool(lead.get("stage") == "contacted")

    await eventually(contacted, within=30)
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200006",
        to=SMS_FROM,
        body="Yes",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200

    async def engaged() -> bool:
        lead = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return bool(lead.get("stage") == "engaged")

    await eventually(engaged, within=15)


async def test_the_consent_log_shows_each_keyword_with_its_evidence(live: Live) -> None:
    org_id, headers = await live.org()
    _, stranger = await live.org()
    phone = "+447911200009"
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": phone, "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def contact_id() -> str | None:
        detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return (detail.get("contact") or {}).get("id")

    contact = await eventually(contact_id, within=15)
    for body in ("  stop ", "Start", "optout", "UNSTOP"):
        hook = live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_=phone,
            to=SMS_FROM,
            body=body,
            auth_token=TWILIO_TOKEN,
        )
        assert (await live.deliver(hook)).status_code == 200

    log = await live.api.get(f"/v1/contacts/{contact}/consent-log", headers=headers)
    foreign = await live.api.get(f"/v1/contacts/{contact}/consent-log", headers=stranger)

    assert log.status_code == 200
    items = log.json()["items"]
    assert [(i["channel"], i["granted"]) for i in items] == [
        ("sms", True),
        ("sms", False),
        ("sms", True),
        ("sms", False),
        ("sms", True),
    ]
    assert items[0]["source"] == "intake_form"
    assert {i["source"] for i in items[1:]} == {"twilio"}
    assert all(i["evidence"] for i in items)
    assert foreign.status_code == 404


async def test_stop_start_and_help_are_each_answered_once(live: Live) -> None:
    org_id, headers = await live.org()
    help_reply = "Shine: call 020 7946 0000 for help. Reply STOP to opt out."
    patched = await live.api.patch("/v1/orgs/me", json={"help_reply": help_reply}, headers=headers)
    assert patched.status_code == 200
    phone = "+447911200011"

    def texts_to(number: str) -> list[str]:
        return [m["body"] for m in live.fake.objects("twilio") if m["to"] == number]

    for n, body in enumerate(("Stop", "help", "START"), start=1):
        hook = live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_=phone,
            to=SMS_FROM,
            body=body,
            auth_token=TWILIO_TOKEN,
        )
        for _ in range(3):  # Twilio retrying the same message
            assert (await live.deliver(hook)).status_code == 200

        async def answered(count: int = n) -> list[str] | None:
            sent = texts_to(phone)
            return sent if len(sent) >= count else None

        await eventually(answered, within=15)

    await asyncio.sleep(1)  # room for a duplicate to show up, were there one
    sent = texts_to(phone)
    assert len(sent) == 3
    assert "unsubscribed" in sent[0]
    assert sent[1] == help_reply
    assert "resubscribed" in sent[2]
    leads = (await live.api.get("/v1/leads", headers=headers)).json()["items"]
    assert leads == []  # keywords open no lead


async def test_stop_from_a_lead_reachable_only_by_text_ends_it_within_seconds(
    live: Live,
) -> None:
    org_id, headers = await live.org()
    phone = "+447911200012"
    accepted = await live.api.post(
        "/v1/leads",
        json={"name": "Ada", "phone": phone, "consent": {"sms": True}},
        headers=headers,
    )
    lead_id = accepted.json()["lead_id"]

    async def touched() -> list[dict[str, Any]] | None:
        return [m for m in live.fake.objects("twilio") if m["to"] == phone] or None

    await eventually(touched, within=30)
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_=phone,
        to=SMS_FROM,
        body="STOPALL",
        auth_token=TWILIO_TOKEN,
        opt_out_type="STOP",
    )
    assert (await live.deliver(hook)).status_code == 200

    async def opted_out() -> bool:
        detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return bool(detail["stage"] == "opted_out")

    await eventually(opted_out, within=10)
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert detail["contact"]["consent"]["sms"] is False


async def test_a_signed_webhook_with_a_nul_character_is_refused_and_records_nothing(
    live: Live, pg_engine: Engine
) -> None:
    org_id, _ = await live.org()
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200009",
        to=SMS_FROM,
        body="Hi\x00there",
        auth_token=TWILIO_TOKEN,
    )

    answer = await live.deliver(hook)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "Body"
    assert receipts(pg_engine, org_id) == 0


async def test_a_signed_stripe_body_that_is_not_an_event_is_refused(live: Live) -> None:
    org_id, _ = await live.org()
    hook = stripe_paid(live, org_id)
    body = b"[1, 2]"
    headers = hook.headers | {"Stripe-Signature": stripe_signature_header(body, STRIPE_SECRET)}

    answer = await live.deliver(replace(hook, body=body, headers=headers))

    assert answer.status_code == 401  # as for a body that isn't JSON: not provably an event
