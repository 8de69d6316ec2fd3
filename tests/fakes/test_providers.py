"""The fake provider server, driven by the real Twilio, Resend, Vapi and Stripe SDKs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import resend
import stripe
from stripe.params import CustomerCreateParams
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient
from vapi import AssistantOverrides, AsyncVapi, Call, CreateCustomerDto, Vapi
from vapi.core.api_error import ApiError as VapiApiError

from tests.conftest import eventually
from tests.fakes.providers import (
    FakeProviders,
    JsonObject,
    new_resend_webhook_secret,
    stripe_params,
    svix_signature,
)

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-auth-token"
TO = "+15005550006"
FROM = "+15005550001"
REPO = Path(__file__).resolve().parents[2]


def twilio_client(fake: FakeProviders) -> TwilioClient:
    client = TwilioClient(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = fake.twilio_base_url
    return client


def vapi_client(fake: FakeProviders) -> Vapi:
    return Vapi(token="vapi-private-key", base_url=fake.vapi_base_url)


def stripe_client(fake: FakeProviders, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_fake",
        base_addresses={"api": fake.stripe_base_url},
        max_network_retries=retries,
    )


@pytest.fixture
def resend_api(fake_providers: FakeProviders) -> Iterator[FakeProviders]:
    """Point the module-global Resend configuration at the fake for one test."""
    saved = resend.api_key, resend.api_url
    resend.api_key, resend.api_url = "re_test_key", fake_providers.resend_base_url
    try:
        yield fake_providers
    finally:
        resend.api_key, resend.api_url = saved


def email(subject: str = "Hello") -> resend.Emails.SendParams:
    return {
        "from": "Keepwarm <hello@keepwarm.test>",
        "to": ["lead@example.com"],
        "subject": subject,
        "html": "<p>Hi</p>",
        "headers": {"X-Keepwarm-Lead": "42"},
        "tags": [{"name": "lead", "value": "42"}],
    }


# --- Twilio --------------------------------------------------------------------------


def test_twilio_create_records_form_and_basic_auth(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)

    message = client.messages.create(
        to=TO, from_=FROM, body="Hi from keepwarm", status_callback="https://app.test/twilio"
    )

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (TO, FROM, "Hi from keepwarm")
    assert message.error_code is None
    assert message.date_created is not None
    [request] = fake_providers.requests("twilio")
    assert request.method == "POST"
    assert request.path == f"/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form == {
        "To": TO,
        "From": FROM,
        "Body": "Hi from keepwarm",
        "StatusCallback": "https://app.test/twilio",
    }
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert not request.failed


def test_twilio_fetch_and_list(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    first = client.messages.create(to=TO, messaging_service_sid="MG" + "1" * 32, body="one")
    client.messages.create(to="+15005550009", from_=FROM, body="two")

    fetched = client.messages(first.sid).fetch()
    listed = client.messages.list(to=TO)

    assert first.status == "accepted" and first.from_ is None
    assert fetched.sid == first.sid and fetched.body == "one"
    assert [m.sid for m in listed] == [first.sid]
    assert fake_providers.requests("twilio")[-1].query["To"] == TO


def test_twilio_validates_like_twilio(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)

    with pytest.raises(TwilioRestException) as invalid:
        client.messages.create(to="not-a-number", from_=FROM, body="x")
    fake_providers.twilio_opt_out(TO)
    with pytest.raises(TwilioRestException) as opted_out:
        client.messages.create(to=TO, from_=FROM, body="x")
    wrong = TwilioClient(ACCOUNT_SID, "")
    wrong.api.base_url = fake_providers.twilio_base_url
    with pytest.raises(TwilioRestException) as unauthenticated:
        wrong.messages.create(to=TO, from_=FROM, body="x")

    assert (invalid.value.status, invalid.value.code) == (400, 21211)
    assert (opted_out.value.status, opted_out.value.code) == (400, 21610)
    assert (unauthenticated.value.status, unauthenticated.value.code) == (401, 20003)
    assert fake_providers.objects("twilio") == []


def test_twilio_injected_error_code(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    fake_providers.fail_next("twilio", status=400, error_code=21610)

    with pytest.raises(TwilioRestException) as failure:
        client.messages.create(to=TO, from_=FROM, body="x")
    message = client.messages.create(to=TO, from_=FROM, body="x")

    assert failure.value.code == 21610
    assert failure.value.status == 400
    assert "unsubscribed recipient" in failure.value.msg
    assert message.status == "queued"
    first, second = fake_providers.requests("twilio")
    assert (first.failed, first.injected, first.status) == (True, True, 400)
    assert first.form is not None and first.form["To"] == TO
    assert (second.failed, second.injected) == (False, False)
    assert len(fake_providers.objects("twilio")) == 1


def test_twilio_503_and_429(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    fake_providers.fail_next("twilio", status=503)
    fake_providers.fail_next("twilio", status=429, retry_after=7)

    with pytest.raises(TwilioRestException) as unavailable:
        client.messages.create(to=TO, from_=FROM, body="x")
    with pytest.raises(TwilioRestException) as limited:
        client.messages.create(to=TO, from_=FROM, body="x")

    assert (unavailable.value.status, unavailable.value.code) == (503, 20503)
    assert (limited.value.status, limited.value.code) == (429, 20429)
    # TwilioRestException keeps no headers; the HTTP client keeps the last response.
    response = client.http_client._test_only_last_response
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


def test_twilio_status_callback_is_signed(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    message = client.messages.create(
        to=TO, from_=FROM, body="x", status_callback="https://app.test/hooks/twilio"
    )

    hook = fake_providers.twilio_status_callback(message.sid, "undelivered", error_code=30007)

    assert hook.url == "https://app.test/hooks/twilio"
    assert hook.form is not None and hook.json() is None
    assert hook.form["MessageStatus"] == "undelivered" and hook.form["ErrorCode"] == "30007"
    assert dict(parse_qsl(hook.body.decode())) == hook.form
    signature = hook.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(hook.url, hook.form, signature)
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30007)


def test_twilio_inbound_message_is_signed(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    client.messages.create(to=TO, from_=FROM, body="Still interested?")
    url = "https://app.test/hooks/twilio/inbound?org=7"

    hook = fake_providers.twilio_inbound_message(
        url, from_=TO, to=FROM, body="Stop", auth_token=AUTH_TOKEN, opt_out_type="STOP"
    )

    assert hook.url == url and hook.form is not None
    sid = hook.form["MessageSid"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    assert hook.form["SmsSid"] == hook.form["SmsMessageSid"] == sid
    assert hook.form["AccountSid"] == ACCOUNT_SID
    assert (hook.form["From"], hook.form["To"], hook.form["Body"]) == (TO, FROM, "Stop")
    assert (hook.form["NumMedia"], hook.form["NumSegments"]) == ("0", "1")
    assert (hook.form["SmsStatus"], hook.form["ApiVersion"]) == ("received", "2010-04-01")
    assert hook.form["OptOutType"] == "STOP"
    assert dict(parse_qsl(hook.body.decode())) == hook.form
    assert hook.headers["Content-Type"] == "application/x-www-form-urlencoded"
    signature = hook.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(url, hook.form, signature)
    assert not RequestValidator("another-auth-token").validate(url, hook.form, signature)
    # Twilio refuses to text a number that replied STOP.
    with pytest.raises(TwilioRestException) as blocked:
        client.messages.create(to=TO, from_=FROM, body="x")
    assert blocked.value.code == 21610


def test_twilio_inbound_whatsapp(fake_providers: FakeProviders) -> None:
    url = "https://app.test/hooks/twilio/inbound"

    hook = fake_providers.twilio_inbound_message(
        url, from_=TO, to=FROM, body="Yes please", auth_token=AUTH_TOKEN, whatsapp=True
    )

    assert hook.form is not None
    assert (hook.form["From"], hook.form["To"]) == (f"whatsapp:{TO}", f"whatsapp:{FROM}")
    assert hook.form["WaId"] == TO.removeprefix("+") and "OptOutType" not in hook.form
    assert hook.form["AccountSid"] == "AC" + "0" * 32
    assert RequestValidator(AUTH_TOKEN).validate(url, hook.form, hook.headers["X-Twilio-Signature"])


# --- Resend --------------------------------------------------------------------------


def test_resend_idempotency_key_returns_same_email(resend_api: FakeProviders) -> None:
    first = resend.Emails.send(email(), options={"idempotency_key": "k1"})
    again = resend.Emails.send(email(), options={"idempotency_key": "k1"})
    other = resend.Emails.send(email(), options={"idempotency_key": "k2"})

    assert first["id"] == again["id"] != other["id"]
    assert len(resend_api.objects("resend")) == 2
    requests = resend_api.requests("resend")
    assert [r.idempotency_key for r in requests] == ["k1", "k1", "k2"]
    assert requests[0].path == "/resend/emails"
    assert requests[0].bearer_token == "re_test_key"
    assert requests[0].json == email()
    stored = resend.Emails.get(first["id"])
    assert stored["subject"] == "Hello" and stored["to"] == ["lead@example.com"]


def test_resend_idempotency_key_with_other_payload_conflicts(resend_api: FakeProviders) -> None:
    resend.Emails.send(email(), options={"idempotency_key": "k1"})

    with pytest.raises(resend.exceptions.ResendError) as conflict:
        resend.Emails.send(email("Changed"), options={"idempotency_key": "k1"})

    assert conflict.value.code == 409
    assert conflict.value.error_type == "invalid_idempotent_request"
    assert len(resend_api.objects("resend")) == 1


def test_resend_validation_and_injected_errors(resend_api: FakeProviders) -> None:
    bad = email()
    bad["to"] = ["not-an-address"]
    with pytest.raises(resend.exceptions.ValidationError) as invalid:
        resend.Emails.send(bad)

    resend_api.fail_next("resend", status=422, message="The `to` field is invalid.")
    with pytest.raises(resend.exceptions.ValidationError) as injected:
        resend.Emails.send(email())

    resend_api.fail_next("resend", status=429, retry_after=2)
    with pytest.raises(resend.exceptions.RateLimitError) as limited:
        resend.Emails.send(email())

    resend_api.fail_next("resend", status=503)
    with pytest.raises(resend.exceptions.ResendError) as unavailable:
        resend.Emails.send(email())

    assert invalid.value.code == 422
    assert injected.value.message == "The `to` field is invalid."
    assert limited.value.code == 429 and limited.value.headers["retry-after"] == "2"
    assert unavailable.value.code == 503
    assert [r.injected for r in resend_api.requests("resend")] == [False, True, True, True]
    assert resend_api.objects("resend") == []


def test_resend_event_is_svix_signed(resend_api: FakeProviders) -> None:
    sent = resend.Emails.send(email())
    secret = new_resend_webhook_secret()

    hook = resend_api.resend_event(
        "https://app.test/hooks/resend", type="email.bounced", email_id=sent["id"], secret=secret
    )

    event = hook.json()
    assert event["type"] == "email.bounced" and event["created_at"].endswith("Z")
    data = event["data"]
    assert data["email_id"] == sent["id"] and data["to"] == ["lead@example.com"]
    assert data["from"] == "Keepwarm <hello@keepwarm.test>" and data["subject"] == "Hello"
    assert data["tags"] == {"lead": "42"} and data["bounce"]["type"] == "Permanent"
    assert resend.Emails.get(sent["id"])["last_event"] == "bounced"
    svix_id, stamp = hook.headers["svix-id"], hook.headers["svix-timestamp"]
    assert svix_id.startswith("msg_") and abs(int(stamp) - time.time()) < 60
    # Recompute the signature independently: HMAC-SHA256 over "id.timestamp.body".
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert len(key) == 24
    signed = f"{svix_id}.{stamp}.{hook.body.decode()}".encode()
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert hook.headers["svix-signature"] == f"v1,{digest}"
    tampered = hook.body.replace(b"Permanent", b"Temporary")
    assert tampered != hook.body
    assert svix_signature(secret, svix_id, stamp, tampered) != hook.headers["svix-signature"]
    # Resend's own verifier agrees, and refuses a tampered body or a stale timestamp.
    headers: resend.WebhookHeaders = {
        "id": svix_id,
        "timestamp": stamp,
        "signature": hook.headers["svix-signature"],
    }
    verified = resend.Webhooks.verify(
        {"payload": hook.body.decode(), "headers": headers, "webhook_secret": secret}
    )
    assert verified == event
    with pytest.raises(ValueError, match="no matching signature"):
        resend.Webhooks.verify(
            {"payload": tampered.decode(), "headers": headers, "webhook_secret": secret}
        )
    stale = resend_api.resend_event(
        "https://app.test/hooks/resend",
        type="email.delivered",
        email_id="not-sent-here",
        secret=secret,
        tags={"lead": "7"},
        timestamp=int(time.time()) - 600,
        svix_id="msg_fixed",
    )
    assert stale.headers["svix-id"] == "msg_fixed"
    assert stale.json()["data"]["to"] == ["a@b.test"]
    assert stale.json()["data"]["tags"] == {"lead": "7"}
    with pytest.raises(ValueError, match="tolerance"):
        resend.Webhooks.verify(
            {
                "payload": stale.body.decode(),
                "headers": {
                    "id": "msg_fixed",
                    "timestamp": stale.headers["svix-timestamp"],
                    "signature": stale.headers["svix-signature"],
                },
                "webhook_secret": secret,
            }
        )


# --- Vapi ----------------------------------------------------------------------------


def test_vapi_create_and_get_call(fake_providers: FakeProviders) -> None:
    client = vapi_client(fake_providers)
    metadata = {"lead_id": "42", "org_id": "7"}

    created = client.calls.create(
        assistant_id="asst-1",
        phone_number_id="phone-1",
        customer=CreateCustomerDto(number=TO, name="Lee"),
        assistant_overrides=AssistantOverrides(
            metadata=metadata, variable_values={"first_name": "Lee"}
        ),
        request_options={"additional_body_parameters": {"metadata": metadata}},
    )

    assert isinstance(created, Call)
    assert created.status == "queued" and created.type == "outboundPhoneCall"
    assert created.assistant_id == "asst-1" and created.phone_number_id == "phone-1"
    assert created.customer is not None and created.customer.number == TO
    assert created.assistant_overrides is not None
    assert created.assistant_overrides.metadata == metadata
    [request] = fake_providers.requests("vapi")
    assert (request.method, request.path) == ("POST", "/vapi/call")
    assert request.bearer_token == "vapi-private-key"
    assert request.json["metadata"] == metadata
    assert request.json["assistantOverrides"]["metadata"] == metadata
    assert request.json["customer"] == {"number": TO, "name": "Lee"}

    fetched = client.calls.get(created.id)
    assert fetched.id == created.id and fetched.created_at == created.created_at
    fake_providers.update_object("vapi", created.id, status="ended", endedReason="voicemail")
    ended = client.calls.get(created.id)
    assert (ended.status, ended.ended_reason) == ("ended", "voicemail")


def test_vapi_errors_and_retries(fake_providers: FakeProviders) -> None:
    client = vapi_client(fake_providers)
    no_retry = {"max_retries": 0}

    fake_providers.fail_next("vapi", status=503)
    with pytest.raises(VapiApiError) as unavailable:
        client.calls.create(assistant_id="a", request_options=no_retry)
    fake_providers.fail_next("vapi", status=429, retry_after=3)
    with pytest.raises(VapiApiError) as limited:
        client.calls.create(assistant_id="a", request_options=no_retry)
    with pytest.raises(VapiApiError) as invalid:
        client.calls.create(phone_number_id="p", request_options=no_retry)

    assert unavailable.value.status_code == 503
    assert limited.value.status_code == 429
    assert limited.value.headers is not None and limited.value.headers["retry-after"] == "3"
    assert invalid.value.status_code == 400

    # By default the SDK retries 429s and 5xx itself, honouring Retry-After.
    fake_providers.reset()
    fake_providers.fail_next("vapi", status=429, retry_after=1)
    started = time.monotonic()
    call = client.calls.create(assistant_id="a")
    assert time.monotonic() - started >= 1
    assert call.status == "queued"
    assert [r.status for r in fake_providers.requests("vapi")] == [429, 201]


async def test_vapi_async_client_and_slow_responses(fake_providers: FakeProviders) -> None:
    client = AsyncVapi(token="vapi-private-key", base_url=fake_providers.vapi_base_url)
    fake_providers.delay_next("vapi", 0.5)

    with pytest.raises(httpx.TimeoutException):
        await client.calls.create(
            assistant_id="a", request_options={"timeout_in_seconds": 0.1, "max_retries": 0}
        )

    # A slow provider still did the work: the call exists although the client gave up (the
    # fake's thread may reach the request after the client's 0.1 s on a busy machine).
    async def created_calls() -> list[JsonObject]:
        return fake_providers.objects("vapi")

    [created] = await eventually(created_calls, within=5, every=0.02)
    fetched = await client.calls.get(created["id"])
    assert fetched.status == "queued"


def test_vapi_end_of_call_report_hmac(fake_providers: FakeProviders) -> None:
    client = vapi_client(fake_providers)
    metadata = {"lead_id": "42", "org_id": "7"}
    created = client.calls.create(
        assistant_id="asst-1",
        phone_number_id="phone-1",
        customer=CreateCustomerDto(number=TO),
        request_options={"additional_body_parameters": {"metadata": metadata}},
    )

    hook = fake_providers.vapi_end_of_call_report(
        "https://app.test/hooks/vapi",
        call_id=created.id,
        secret="vapi-hmac-key",
        mode="hmac",
        ended_reason="voicemail",
    )

    stamp = hook.headers["x-timestamp"]
    assert abs(int(stamp) - time.time()) < 60 and "x-vapi-secret" not in hook.headers
    signed = f"{stamp}.{hook.body.decode()}".encode()
    expected = hmac.new(b"vapi-hmac-key", signed, hashlib.sha256).hexdigest()
    assert hook.headers["x-signature"] == expected
    message = hook.json()["message"]
    assert message["type"] == "end-of-call-report" and message["endedReason"] == "voicemail"
    assert message["call"]["id"] == created.id and message["call"]["metadata"] == metadata
    assert message["customer"] == {"number": TO}
    assert message["timestamp"] // 1000 == int(stamp)
    assert message["analysis"]["summary"] == message["summary"]
    assert message["durationSeconds"] == 42.0 and message["cost"] == 0.12
    assert message["artifact"]["transcript"] == message["transcript"]
    started = datetime.fromisoformat(message["startedAt"])
    assert datetime.fromisoformat(message["endedAt"]) - started == timedelta(seconds=42)
    assert message["call"]["startedAt"] == message["startedAt"]
    ended = client.calls.get(created.id)
    assert (ended.status, ended.ended_reason, ended.cost) == ("ended", "voicemail", 0.12)


def test_vapi_status_update_with_secret(fake_providers: FakeProviders) -> None:
    stale_at = int(time.time()) - 600

    hook = fake_providers.vapi_status_update(
        "https://app.test/hooks/vapi",
        call_id="call-not-created-here",
        secret="vapi-server-secret",
        status="in-progress",
        metadata={"lead_id": "9"},
        timestamp=stale_at,
    )

    assert hook.headers["x-vapi-secret"] == "vapi-server-secret"
    assert "x-signature" not in hook.headers
    message = hook.json()["message"]
    assert (message["type"], message["status"]) == ("status-update", "in-progress")
    assert message["timestamp"] == stale_at * 1000 and "endedReason" not in message
    assert message["call"]["id"] == "call-not-created-here"
    assert message["call"]["metadata"] == {"lead_id": "9"}
    assert message["call"]["status"] == "in-progress"


# --- Stripe --------------------------------------------------------------------------


def test_stripe_create_with_idempotency_key(fake_providers: FakeProviders) -> None:
    client = stripe_client(fake_providers)
    params: CustomerCreateParams = {
        "email": "lead@example.com",
        "name": "Lee",
        "metadata": {"lead_id": "42"},
    }

    customer = client.v1.customers.create(params, {"idempotency_key": "cus-42"})
    replayed = client.v1.customers.create(params, {"idempotency_key": "cus-42"})

    assert customer.id.startswith("cus_") and customer.object == "customer"
    assert customer.email == "lead@example.com" and customer.metadata is not None
    assert customer.metadata["lead_id"] == "42"
    assert replayed.id == customer.id
    assert len(fake_providers.objects("stripe")) == 1
    first, second = fake_providers.requests("stripe")
    assert (first.method, first.path) == ("POST", "/v1/customers")
    assert first.idempotency_key == "cus-42" and first.bearer_token == "sk_test_fake"
    assert first.form == {"email": "lead@example.com", "name": "Lee", "metadata[lead_id]": "42"}
    assert second.idempotency_key == "cus-42" and second.form == first.form
    assert client.v1.customers.retrieve(customer.id).name == "Lee"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "x@example.com"}, {"idempotency_key": "cus-42"})


def test_stripe_payment_links_checkout_and_invoices(fake_providers: FakeProviders) -> None:
    client = stripe_client(fake_providers)
    customer = client.v1.customers.create({"email": "lead@example.com"})

    link = client.v1.payment_links.create(
        {"line_items": [{"price": "price_123", "quantity": 1}], "metadata": {"lead_id": "42"}}
    )
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer": customer.id,
            "success_url": "https://app.test/paid",
            "line_items": [{"price": "price_123", "quantity": 2}],
        }
    )
    invoice = client.v1.invoices.create({"customer": customer.id, "days_until_due": 14})
    finalized = client.v1.invoices.finalize_invoice(invoice.id)

    assert link.object == "payment_link" and link.url.startswith("https://buy.stripe.com/")
    assert link.metadata["lead_id"] == "42"
    assert session.object == "checkout.session" and session.status == "open"
    assert session.url is not None and session.id in session.url
    assert session.customer == customer.id
    assert invoice.status == "draft" and invoice.customer == customer.id
    assert finalized.status == "open" and finalized.hosted_invoice_url
    assert client.v1.checkout.sessions.retrieve(session.id).mode == "payment"
    assert [c.id for c in client.v1.customers.list({"email": "lead@example.com"})] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.create({})
    assert missing.value.param == "customer"


def test_stripe_injected_errors(fake_providers: FakeProviders) -> None:
    client = stripe_client(fake_providers)

    fake_providers.fail_next("stripe", status=503)
    with pytest.raises(stripe.APIError) as unavailable:
        client.v1.customers.create({"email": "a@example.com"})
    fake_providers.fail_next("stripe", status=429, retry_after=5)
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.customers.create({"email": "a@example.com"})
    fake_providers.fail_next("stripe", status=402, error_code="card_declined")
    with pytest.raises(stripe.CardError) as declined:
        client.v1.customers.create({"email": "a@example.com"})

    assert unavailable.value.http_status == 503
    assert limited.value.http_status == 429
    assert limited.value.headers is not None and limited.value.headers["retry-after"] == "5"
    assert declined.value.code == "card_declined"
    assert fake_providers.objects("stripe") == []


def test_stripe_sdk_retries_503_with_the_same_key(fake_providers: FakeProviders) -> None:
    client = stripe_client(fake_providers, retries=1)
    fake_providers.fail_next("stripe", status=503)

    customer = client.v1.customers.create({"email": "a@example.com"})

    failed, succeeded = fake_providers.requests("stripe")
    assert failed.injected and not succeeded.failed
    # The SDK generates one Idempotency-Key and reuses it on the retry.
    assert failed.idempotency_key is not None
    assert failed.idempotency_key == succeeded.idempotency_key
    assert [o["id"] for o in fake_providers.objects("stripe")] == [customer.id]


def test_stripe_params_decodes_brackets() -> None:
    assert stripe_params(
        [
            ("metadata[lead_id]", "007"),
            ("line_items[1][quantity]", "2"),
            ("line_items[0][price]", "price_1"),
            ("line_items[1][price]", "price_2"),
            ("active", "false"),
        ]
    ) == {
        "metadata": {"lead_id": "007"},
        "line_items": [{"price": "price_1"}, {"price": "price_2", "quantity": 2}],
        "active": False,
    }


def test_stripe_event_passes_construct_event(fake_providers: FakeProviders) -> None:
    session = stripe_client(fake_providers).v1.checkout.sessions.create(
        {"mode": "payment", "success_url": "https://app.test/paid", "metadata": {"lead": "42"}}
    )
    stored = fake_providers.get_object("stripe", session.id)
    assert stored is not None
    secret = "whsec_test_endpoint_secret"

    hook = fake_providers.stripe_event(
        "https://app.test/hooks/stripe",
        type="checkout.session.completed",
        data_object=stored | {"status": "complete", "payment_status": "paid"},
        secret=secret,
    )

    header = hook.headers["Stripe-Signature"]
    event = stripe.Webhook.construct_event(hook.body, header, secret)
    assert event.id.startswith("evt_") and event.type == "checkout.session.completed"
    assert event.data.object["id"] == session.id
    assert event.data.object["metadata"]["lead"] == "42"
    body = hook.json()
    assert body["object"] == "event" and body["livemode"] is False
    assert body["api_version"] == stripe.api_version and body["pending_webhooks"] == 1
    assert body["request"] == {"id": None, "idempotency_key": None}
    # The header is t=<created>,v1=<hex HMAC-SHA256(secret, "t.body")>.
    stamp, signature = (part.split("=", 1)[1] for part in header.split(","))
    assert int(stamp) == body["created"]
    signed = f"{stamp}.{hook.body.decode()}".encode()
    assert signature == hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(hook.body, header, "whsec_some_other_secret")
    stale = fake_providers.stripe_event(
        "https://app.test/hooks/stripe",
        type="invoice.paid",
        data_object={"id": "in_123", "object": "invoice"},
        secret=secret,
        event_id="evt_fixed",
        timestamp=int(time.time()) - 3600,
    )
    assert stale.json()["id"] == "evt_fixed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale.body, stale.headers["Stripe-Signature"], secret)


# --- the server itself ---------------------------------------------------------------


OUTAGE_S = 2.0


def test_outage_fails_requests_until_the_window_ends(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    # Long enough for both calls below to land inside it on a busy machine.
    fake_providers.outage("twilio", OUTAGE_S, retry_after=1)
    started = time.monotonic()

    statuses = []
    for _ in range(2):
        with pytest.raises(TwilioRestException) as down:
            client.messages.create(to=TO, from_=FROM, body="x")
        statuses.append((down.value.status, down.value.code))
    response = client.http_client._test_only_last_response
    assert response is not None and response.headers["retry-after"] == "1"
    # Other providers are up.
    stripe_client(fake_providers).v1.customers.create({"email": "a@example.com"})
    assert fake_providers.objects("twilio") == []

    time.sleep(max(0.0, started + OUTAGE_S - time.monotonic()) + 0.05)
    message = client.messages.create(to=TO, from_=FROM, body="x")

    assert statuses == [(503, 20503), (503, 20503)]
    assert message.status == "queued"
    records = fake_providers.requests("twilio")
    assert [(r.status, r.injected) for r in records] == [(503, True), (503, True), (201, False)]
    assert [o["sid"] for o in fake_providers.objects("twilio")] == [message.sid]


def test_end_outage_and_reset(fake_providers: FakeProviders) -> None:
    client = vapi_client(fake_providers)
    no_retry = {"max_retries": 0}
    fake_providers.outage("vapi", 60, status=500)
    fake_providers.fail_next("vapi", status=429)

    with pytest.raises(VapiApiError) as down:
        client.calls.create(assistant_id="a", request_options=no_retry)
    fake_providers.end_outage("vapi")
    # A fail_next plan waits for the outage to end.
    with pytest.raises(VapiApiError) as limited:
        client.calls.create(assistant_id="a", request_options=no_retry)
    call = client.calls.create(assistant_id="a", request_options=no_retry)

    assert down.value.status_code == 500 and down.value.body["statusCode"] == 500
    assert limited.value.status_code == 429
    assert call.status == "queued"
    fake_providers.outage("stripe", 60)
    fake_providers.reset()
    stripe_client(fake_providers).v1.customers.create({"email": "a@example.com"})
    assert not fake_providers.requests("stripe")[0].failed


def test_requests_filter_reset_and_unknown_routes(fake_providers: FakeProviders) -> None:
    twilio_client(fake_providers).messages.create(to=TO, from_=FROM, body="x")
    fake_providers.fail_next("stripe", status=500, count=3)
    response = httpx.get(
        f"{fake_providers.base_url}/vapi/nothing-here", headers={"Authorization": "Bearer t"}
    )

    assert response.status_code == 404
    assert [r.provider for r in fake_providers.requests()] == ["twilio", "vapi"]
    assert fake_providers.requests("resend") == []

    fake_providers.reset()
    assert fake_providers.requests() == []
    assert fake_providers.objects("twilio") == []
    stripe_client(fake_providers).v1.customers.create({"email": "a@example.com"})
    assert not fake_providers.requests("stripe")[0].failed


async def test_sync_sdks_from_async_tests(fake_providers: FakeProviders) -> None:
    client = twilio_client(fake_providers)
    messages = await asyncio.gather(
        *(
            asyncio.to_thread(client.messages.create, to=TO, from_=FROM, body=str(n))
            for n in range(5)
        )
    )

    assert len({m.sid for m in messages}) == 5
    assert len(fake_providers.requests("twilio")) == 5


def test_standalone_entry_point() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.providers", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert "fake providers listening on http://127.0.0.1:" in first_line
        base_url = first_line.rsplit(" ", 1)[-1].strip()
        response = httpx.post(f"{base_url}/vapi/call", json={"assistantId": "a"})
        assert response.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
