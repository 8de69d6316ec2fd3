"""Live mode: the real SDKs send through the fake providers, and their reports come back."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.tables import Call, Message, Payment
from tests.channels.conftest import (
    ACCOUNT_SID,
    ASSISTANT_ID,
    EMAIL_FROM,
    PHONE_NUMBER_ID,
    PUBLIC_URL,
    RESEND_SECRET,
    SMS_FROM,
    STRIPE_SECRET,
    TWILIO_TOKEN,
    VAPI_SECRET,
    Live,
    webhook_url,
)
from tests.conftest import assert_running_totals_follow_the_rows, eventually, per_metric
from workflows.calls import CallInput, CallRetryResult, CallWorkflow
from workflows.task_queues import LEADS


async def new_lead(live: Live, headers: dict[str, str], **body: Any) -> str:
    accepted = await live.api.post("/v1/leads", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    lead_id: str = accepted.json()["lead_id"]
    return lead_id


async def outbound(live: Live, headers: dict[str, str], lead_id: str) -> dict[str, Any]:
    async def sent() -> dict[str, Any] | None:
        listed = await live.api.get(
            "/v1/messages", params={"lead_id": lead_id, "direction": "outbound"}, headers=headers
        )
        items = [m for m in listed.json()["items"] if m["status"] != "pending"]
        return items[0] if items else None

    return await eventually(sent, within=30)


async def test_sms_goes_through_twilio_with_a_status_callback_carrying_the_key(
    live: Live,
) -> None:
    org_id, headers = await live.org()
    lead_id = await new_lead(
        live, headers, name="Ada Lovelace", phone="+447911123456", consent={"sms": True}
    )

    message = await outbound(live, headers, lead_id)

    [request] = [r for r in live.fake.requests("twilio") if r.method == "POST"]
    assert request.basic_auth == (ACCOUNT_SID, TWILIO_TOKEN)
    assert request.form is not None
    assert request.form["To"] == "+447911123456"
    assert request.form["From"] == SMS_FROM
    assert request.form["Body"].startswith("Hi Ada, thanks for getting in touch")
    callback = urlsplit(request.form["StatusCallback"])
    assert f"{callback.scheme}://{callback.netloc}" == PUBLIC_URL
    assert callback.path == f"/v1/webhooks/twilio/{org_id}"
    assert parse_qs(callback.query)["key"] == [message["idempotency_key"]]
    [created] = live.fake.objects("twilio")
    assert message["status"] == "queued"

    # Twilio reports delivery on the callback URL; a late "sent" does not move it back.
    delivered = await live.deliver(live.fake.twilio_status_callback(created["sid"], "delivered"))
    late = await live.deliver(live.fake.twilio_status_callback(created["sid"], "sent"))

    assert delivered.json() == {"received": True, "duplicate": False}
    assert late.status_code == 200
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert (await outbound(live, headers, lead_id))["status"] == "delivered"
    assert "delivery" in [event["kind"] for event in detail["timeline"]]


async def test_email_goes_through_resend_with_key_unsubscribe_headers_and_tags(
    live: Live,
) -> None:
    org_id, headers = await live.org()
    lead_id = await new_lead(live, headers, name="Grace Hopper", email="grace@example.com")

    message = await outbound(live, headers, lead_id)

    [request] = live.fake.requests("resend")
    assert request.idempotency_key == message["idempotency_key"]
    assert request.bearer_token == "re_test_key"
    assert request.json is not None
    sent = request.json
    assert sent["to"] == ["grace@example.com"]
    assert sent["from"] == EMAIL_FROM
    assert sent["subject"] == "Thanks for getting in touch with Shine Cleaning"
    unsubscribe = sent["headers"]["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC_URL}/u/") and unsubscribe.endswith(">")
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {tag["name"]: tag["value"] for tag in sent["tags"]} == {
        "lead_id": lead_id,
        "message_id": message["id"],
    }
    assert message["status"] == "sent"

    [email] = live.fake.objects("resend")
    for event in ("email.delivered", "email.opened"):
        hook = live.fake.resend_event(
            webhook_url("resend", org_id), type=event, email_id=email["id"], secret=RESEND_SECRET
        )
        assert (await live.deliver(hook)).status_code == 200

    assert (await outbound(live, headers, lead_id))["status"] == "delivered"
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    summaries = [event["summary"] for event in detail["timeline"]]
    assert "EMAIL opened" in summaries


async def test_a_call_goes_through_vapi_and_its_report_ends_the_call_workflow(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    lead_id = await new_lead(
        live, headers, name="Alan", phone="+447911123457", consent={"sms": True}
    )
    await outbound(live, headers, lead_id)  # the lead is recorded and touched
    workflow_id = f"call-test-{uuid.uuid4().hex[:8]}"

    handle = await live.client.start_workflow(
        CallWorkflow.run,
        CallInput(org_id=org_id, lead_id=lead_id),
        id=workflow_id,
        task_queue=LEADS,
    )

    async def placed() -> list[dict[str, Any]]:
        return live.fake.objects("vapi")

    [call] = await eventually(placed, within=30)
    [request] = [r for r in live.fake.requests("vapi") if r.method == "POST"]
    assert request.json is not None
    assert request.json["assistantId"] == ASSISTANT_ID
    assert request.json["phoneNumberId"] == PHONE_NUMBER_ID
    assert request.json["customer"]["number"] == "+447911123457"
    metadata = request.json["metadata"]
    assert metadata["workflow_id"] == workflow_id
    assert metadata["attempt"] == "1"
    assert metadata["call_key"] == f"{workflow_id}/call-1"

    report = live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id=call["id"],
        secret=VAPI_SECRET,
        ended_reason="customer-ended-call",
        duration_seconds=95.0,
        cost=0.31,
        mode="hmac",
    )
    answer = await live.deliver(report)
    result = await handle.result()

    assert answer.json() == {"received": True, "duplicate": False}
    assert result.ended_reason == "customer-ended-call"
    with Session(pg_engine) as session:
        row = session.exec(select(Call).where(Call.provider_call_id == call["id"])).one()
    assert (row.status, row.ended_reason, row.duration_s, row.cost) == (
        "ended",
        "customer-ended-call",
        95.0,
        0.31,
    )
    assert row.summary


async def test_a_stripe_payment_converts_the_lead(live: Live, pg_engine: Engine) -> None:
    org_id, headers = await live.org()
    lead_id = await new_lead(live, headers, name="Edsger", email="edsger@example.com")
    await outbound(live, headers, lead_id)

    hook = live.fake.stripe_event(
        webhook_url("stripe", org_id),
        type="checkout.session.completed",
        data_object={
            "id": "cs_test_123",
            "object": "checkout.session",
            "amount_total": 12500,
            "currency": "gbp",
            "payment_status": "paid",
            "metadata": {"lead_id": lead_id},
        },
        secret=STRIPE_SECRET,
    )
    answer = await live.deliver(hook)

    async def converted() -> bool:
        lead = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
        return bool(lead["stage"] == "converted")

    assert answer.status_code == 200
    await eventually(converted, within=15)
    with Session(pg_engine) as session:
        [payment] = session.exec(select(Payment).where(Payment.lead_id == lead_id)).all()
    assert (payment.kind, payment.status, payment.amount, payment.currency) == (
        "checkout",
        "paid",
        12500,
        "gbp",
    )


async def test_an_opted_out_number_fails_once_and_loses_sms_consent(
    live: Live, pg_engine: Engine
) -> None:
    _, headers = await live.org()
    live.fake.twilio_opt_out("+447911123458")
    lead_id = await new_lead(
        live, headers, name="Barbara", phone="+447911123458", consent={"sms": True}
    )

    message = await outbound(live, headers, lead_id)

    assert message["status"] == "failed"
    posts = [r for r in live.fake.requests("twilio") if r.method == "POST"]
    assert len(posts) == 1  # 21610 is final: no retry
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert detail["contact"]["consent"]["sms"] is False
    with Session(pg_engine) as session:
        row = session.get(Message, message["id"])
        assert row is not None and row.error is not None and "21610" in row.error


async def test_a_30_second_outage_delays_sends_which_then_go_out_once_each(
    live: Live,
) -> None:
    _, headers = await live.org()
    live.fake.outage("twilio", 30, status=503)
    live.fake.outage("resend", 30, status=503)
    started = time.monotonic()
    texted = await new_lead(live, headers, name="Ada", phone="+447911123460", consent={"sms": True})
    emailed = await new_lead(live, headers, name="Grace", email="grace@example.com")

    sms = await eventually(lambda: outbound_sent(live, headers, texted), within=90, every=0.5)
    email = await eventually(lambda: outbound_sent(live, headers, emailed), within=90, every=0.5)

    assert time.monotonic() - started >= 30  # nothing got through the outage
    assert (sms["status"], email["status"]) == ("queued", "sent")
    assert len(live.fake.objects("twilio")) == len(live.fake.objects("resend")) == 1
    refused = [r for r in live.fake.requests() if r.injected]
    assert {r.provider for r in refused} == {"twilio", "resend"}
    assert all(r.status == 503 for r in refused)


async def outbound_sent(live: Live, headers: dict[str, str], lead_id: str) -> dict[str, Any] | None:
    listed = await live.api.get(
        "/v1/messages", params={"lead_id": lead_id, "direction": "outbound"}, headers=headers
    )
    items = [m for m in listed.json()["items"] if m["status"] in {"queued", "sent"}]
    return items[0] if items else None


async def test_the_unsubscribe_link_in_an_email_works_with_one_click(live: Live) -> None:
    _, headers = await live.org()
    lead_id = await new_lead(live, headers, name="Grace", email="grace@example.com")
    await outbound(live, headers, lead_id)
    [request] = live.fake.requests("resend")
    assert request.json is not None
    link = request.json["headers"]["List-Unsubscribe"].strip("<>").removeprefix(PUBLIC_URL)
    token = link.removeprefix("/u/")
    forged = "/u/" + token[:-1] + ("0" if token[-1] != "0" else "1")

    page = await live.api.get(link)
    refused = await live.api.post(forged, content=b"List-Unsubscribe=One-Click")
    consent_before = await consent(live, headers, lead_id)
    done = await live.api.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert page.status_code == 200 and "Unsubscribe" in page.text and "Shine Cleaning" in page.text
    assert refused.status_code == 404
    assert consent_before["email"] is None  # the forged link changed nothing
    assert done.status_code == 200
    assert (await consent(live, headers, lead_id))["email"] is False


async def consent(live: Live, headers: dict[str, str], lead_id: str) -> dict[str, Any]:
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    result: dict[str, Any] = detail["contact"]["consent"]
    return result


async def test_a_voice_step_calls_through_vapi_until_a_signed_report_says_answered(
    live: Live, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    patched = await live.api.patch(
        "/v1/orgs/me",
        json={"call_policy": {"max_attempts": 3, "spacing": ["PT1S"]}},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    intents = ["high_value", "engaged", "window_shopper", "browsing"]
    step = {"after": "PT1S", "channel": "voice", "template": "-"}
    put = await live.api.put(
        "/v1/sequences/call-first",
        json={"applies_to": intents, "steps": [step], "max_attempts": 1},
        headers=headers,
    )
    assert put.status_code == 200, put.text
    lead_id = await new_lead(
        live, headers, name="Alan", phone="+447911123457", consent={"sms": True, "voice": True}
    )
    loop_id = f"{lead_id}/calls-1"

    async def calls(count: int) -> list[dict[str, Any]] | None:
        placed = live.fake.objects("vapi")
        return placed if len(placed) >= count else None

    [first] = await eventually(lambda: calls(1), within=30)
    requests = [r for r in live.fake.requests("vapi") if r.method == "POST"]
    assert requests[0].json is not None
    metadata = requests[0].json["metadata"]
    assert metadata["workflow_id"] == loop_id
    assert metadata["attempt"] == "1"
    assert metadata["call_key"].endswith(f"/{lead_id}/call-first/1/call-1")
    assert requests[0].json["customer"]["number"] == "+447911123457"

    busy = live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id=first["id"],
        secret=VAPI_SECRET,
        ended_reason="customer-busy",
        duration_seconds=0.0,
        cost=0.01,
        mode="hmac",
    )
    assert (await live.deliver(busy)).status_code == 200
    placed = await eventually(lambda: calls(2), within=30)
    second = next(call for call in placed if call["id"] != first["id"])
    requests = [r for r in live.fake.requests("vapi") if r.method == "POST"]
    assert len(requests) == 2
    assert requests[1].json is not None and requests[1].json["metadata"]["attempt"] == "2"

    answered = live.fake.vapi_end_of_call_report(
        webhook_url("vapi", org_id),
        call_id=second["id"],
        secret=VAPI_SECRET,
        ended_reason="customer-ended-call",
        duration_seconds=95.0,
        cost=0.31,
    )
    assert (await live.deliver(answered)).status_code == 200
    loop = live.client.get_workflow_handle(loop_id, result_type=CallRetryResult)
    result = await loop.result()

    assert result.outcome == "answered" and result.attempts == 2
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    assert [(c["attempt"], c["outcome"]) for c in detail["calls"]] == [
        (1, "busy"),
        (2, "answered"),
    ]
    assert detail["calls"][1]["duration_s"] == 95.0
    assert len(live.fake.objects("vapi")) == 2  # answered: no third call
    # The voice agent's running totals moved with the calls, as the rows say.
    totals = per_metric(assert_running_totals_follow_the_rows(pg_engine, org_id))
    assert (totals["calls:ended"], totals["calls:answered"], totals["calls:costed"]) == (2, 1, 2)
    assert (totals["calls:cost"], totals["leads:called"]) == (0.32, 1)
