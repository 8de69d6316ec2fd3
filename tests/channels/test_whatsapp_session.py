"""WhatsApp's 24-hour session, live: free text to someone who just wrote, the org's template
(``ContentSid``) to someone who didn't, and nothing at all when there is no template."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.channels.conftest import SMS_FROM, TWILIO_TOKEN, Live, webhook_url
from tests.conftest import create_org, eventually
from tests.fakes.providers import RecordedRequest

TEMPLATE_SID = "HX" + "0123456789abcdef" * 2
#: One WhatsApp step a second after the first touch, which replies don't stop.
WHATSAPP_STEP = {
    "applies_to": ["high_value", "engaged", "window_shopper", "browsing"],
    "steps": [
        {"after": "PT1S", "channel": "whatsapp", "template": "Hi {first_name}, shall we book?"}
    ],
    "max_attempts": 1,
    "stop_on": ["booking", "payment"],
}


async def with_whatsapp(
    api: httpx.AsyncClient, headers: dict[str, str], **settings: Any
) -> dict[str, str]:
    """The org sends WhatsApp from its Twilio number and has a WhatsApp step."""
    patched = await api.patch(
        "/v1/orgs/me", json={"whatsapp_from": SMS_FROM, **settings}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    put = await api.put("/v1/sequences/whatsapp", json=WHATSAPP_STEP, headers=headers)
    assert put.status_code == 200, put.text
    return headers


async def whatsapp_org(live: Live, **settings: Any) -> dict[str, str]:
    """A live org that sends WhatsApp, with a WhatsApp step."""
    _, headers = await live.org()
    return await with_whatsapp(live.api, headers, **settings)


async def whatsapp_message(
    api: httpx.AsyncClient, headers: dict[str, str], lead_id: str
) -> dict[str, Any]:
    """The lead's outbound WhatsApp message, once it has left pending."""

    async def settled() -> dict[str, Any] | None:
        listed = await api.get(
            "/v1/messages",
            params={"lead_id": lead_id, "direction": "outbound", "channel": "whatsapp"},
            headers=headers,
        )
        items = [m for m in listed.json()["items"] if m["status"] != "pending"]
        return items[0] if items else None

    return await eventually(settled, within=30)


def whatsapp_posts(live: Live, number: str) -> list[RecordedRequest]:
    """What reached Twilio for ``number`` over WhatsApp."""
    return [
        request
        for request in live.fake.requests("twilio")
        if request.method == "POST" and request.form and request.form["To"] == f"whatsapp:{number}"
    ]


async def form_lead(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    accepted = await api.post("/v1/leads", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    lead_id: str = accepted.json()["lead_id"]
    return lead_id


async def test_a_whatsapp_step_is_free_text_to_who_just_wrote_and_the_template_otherwise(
    live: Live,
) -> None:
    headers = await whatsapp_org(live, whatsapp_template_sid=TEMPLATE_SID)
    org_id = (await live.api.get("/v1/orgs/me", headers=headers)).json()["id"]
    # Ada writes on WhatsApp (which opens her lead); Grace filled in a form and never wrote.
    wrote = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_="+447911200031",
        to=SMS_FROM,
        body="Hi, can you clean on Friday?",
        auth_token=TWILIO_TOKEN,
        whatsapp=True,
    )
    delivered = await live.deliver(wrote)
    assert delivered.status_code == 200, delivered.text

    async def opened() -> str | None:
        items = (await live.api.get("/v1/leads", headers=headers)).json()["items"]
        return items[0]["lead_id"] if items else None

    ada = await eventually(opened, within=30)
    grace = await form_lead(
        live.api, headers, name="Grace Hopper", phone="+447911200032", consent={"sms": True}
    )

    to_ada = await whatsapp_message(live.api, headers, ada)
    to_grace = await whatsapp_message(live.api, headers, grace)

    [free_text] = whatsapp_posts(live, "+447911200031")
    assert free_text.form is not None
    assert free_text.form["Body"] == "Hi there, shall we book?"
    assert "ContentSid" not in free_text.form
    assert to_ada["body"] == "Hi there, shall we book?"
    [template] = whatsapp_posts(live, "+447911200032")
    assert template.form is not None
    assert "Body" not in template.form
    assert template.form["From"] == f"whatsapp:{SMS_FROM}"
    assert template.form["ContentSid"] == TEMPLATE_SID
    assert json.loads(template.form["ContentVariables"]) == {"1": "Grace"}
    callback = parse_qs(urlsplit(template.form["StatusCallback"]).query)
    assert callback["key"] == [to_grace["idempotency_key"]]
    assert to_grace["status"] == "queued"
    assert to_grace["body"] == f"[WhatsApp template {TEMPLATE_SID}] Hi Grace, shall we book?"


async def test_outside_the_session_without_a_template_nothing_is_sent_and_the_timeline_says_why(
    live: Live,
) -> None:
    headers = await whatsapp_org(live)
    lead_id = await form_lead(
        live.api, headers, name="Edsger", phone="+447911200033", consent={"sms": True}
    )

    message = await whatsapp_message(live.api, headers, lead_id)

    assert message["status"] == "failed"
    assert whatsapp_posts(live, "+447911200033") == []
    detail = (await live.api.get(f"/v1/leads/{lead_id}", headers=headers)).json()
    skipped = [event["summary"] for event in detail["timeline"] if event["kind"] == "touch_skipped"]
    assert skipped == [
        "WHATSAPP not sent: WhatsApp: more than 24 h since the customer's last message and no "
        "whatsapp_template_sid is set"
    ]


async def test_dry_run_follows_the_same_rule_and_the_row_says_it_was_the_template(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    await with_whatsapp(api, headers, whatsapp_template_sid=TEMPLATE_SID)
    lead_id = await form_lead(
        api, headers, name="Ada Lovelace", phone="+447911200034", consent={"sms": True}
    )

    message = await whatsapp_message(api, headers, lead_id)

    assert message["status"] == "simulated"
    assert message["body"] == f"[WhatsApp template {TEMPLATE_SID}] Hi Ada, shall we book?"
