"""The live adapters on the real Twilio and Resend SDKs, against the fake provider server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import resend
from temporalio.exceptions import ApplicationError

from activities.email import ResendEmail
from activities.errors import InvalidRecipient, OptedOut, ProviderNotConfigured
from activities.senders import Outbound
from activities.sms import TwilioSms
from models.values import MessageStatus
from tests.fakes.providers import FakeProviders

ACCOUNT_SID = "AC" + "0" * 32


def outbound(**overrides: object) -> Outbound:
    values: dict[str, object] = {
        "to": "+447911123456",
        "sender": "+447700900001",
        "body": "Hi Ada, thanks for getting in touch!",
        "subject": None,
        "idempotency_key": "lead-org_1-abc/lead_1/touch-1",
        "status_callback": "https://keepwarm.example/v1/webhooks/twilio/org_1?key=k",
    }
    values.update(overrides)
    return Outbound(**values)  # type: ignore[arg-type]


@pytest.fixture
def twilio(fake_providers: FakeProviders) -> TwilioSms:
    return TwilioSms(
        account_sid=ACCOUNT_SID, auth_token="secret", base_url=fake_providers.twilio_base_url
    )


@pytest.fixture
def email(fake_providers: FakeProviders) -> Iterator[ResendEmail]:
    saved = resend.api_key, resend.api_url
    try:
        yield ResendEmail(api_key="re_test", base_url=fake_providers.resend_base_url)
    finally:
        resend.api_key, resend.api_url = saved


def test_sms_goes_out_with_its_status_callback(
    twilio: TwilioSms, fake_providers: FakeProviders
) -> None:
    receipt = twilio.send(outbound())

    [request] = fake_providers.requests("twilio")
    assert request.form == {
        "To": "+447911123456",
        "From": "+447700900001",
        "Body": "Hi Ada, thanks for getting in touch!",
        "StatusCallback": "https://keepwarm.example/v1/webhooks/twilio/org_1?key=k",
    }
    assert request.basic_auth == (ACCOUNT_SID, "secret")
    assert receipt.status == MessageStatus.QUEUED
    assert receipt.provider_message_id is not None
    assert receipt.provider_message_id.startswith("SM")


def test_whatsapp_addresses_carry_the_prefix(fake_providers: FakeProviders) -> None:
    whatsapp = TwilioSms(
        account_sid=ACCOUNT_SID,
        auth_token="secret",
        base_url=fake_providers.twilio_base_url,
        whatsapp=True,
    )

    whatsapp.send(outbound())

    [request] = fake_providers.requests("twilio")
    assert request.form is not None
    assert (request.form["To"], request.form["From"]) == (
        "whatsapp:+447911123456",
        "whatsapp:+447700900001",
    )


TEMPLATE_SID = "HX" + "0123456789abcdef" * 2


@pytest.fixture
def whatsapp(fake_providers: FakeProviders) -> TwilioSms:
    return TwilioSms(
        account_sid=ACCOUNT_SID,
        auth_token="secret",
        base_url=fake_providers.twilio_base_url,
        whatsapp=True,
    )


def test_a_whatsapp_template_goes_out_as_content_sid_and_variables_without_a_body(
    whatsapp: TwilioSms, fake_providers: FakeProviders
) -> None:
    receipt = whatsapp.send(outbound(content_sid=TEMPLATE_SID, content_variables='{"1": "Ada"}'))

    [request] = fake_providers.requests("twilio")
    assert request.form == {
        "To": "whatsapp:+447911123456",
        "From": "whatsapp:+447700900001",
        "ContentSid": TEMPLATE_SID,
        "ContentVariables": '{"1": "Ada"}',
        "StatusCallback": "https://keepwarm.example/v1/webhooks/twilio/org_1?key=k",
    }
    [created] = fake_providers.objects("twilio")
    assert (created["sid"], created["content_sid"]) == (receipt.provider_message_id, TEMPLATE_SID)


def test_reconcile_finds_a_template_a_crashed_attempt_sent_though_its_body_differs(
    whatsapp: TwilioSms, fake_providers: FakeProviders
) -> None:
    template = outbound(content_sid=TEMPLATE_SID, content_variables='{"1": "Ada"}')
    attempted_at = datetime.now(UTC)
    sent = whatsapp.send(template)

    found = whatsapp.reconcile(template, attempted_at=attempted_at)
    as_free_text = whatsapp.reconcile(outbound(), attempted_at=attempted_at)
    much_later = whatsapp.reconcile(template, attempted_at=attempted_at + timedelta(hours=1))

    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert as_free_text is None  # Twilio's body is the rendered template, not ours
    assert much_later is None


@pytest.mark.parametrize(
    ("code", "error", "retryable"),
    [(21610, OptedOut, False), (21211, InvalidRecipient, False)],
)
def test_twilio_business_errors_are_final(
    twilio: TwilioSms,
    fake_providers: FakeProviders,
    code: int,
    error: type[ApplicationError],
    retryable: bool,
) -> None:
    fake_providers.fail_next("twilio", status=400, error_code=code)

    with pytest.raises(error) as raised:
        twilio.send(outbound())

    assert raised.value.non_retryable is not retryable
    assert str(code) in raised.value.message


@pytest.mark.parametrize("status", [429, 503])
def test_twilio_outages_are_retried(
    twilio: TwilioSms, fake_providers: FakeProviders, status: int
) -> None:
    fake_providers.fail_next("twilio", status=status)

    with pytest.raises(ApplicationError) as raised:
        twilio.send(outbound())

    assert raised.value.type == "ProviderUnavailable"
    assert raised.value.non_retryable is False
    twilio.send(outbound())  # the next attempt goes through
    assert [r.failed for r in fake_providers.requests("twilio")] == [True, False]


def test_no_sender_is_a_configuration_error(
    twilio: TwilioSms, fake_providers: FakeProviders
) -> None:
    with pytest.raises(ProviderNotConfigured):
        twilio.send(outbound(sender=None))

    assert fake_providers.requests("twilio") == []


def test_email_carries_its_key_unsubscribe_headers_and_tags(
    email: ResendEmail, fake_providers: FakeProviders
) -> None:
    message = outbound(
        to="ada@example.com",
        sender="Shine <hi@shine.test>",
        subject="Your quote",
        headers=(
            ("List-Unsubscribe", "<https://keepwarm.example/u/token>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        tags=(("lead_id", "lead_1"), ("message_id", "msg_1")),
    )

    first = email.send(message)
    again = email.send(message)  # a retry after a crash between accept and commit

    requests = fake_providers.requests("resend")
    assert [r.idempotency_key for r in requests] == [message.idempotency_key] * 2
    assert len(fake_providers.objects("resend")) == 1
    assert first.provider_message_id == again.provider_message_id
    body = requests[0].json
    assert body["headers"] == {
        "List-Unsubscribe": "<https://keepwarm.example/u/token>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert body["tags"] == [
        {"name": "lead_id", "value": "lead_1"},
        {"name": "message_id", "value": "msg_1"},
    ]
    assert (body["to"], body["subject"]) == (["ada@example.com"], "Your quote")


def test_resend_validation_errors_are_final_and_outages_retried(
    email: ResendEmail, fake_providers: FakeProviders
) -> None:
    message = outbound(to="ada@example.com", sender="hi@shine.test", subject="Hi")
    fake_providers.fail_next("resend", status=422, message="invalid to")
    fake_providers.fail_next("resend", status=503)

    with pytest.raises(InvalidRecipient):
        email.send(message)
    with pytest.raises(ApplicationError) as outage:
        email.send(message)

    assert outage.value.type == "ProviderUnavailable"
    assert outage.value.non_retryable is False


def test_a_resend_429_waits_as_long_as_retry_after_says(
    email: ResendEmail, fake_providers: FakeProviders
) -> None:
    fake_providers.fail_next("resend", status=429, retry_after=9)

    with pytest.raises(ApplicationError) as limited:
        email.send(outbound(to="ada@example.com", sender="hi@shine.test", subject="Hi"))

    assert limited.value.type == "ProviderUnavailable"
    assert limited.value.next_retry_delay == timedelta(seconds=9)
