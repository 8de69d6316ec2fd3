"""The provider probes on the real SDKs, against the fake provider server: one cheap
authenticated read each, classified as the sends classify their failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import resend
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from activities.probes import (
    ProbeActivities,
    ProbeInput,
    ProbeResult,
    ProviderProbe,
    ResendProbe,
    StripeProbe,
    TwilioProbe,
)
from activities.vapi_calls import VapiProbe
from models.settings import Settings
from models.values import ProviderHealth, ProviderMode, WebhookProvider
from tests.conftest import make_settings
from tests.fakes.providers import FakeProviders, Provider
from workers.registry import build_probes

ACCOUNT_SID = "AC" + "7" * 32
TWILIO_TOKEN = "twilio-probe-token-secret"
RESEND_KEY = "re_probe_secret_key"
STRIPE_KEY = "sk_test_probe_secret_key"
VAPI_KEY = "vapi-probe-secret-key"
SECRETS = (TWILIO_TOKEN, RESEND_KEY, STRIPE_KEY, VAPI_KEY)
PROVIDERS: tuple[WebhookProvider, ...] = tuple(WebhookProvider)


def settings_for(fake: FakeProviders, *, mode: ProviderMode, **overrides: Any) -> Settings:
    """A deployment whose providers are the fake, with every provider's credentials unless
    ``overrides`` take them away."""
    values: dict[str, Any] = {
        "provider_mode": mode,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(TWILIO_TOKEN),
        "resend_api_key": SecretStr(RESEND_KEY),
        "stripe_api_key": SecretStr(STRIPE_KEY),
        "vapi_api_key": SecretStr(VAPI_KEY),
        "twilio_base_url": fake.twilio_base_url,
        "resend_base_url": fake.resend_base_url,
        "stripe_base_url": fake.stripe_base_url,
        "vapi_base_url": fake.vapi_base_url,
        **overrides,
    }
    return make_settings(database_url="sqlite://", temporal_address="127.0.0.1:7233", **values)


@pytest.fixture
def fake(fake_providers: FakeProviders) -> Iterator[FakeProviders]:
    """The fake providers, with Resend's module-wide SDK settings put back afterwards."""
    saved = resend.api_key, resend.api_url
    try:
        yield fake_providers
    finally:
        resend.api_key, resend.api_url = saved


def probe(settings: Settings, provider: WebhookProvider) -> ProbeResult:
    """Run the ``probe_provider`` activity as the worker registers it for ``settings``."""
    activities = ProbeActivities(probes=build_probes(settings))
    result: ProbeResult = ActivityEnvironment().run(
        activities.probe_provider, ProbeInput(provider=provider)
    )
    return result


def quick_probe(fake: FakeProviders, provider: WebhookProvider, timeout: float) -> ProviderProbe:
    """A probe of ``provider`` on the fake that gives up after ``timeout`` seconds."""
    if provider == WebhookProvider.TWILIO:
        return TwilioProbe(
            account_sid=ACCOUNT_SID,
            auth_token=TWILIO_TOKEN,
            base_url=fake.twilio_base_url,
            timeout=timeout,
        )
    if provider == WebhookProvider.RESEND:
        return ResendProbe(api_key=RESEND_KEY, base_url=fake.resend_base_url, timeout=timeout)
    if provider == WebhookProvider.STRIPE:
        return StripeProbe(api_key=STRIPE_KEY, base_url=fake.stripe_base_url, timeout=timeout)
    return VapiProbe(api_key=VAPI_KEY, base_url=fake.vapi_base_url, timeout=timeout)


def fake_name(provider: WebhookProvider) -> Provider:
    name: Provider = provider.value
    return name


@pytest.mark.parametrize("provider", PROVIDERS)
def test_working_credentials_are_ok_after_one_authenticated_read(
    fake: FakeProviders, provider: WebhookProvider
) -> None:
    result = probe(settings_for(fake, mode=ProviderMode.LIVE), provider)

    assert (result.provider, result.outcome, result.status_code) == (
        provider,
        ProviderHealth.OK,
        200,
    )
    assert result.latency_ms >= 0
    [request] = fake.requests(fake_name(provider))
    assert request.method == "GET" and not request.failed
    expected_path = {
        WebhookProvider.TWILIO: f"/twilio/2010-04-01/Accounts/{ACCOUNT_SID}.json",
        WebhookProvider.RESEND: "/resend/domains",
        WebhookProvider.STRIPE: "/v1/balance",
        WebhookProvider.VAPI: "/vapi/phone-number",
    }[provider]
    assert request.path == expected_path
    if provider == WebhookProvider.TWILIO:
        assert request.basic_auth == (ACCOUNT_SID, TWILIO_TOKEN)
    else:
        assert request.bearer_token in SECRETS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_revoked_key_is_credentials_rejected_until_it_is_fixed(
    fake: FakeProviders, provider: WebhookProvider
) -> None:
    settings = settings_for(fake, mode=ProviderMode.LIVE)
    fake.revoke_credentials(fake_name(provider))

    rejected = probe(settings, provider)
    fake.restore_credentials(fake_name(provider))
    fixed = probe(settings, provider)

    assert rejected.outcome == ProviderHealth.CREDENTIALS_REJECTED
    assert rejected.status_code in {401, 403}
    assert rejected.detail.startswith("credentials_rejected: ")
    assert not any(secret in rejected.detail for secret in SECRETS)
    assert fixed.outcome == ProviderHealth.OK


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_503_is_down(fake: FakeProviders, provider: WebhookProvider) -> None:
    fake.fail_next(fake_name(provider), status=503)

    result = probe(settings_for(fake, mode=ProviderMode.LIVE), provider)

    assert (result.outcome, result.status_code) == (ProviderHealth.DOWN, 503)
    assert len(fake.requests(fake_name(provider))) == 1  # no SDK retries: one sample


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_that_does_not_answer_in_time_is_down(
    fake: FakeProviders, provider: WebhookProvider
) -> None:
    fake.delay_next(fake_name(provider), 1.5)

    result = quick_probe(fake, provider, timeout=0.3).probe()

    assert (result.outcome, result.status_code) == (ProviderHealth.DOWN, None)
    assert result.detail.startswith("down: ") and "did not answer" in result.detail
    assert 250 <= result.latency_ms < 1500


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_a_suspended_or_closed_twilio_account_is_suspended(
    fake: FakeProviders, status: Any
) -> None:
    fake.twilio_account_status(status)

    result = probe(settings_for(fake, mode=ProviderMode.LIVE), WebhookProvider.TWILIO)

    assert result.outcome == ProviderHealth.SUSPENDED
    assert result.detail == f"the Twilio account is {status}"


def test_a_twilio_account_not_active_error_is_suspended(fake: FakeProviders) -> None:
    fake.fail_next("twilio", status=401, error_code=20005)

    result = probe(settings_for(fake, mode=ProviderMode.LIVE), WebhookProvider.TWILIO)

    assert result.outcome == ProviderHealth.SUSPENDED
    assert result.detail == "suspended: Twilio answered 401, code 20005"


def test_without_credentials_every_provider_is_not_configured_and_nothing_is_asked(
    fake: FakeProviders,
) -> None:
    settings = settings_for(
        fake,
        mode=ProviderMode.DRY_RUN,
        twilio_account_sid=None,
        twilio_auth_token=None,
        resend_api_key=None,
        stripe_api_key=None,
        vapi_api_key=None,
    )

    results = [probe(settings, provider) for provider in PROVIDERS]

    assert [r.outcome for r in results] == [ProviderHealth.NOT_CONFIGURED] * len(PROVIDERS)
    assert [r.status_code for r in results] == [None] * len(PROVIDERS)
    assert "STRIPE_API_KEY" in results[PROVIDERS.index(WebhookProvider.STRIPE)].detail
    assert fake.requests() == []


def test_a_token_without_its_sid_leaves_twilio_not_configured(fake: FakeProviders) -> None:
    settings = settings_for(fake, mode=ProviderMode.LIVE, twilio_account_sid=None)

    result = probe(settings, WebhookProvider.TWILIO)

    assert result.outcome == ProviderHealth.NOT_CONFIGURED
    assert fake.requests("twilio") == []


def test_a_dry_run_deployment_with_keys_still_probes_them(fake: FakeProviders) -> None:
    settings = settings_for(fake, mode=ProviderMode.DRY_RUN)
    fake.revoke_credentials("resend")

    results = {provider: probe(settings, provider).outcome for provider in PROVIDERS}

    assert results == {
        WebhookProvider.TWILIO: ProviderHealth.OK,
        WebhookProvider.RESEND: ProviderHealth.CREDENTIALS_REJECTED,
        WebhookProvider.STRIPE: ProviderHealth.OK,
        WebhookProvider.VAPI: ProviderHealth.OK,
    }


def test_keys_restricted_to_what_keepwarm_does_are_ok(fake: FakeProviders) -> None:
    """A sending-only Resend key and a Stripe restricted key without Balance read
    authenticate, but may not make the probe's read: the key works, so the probe is ok."""
    settings = settings_for(fake, mode=ProviderMode.LIVE)
    fake.fail_next("resend", status=401, error_code="restricted_api_key")
    fake.fail_next("stripe", status=403, message="The provided key does not have access")

    resend_result = probe(settings, WebhookProvider.RESEND)
    stripe_result = probe(settings, WebhookProvider.STRIPE)

    assert (resend_result.outcome, resend_result.status_code) == (ProviderHealth.OK, 401)
    assert "sending-only" in resend_result.detail
    assert (stripe_result.outcome, stripe_result.status_code) == (ProviderHealth.OK, 403)


def test_other_refusals_are_business_refusals(fake: FakeProviders) -> None:
    fake.fail_next("twilio", status=404, error_code=20404)

    result = probe(settings_for(fake, mode=ProviderMode.LIVE), WebhookProvider.TWILIO)

    assert (result.outcome, result.status_code) == (ProviderHealth.BUSINESS_REFUSAL, 404)
