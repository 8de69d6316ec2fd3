"""A worker killed in the middle of sends: every touch still goes out, once.

One kill covers both ways a send is cut off, as each costs a 30 s start-to-close timeout to
recover from: a dry-run send killed before it finished, and live sends (an SMS, an email, a
call) the providers accepted before the worker heard back."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.tables import Call, Message
from tests.channels.conftest import Live, live_settings
from tests.conftest import (
    ISOLATED_NAMESPACE,
    create_org,
    dev_address,
    eventually,
    serve,
)
from tests.fakes.providers import FakeProviders, Provider
from tests.workers.processes import drain, keepwarm_env, read_until, spawn, stopped_at_exit
from workers.client import connect, register_search_attributes
from workflows.calls import CallInput, CallWorkflow
from workflows.task_queues import LEADS


@pytest.fixture
async def live_isolated(
    pg_url: str, dev_server: WorkflowEnvironment, fake_providers: FakeProviders
) -> Settings:
    """Live-mode settings on the namespace only the child workers here poll."""
    settings = live_settings(pg_url, dev_address(dev_server), fake_providers)
    settings = settings.model_copy(update={"temporal_namespace": ISOLATED_NAMESPACE})
    await register_search_attributes(await connect(settings))
    return settings


async def start_live_worker(
    settings: Settings, *, dry_run_latency_ms: int = 0
) -> asyncio.subprocess.Process:
    """``keepwarm worker`` in live mode, its SDKs pointed at the fake providers (a dry-run
    org's sends taking ``dry_run_latency_ms``)."""
    env = keepwarm_env(
        dry_run_latency_ms=str(dry_run_latency_ms),
        database_url=settings.database_url,
        temporal_address=settings.temporal_address,
        temporal_namespace=settings.temporal_namespace,
        provider_mode="live",
        public_url=settings.public_url,
        twilio_base_url=str(settings.twilio_base_url),
        resend_base_url=str(settings.resend_base_url),
        vapi_base_url=str(settings.vapi_base_url),
        stripe_base_url=str(settings.stripe_base_url),
    )
    for name, secret in {
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "RESEND_API_KEY": settings.resend_api_key,
        "VAPI_API_KEY": settings.vapi_api_key,
    }.items():
        assert secret is not None
        env[name] = secret.get_secret_value()
    env["TWILIO_ACCOUNT_SID"] = str(settings.twilio_account_sid)
    worker = await spawn("worker", env=env)
    try:
        await read_until(worker, "worker running", within=60)
    except AssertionError:
        worker.kill()
        raise
    return worker


async def test_a_worker_killed_mid_send_sends_every_touch_once(
    live_isolated: Settings, fake_providers: FakeProviders, pg_engine: Engine
) -> None:
    fake = fake_providers
    # Each provider takes the first request at once and answers it late: the worker is killed
    # after the SMS, the email and the call exist at the provider but before it heard back.
    for provider in ("twilio", "resend", "vapi"):
        fake.delay_next(provider, 60)
    async with serve(live_isolated) as api:
        live = Live(api=api, client=await connect(live_isolated), fake=fake, settings=live_isolated)
        _, dry_headers = await create_org(api)  # a dry-run org beside the live one
        _, headers = await live.org()
        # The first worker's dry-run sends take 30 s, so it is surely killed in one.
        first = await start_live_worker(live_isolated, dry_run_latency_ms=30_000)
        async with stopped_at_exit(first):
            dry = await api.post(
                "/v1/leads",
                json={"name": "Ada", "phone": "+447911123456", "consent": {"sms": True}},
                headers=dry_headers,
            )
            assert dry.status_code == 202
            dry_lead = dry.json()["lead_id"]

            async def claimed() -> list[Message]:
                with Session(pg_engine) as session:
                    return list(session.exec(select(Message).where(Message.lead_id == dry_lead)))

            texted = await api.post(
                "/v1/leads",
                json={"name": "Ada", "phone": "+447911123459", "consent": {"sms": True}},
                headers=headers,
            )
            emailed = await api.post(
                "/v1/leads", json={"name": "Grace", "email": "grace@example.com"}, headers=headers
            )
            org_id = (await api.get("/v1/orgs/me", headers=headers)).json()["id"]
            call_id = f"call-crash-{texted.json()['lead_id'][-8:]}"

            def accepted(*providers: Provider) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    return all(fake.objects(p) for p in providers)

                return check

            # The SMS reached Twilio, so its lead is recorded: call that lead too.
            await eventually(accepted("twilio", "resend"), within=60)
            await live.client.start_workflow(
                CallWorkflow.run,
                CallInput(org_id=org_id, lead_id=texted.json()["lead_id"]),
                id=call_id,
                task_queue=LEADS,
            )
            await eventually(accepted("vapi"), within=60)
            [pending] = await eventually(claimed, within=30)
            # Written before the provider call, not yet sent.
            assert pending.status == "pending"
            first.send_signal(signal.SIGKILL)
            await first.wait()

        second = await start_live_worker(live_isolated)
        output = drain(second)
        async with stopped_at_exit(second):

            def settled() -> bool:
                with Session(pg_engine) as session:
                    messages = session.exec(
                        select(Message).where(
                            col(Message.lead_id).in_(
                                [texted.json()["lead_id"], emailed.json()["lead_id"]]
                            )
                        )
                    ).all()
                    calls = session.exec(select(Call).where(Call.workflow_id == call_id)).all()
                    return (
                        len(messages) == 2
                        and all(m.status in {"queued", "sent"} for m in messages)
                        and len(calls) == 1
                        and calls[0].status == "queued"
                    )

            async def done() -> bool:
                contacted = (await api.get(f"/v1/leads/{dry_lead}", headers=dry_headers)).json()
                return settled() and contacted.get("stage") == "contacted"

            # The killed attempts are retried once their 30 s start-to-close timeout passes.
            await eventually(done, within=120, every=0.5)
            listed = await api.get(
                "/v1/messages", params={"lead_id": dry_lead}, headers=dry_headers
            )
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), timeout=30)
            await output

    # The dry-run send: the same row, sent once, after the cut-off attempt was run again.
    [message] = listed.json()["items"]
    assert message["id"] == pending.id
    assert message["status"] == "simulated"
    assert second.returncode == 0
    history = await live.client.get_workflow_handle(dry.json()["workflow_id"]).fetch_history()
    send_attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(send_attempts) >= 2  # the send really was cut off and run again
    # The live sends: each reached its provider once.
    sms_posts = [r for r in fake.requests("twilio") if r.method == "POST"]
    call_posts = [r for r in fake.requests("vapi") if r.method == "POST"]
    email_posts = fake.requests("resend")
    assert len(sms_posts) == 1  # reconciled by listing Twilio's messages, not resent
    assert len(call_posts) == 1  # reconciled by the call key in Vapi's metadata
    assert len(fake.objects("twilio")) == len(fake.objects("vapi")) == 1
    # Resend dedupes by Idempotency-Key: a resend with the same key creates nothing new.
    assert len(fake.objects("resend")) == 1
    assert len({r.idempotency_key for r in email_posts}) == 1
    with Session(pg_engine) as session:
        [sms] = session.exec(
            select(Message).where(Message.lead_id == texted.json()["lead_id"])
        ).all()
        [call] = session.exec(select(Call).where(Call.workflow_id == call_id)).all()
    assert sms.provider_message_id == fake.objects("twilio")[0]["sid"]
    assert call.provider_call_id == fake.objects("vapi")[0]["id"]
