"""A live-mode stack: the real worker and API with live adapters on the fake providers.

It runs on its own Temporal namespace, so the session's dry-run worker never takes its tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from tests.conftest import LIVE_NAMESPACE, create_org, dev_address, make_settings, serve
from tests.fakes.providers import FakeProviders, Webhook, new_resend_webhook_secret
from workers.client import connect, register_search_attributes
from workers.registry import build_adapters
from workers.worker import ACTIVITY_THREADS, build_worker

PUBLIC_URL = "https://hooks.keepwarm.test"
ACCOUNT_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"
RESEND_SECRET = new_resend_webhook_secret()
STRIPE_SECRET = "whsec_stripe_tests"
VAPI_SECRET = "vapi-webhook-secret-for-tests"
SMS_FROM = "+447400123456"
EMAIL_FROM = "Shine <hi@shine.test>"
ASSISTANT_ID = "asst_test"
PHONE_NUMBER_ID = "pn_test"


def live_settings(
    pg_url: str, temporal_address: str, fake: FakeProviders, **extra: object
) -> Settings:
    """Settings for a live deployment whose providers are the fake."""
    return make_settings(
        database_url=pg_url,
        temporal_address=temporal_address,
        temporal_namespace=LIVE_NAMESPACE,
        provider_mode="live",
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        resend_api_key=SecretStr("re_test_key"),
        resend_webhook_secret=SecretStr(RESEND_SECRET),
        stripe_api_key=SecretStr("sk_test_key"),
        stripe_webhook_secret=SecretStr(STRIPE_SECRET),
        vapi_api_key=SecretStr("vapi-test-key"),
        vapi_webhook_secret=SecretStr(VAPI_SECRET),
        twilio_base_url=fake.twilio_base_url,
        resend_base_url=fake.resend_base_url,
        stripe_base_url=fake.stripe_base_url,
        vapi_base_url=fake.vapi_base_url,
        **extra,
    )


@dataclass
class Live:
    """The live stack: API client, Temporal client and the fake providers."""

    api: httpx.AsyncClient
    client: Client
    fake: FakeProviders
    settings: Settings

    async def org(self) -> tuple[str, dict[str, str]]:
        """A new org, switched to live mode with senders and a Vapi assistant."""
        org_id, headers = await create_org(self.api)
        patched = await self.api.patch(
            "/v1/orgs/me",
            json={
                "provider_mode": "live",
                "sms_from": SMS_FROM,
                "email_from": EMAIL_FROM,
                "vapi_assistant_id": ASSISTANT_ID,
                "vapi_phone_number_id": PHONE_NUMBER_ID,
            },
            headers=headers,
        )
        assert patched.status_code == 200, patched.text
        return org_id, headers

    async def deliver(self, hook: Webhook) -> httpx.Response:
        """Post a provider webhook to the API, as the provider would."""
        assert hook.url.startswith(PUBLIC_URL), hook.url
        return await self.api.post(
            hook.url.removeprefix(PUBLIC_URL), content=hook.body, headers=hook.headers
        )


@pytest.fixture(scope="session")
async def live_stack(
    pg_url: str,
    pg_engine: Engine,
    dev_server: WorkflowEnvironment,
    fake_providers_server: FakeProviders,
) -> AsyncIterator[Live]:
    """API and worker in live mode on their own namespace, for the session."""
    settings = live_settings(pg_url, dev_address(dev_server), fake_providers_server)
    client = await connect(settings)
    await register_search_attributes(client)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, engine=pg_engine, adapters=build_adapters(settings), executor=executor
        )
        async with worker, serve(settings) as api:
            yield Live(api=api, client=client, fake=fake_providers_server, settings=settings)


@pytest.fixture
def live(live_stack: Live, fake_providers: FakeProviders) -> Live:
    """The live stack with the fake providers reset."""
    return live_stack


def webhook_url(provider: str, org_id: str) -> str:
    """Where a provider posts an org's webhooks."""
    return f"{PUBLIC_URL}/v1/webhooks/{provider}/{org_id}"
