"""Provider errors classified by what they say about the account, and what a send does with
each: a rejected key or a suspended account is retried (the message goes out once it is
fixed), not burned as a failed send; a business refusal stays final."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import resend
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import ResendEmail
from activities.errors import ACCOUNT_RETRY_DELAY, ProviderRejected, ProviderUnavailable
from activities.messages import MessageActivities, SendMessageResult
from activities.payments import StripePayments
from activities.provider_errors import classify, final_attempt
from activities.senders import Outbound
from activities.sms import TwilioSms
from activities.vapi_calls import VapiCalls
from activities.voice import CallRequest
from models.database import session_scope
from models.services.orgs import patch_org_settings
from models.tables import Message, utcnow
from models.values import Channel, MessageStatus, ProviderHealth, ProviderMode, WebhookProvider
from tests.activities.sending import send_touch_one
from tests.fakes.providers import FakeProviders
from tests.models.test_takeover import lead_of
from workflows.policies import SEND_DEADLINE, SEND_RETRY

ACCOUNT_SID = "AC" + "3" * 32
SMS_FROM = "+447400123456"
TWILIO = WebhookProvider.TWILIO
RESEND = WebhookProvider.RESEND
STRIPE = WebhookProvider.STRIPE
VAPI = WebhookProvider.VAPI
OK = ProviderHealth.OK
REJECTED = ProviderHealth.CREDENTIALS_REJECTED
SUSPENDED = ProviderHealth.SUSPENDED
DOWN = ProviderHealth.DOWN
REFUSAL = ProviderHealth.BUSINESS_REFUSAL


@pytest.mark.parametrize(
    ("provider", "status", "code", "message", "expected"),
    [
        (TWILIO, 200, None, "", OK),
        (TWILIO, 401, 20003, "Authenticate", REJECTED),
        (TWILIO, 403, 20403, "", REJECTED),
        (TWILIO, 401, 10001, "Account is not active", SUSPENDED),
        (TWILIO, 403, 20005, "Account not active", SUSPENDED),
        (TWILIO, 400, 21211, "Invalid 'To' Phone Number", REFUSAL),
        (TWILIO, 400, 21610, "unsubscribed recipient", REFUSAL),
        (TWILIO, 429, 20429, "", DOWN),
        (TWILIO, 503, 20503, "", DOWN),
        (TWILIO, None, None, "", DOWN),
        (RESEND, 401, "missing_api_key", "", REJECTED),
        (RESEND, 403, "invalid_api_key", "", REJECTED),
        (RESEND, 401, "validation_error", "API key is invalid", REJECTED),
        (RESEND, 403, "validation_error", "You can only send testing emails to...", REFUSAL),
        (RESEND, 422, "invalid_from_address", "", REFUSAL),
        (RESEND, 429, "daily_quota_exceeded", "", DOWN),
        (RESEND, 500, "application_error", "", DOWN),
        (STRIPE, 401, None, "Invalid API Key provided", REJECTED),
        (STRIPE, 401, "api_key_expired", "", REJECTED),
        (STRIPE, 403, None, "does not have the required permissions", REJECTED),
        (STRIPE, 400, "account_invalid", "", SUSPENDED),
        (STRIPE, 402, "card_declined", "", REFUSAL),
        (STRIPE, 400, "resource_missing", "", REFUSAL),
        (STRIPE, 429, "rate_limit", "", DOWN),
        (VAPI, 401, None, "Unauthorized", REJECTED),
        (VAPI, 402, None, "Payment Required", SUSPENDED),
        (VAPI, 400, None, "Couldn't Get Customer", REFUSAL),
        (VAPI, 0, None, "", DOWN),
        (VAPI, 408, None, "", DOWN),
    ],
)
def test_classify(
    provider: WebhookProvider,
    status: int | None,
    code: int | str | None,
    message: str,
    expected: ProviderHealth,
) -> None:
    assert classify(provider, status_code=status, error_code=code, message=message) == expected


# --- the adapters: one classification, two behaviours ---------------------------------


def outbound(**overrides: object) -> Outbound:
    values: dict[str, object] = {
        "to": "+447911123456",
        "sender": SMS_FROM,
        "body": "Hi Ada",
        "subject": None,
        "idempotency_key": f"wf-{uuid.uuid4().hex}/touch-1",
    }
    values.update(overrides)
    return Outbound(**values)  # type: ignore[arg-type]


@pytest.fixture
def email(fake_providers: FakeProviders) -> Iterator[ResendEmail]:
    saved = resend.api_key, resend.api_url
    try:
        yield ResendEmail(api_key="re_test", base_url=fake_providers.resend_base_url)
    finally:
        resend.api_key, resend.api_url = saved


def twilio(fake: FakeProviders) -> TwilioSms:
    return TwilioSms(account_sid=ACCOUNT_SID, auth_token="secret", base_url=fake.twilio_base_url)


def assert_retried(error: ApplicationError, health: ProviderHealth) -> None:
    """Retried by the send's policy, waiting a minute between attempts, its class named."""
    assert isinstance(error, ProviderUnavailable)
    assert error.type == "ProviderUnavailable" and not error.non_retryable
    assert error.type not in (SEND_RETRY.non_retryable_error_types or [])
    assert error.details[0] == health.value
    assert error.message.startswith(f"{health.value}: ")
    assert error.next_retry_delay == ACCOUNT_RETRY_DELAY


def test_every_adapter_retries_a_revoked_key(
    fake_providers: FakeProviders, email: ResendEmail
) -> None:
    for provider in ("twilio", "resend", "stripe", "vapi"):
        fake_providers.revoke_credentials(provider)
    stripe = StripePayments(api_key="sk_test_1", base_url=fake_providers.stripe_base_url)
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)
    call = CallRequest(
        to="+447911123456",
        customer_name="Ada",
        assistant_id="asst_1",
        phone_number_id="pn_1",
        metadata=(),
    )

    failures: list[ApplicationError] = []
    for attempt in (
        lambda: twilio(fake_providers).send(outbound()),
        lambda: email.send(outbound(to="ada@example.com", sender="hi@shine.test", subject="Hi")),
        lambda: stripe.create_customer(
            email="ada@example.com", name="Ada", lead_id="lead_1", idempotency_key="k1"
        ),
        lambda: vapi.place(call),
    ):
        with pytest.raises(ApplicationError) as raised:
            attempt()
        failures.append(raised.value)

    for failure in failures:
        assert_retried(failure, REJECTED)
    assert [f.details[1] for f in failures] == ["twilio", "resend", "stripe", "vapi"]
    assert "sk_test_1" not in failures[2].message


def test_a_suspended_twilio_account_is_retried_as_suspended(fake_providers: FakeProviders) -> None:
    fake_providers.twilio_account_status("suspended")

    with pytest.raises(ApplicationError) as raised:
        twilio(fake_providers).send(outbound())

    assert_retried(raised.value, SUSPENDED)
    assert "10001" in raised.value.message


def test_a_business_refusal_stays_final_and_says_so(fake_providers: FakeProviders) -> None:
    fake_providers.fail_next("twilio", status=400, error_code=21408)

    with pytest.raises(ProviderRejected) as raised:
        twilio(fake_providers).send(outbound())

    assert raised.value.non_retryable
    assert raised.value.type in (SEND_RETRY.non_retryable_error_types or [])
    assert raised.value.details[0] == "business_refusal"
    assert raised.value.message == "business_refusal: Twilio refused the message (400, code 21408)"


def test_an_outage_is_down_and_keeps_temporals_backoff(fake_providers: FakeProviders) -> None:
    fake_providers.fail_next("twilio", status=503)

    with pytest.raises(ProviderUnavailable) as raised:
        twilio(fake_providers).send(outbound())

    assert raised.value.details[0] == "down"
    assert raised.value.message == "down: Twilio answered 503 (code 20503)"
    assert raised.value.next_retry_delay is None


def test_final_attempt_is_when_the_next_one_would_start_after_the_deadline() -> None:
    now = utcnow()
    info = dataclasses.replace(
        ActivityEnvironment().info,
        attempt=3,
        scheduled_time=now - timedelta(minutes=30),
        schedule_to_close_timeout=SEND_DEADLINE,
        retry_policy=SEND_RETRY,
    )
    revoked = ProviderUnavailable(
        "credentials_rejected: x",
        health=REJECTED,
        provider=TWILIO,
        next_retry_delay=ACCOUNT_RETRY_DELAY,
    )
    down = ProviderUnavailable("down: x", health=DOWN, provider=TWILIO)

    assert not final_attempt(revoked, info=info, now=now)
    assert not final_attempt(down, info=info, now=now + timedelta(minutes=29, seconds=55))
    assert final_attempt(revoked, info=info, now=now + timedelta(minutes=29, seconds=30))
    assert final_attempt(down, info=info, now=now + timedelta(minutes=30))
    assert not final_attempt(
        revoked, info=dataclasses.replace(info, schedule_to_close_timeout=None), now=now
    )


# --- the send path: a revoked Twilio key while a lead's first SMS goes out ---------------


@pytest.fixture
def live_lead(pg_engine: Engine) -> tuple[str, str]:
    """An org in live mode with an SMS sender, and a lead with SMS consent: org, lead."""
    org_id, lead_id, _ = lead_of(pg_engine)
    with session_scope(pg_engine) as session:
        patch_org_settings(
            session, org_id=org_id, changes={"provider_mode": "live", "sms_from": SMS_FROM}
        )
    return org_id, lead_id


def send_first_touch(
    engine: Engine,
    fake: FakeProviders,
    org_id: str,
    lead_id: str,
    *,
    attempt: int,
    deadline_left: timedelta = SEND_DEADLINE,
) -> SendMessageResult:
    """One attempt of ``send_message`` as a Lead workflow runs it (its retry policy and
    deadline), ``deadline_left`` before the deadline."""
    sending = MessageActivities(
        engine=engine,
        senders={ProviderMode.LIVE: {Channel.SMS: twilio(fake)}},
        public_url="https://hooks.keepwarm.test",
    )
    now = utcnow()
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        current_attempt_scheduled_time=now,
        scheduled_time=now - SEND_DEADLINE + deadline_left,
        schedule_to_close_timeout=SEND_DEADLINE,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=SEND_RETRY,
    )
    return send_touch_one(sending, org_id, lead_id, env=env)


def message_row(engine: Engine, lead_id: str) -> Message:
    with session_scope(engine) as session:
        [row] = session.exec(select(Message).where(Message.lead_id == lead_id)).all()
        return row


def test_a_401_on_an_sms_send_is_retried_and_the_message_goes_once_the_key_is_fixed(
    pg_engine: Engine, fake_providers: FakeProviders, live_lead: tuple[str, str]
) -> None:
    org_id, lead_id = live_lead
    fake_providers.revoke_credentials("twilio")

    with pytest.raises(ProviderUnavailable) as first:
        send_first_touch(pg_engine, fake_providers, org_id, lead_id, attempt=1)
    pending = message_row(pg_engine, lead_id)
    fake_providers.restore_credentials("twilio")
    sent = send_first_touch(pg_engine, fake_providers, org_id, lead_id, attempt=2)

    assert_retried(first.value, REJECTED)
    assert first.value.message == "credentials_rejected: Twilio answered 401 (code 20003)"
    # Not burned: still pending, no error, while the key is being fixed.
    assert (pending.status, pending.error) == (MessageStatus.PENDING, None)
    assert (sent.status, sent.repeated) == (MessageStatus.QUEUED, False)
    assert len(fake_providers.objects("twilio")) == 1
    row = message_row(pg_engine, lead_id)
    assert (row.status, row.error) == (MessageStatus.QUEUED, None)


def test_a_key_still_revoked_at_the_send_deadline_fails_the_message_with_its_class(
    pg_engine: Engine, fake_providers: FakeProviders, live_lead: tuple[str, str]
) -> None:
    org_id, lead_id = live_lead
    fake_providers.revoke_credentials("twilio")
    with pytest.raises(ProviderUnavailable):
        send_first_touch(pg_engine, fake_providers, org_id, lead_id, attempt=1)

    # The last attempt Temporal will make: the next would start after the deadline.
    with pytest.raises(ProviderUnavailable):
        send_first_touch(
            pg_engine,
            fake_providers,
            org_id,
            lead_id,
            attempt=60,
            deadline_left=timedelta(seconds=30),
        )

    row = message_row(pg_engine, lead_id)
    assert row.status == MessageStatus.FAILED
    assert row.error == (
        "credentials_rejected: Twilio answered 401 (code 20003)"
        " (no attempt left before the send's deadline)"
    )
    assert fake_providers.objects("twilio") == []
