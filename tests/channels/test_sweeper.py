"""Webhooks that arrive while Temporal is away: recorded with their effects, and routed by
the sweeper of an API process that reaches Temporal, each once (``api.sweeper``)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import WorkflowExecutionStatus

from api.deps import Database, TemporalConnection
from api.main import create_app
from api.sweeper import Sweeper
from models.database import make_engine
from models.settings import Settings
from models.tables import Call, ConsentRecord, Message, Payment, TimelineEvent, WebhookReceipt
from tests.channels.conftest import (
    PUBLIC_URL,
    SMS_FROM,
    STRIPE_SECRET,
    TWILIO_TOKEN,
    VAPI_SECRET,
    Live,
    webhook_url,
)
from tests.conftest import eventually
from tests.fakes.providers import Webhook
from workflows.calls import CallInput, CallWorkflow
from workflows.task_queues import LEADS

#: Nothing listens there: the API's Temporal is away.
UNREACHABLE_TEMPORAL = "127.0.0.1:1"
#: Sweeps in these tests: often, and for receipts of any age.
FAST = timedelta(milliseconds=100)
NO_GRACE = timedelta(0)


@asynccontextmanager
async def api_process(
    settings: Settings, org_id: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Sweeper]]:
    """An API process for ``settings`` whose sweeper sweeps every ``FAST``, with no grace, the
    receipts of ``org_id`` only: the session's database holds other tests' receipts, some
    unroutable on purpose, and a sweep spends up to an update's timeout on each."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.sweeper.stop()
        app.state.sweeper = Sweeper(
            database=app.state.database,
            temporal=app.state.temporal,
            interval=FAST,
            grace=NO_GRACE,
            org_ids={org_id},
        )
        await app.state.sweeper.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://keepwarm.test") as api:
            yield api, app.state.sweeper


async def deliver(api: httpx.AsyncClient, hook: Webhook) -> httpx.Response:
    """Post a provider webhook to ``api``, as the provider would."""
    return await api.post(
        hook.url.removeprefix(PUBLIC_URL), content=hook.body, headers=hook.headers
    )


async def new_lead(live: Live, headers: dict[str, str], **body: Any) -> str:
    accepted = await live.api.post("/v1/leads", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    lead_id: str = accepted.json()["lead_id"]
    return lead_id


async def sms_to(live: Live, phone: str) -> dict[str, Any]:
    """The text Twilio (the fake) took for ``phone``."""

    async def taken() -> dict[str, Any] | None:
        return next((m for m in live.fake.objects("twilio") if m["to"] == phone), None)

    return await eventually(taken, within=30)


async def lead(live: Live, headers: dict[str, str], lead_id: str) -> dict[str, Any]:
    found = await live.api.get(f"/v1/leads/{lead_id}", headers=headers)
    assert found.status_code == 200, found.text
    detail: dict[str, Any] = found.json()
    return detail


def receipts(engine: Engine, org_id: str) -> list[WebhookReceipt]:
    with Session(engine) as session:
        return list(session.exec(select(WebhookReceipt).where(WebhookReceipt.org_id == org_id)))


def count(engine: Engine, model: Any, *where: Any) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def routed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The receipt ids of the sweepers' "routed" lines, one per line."""
    return [
        match.group(1)
        for record in caplog.records
        if record.name == "keepwarm.sweeper"
        and (match := re.match(r"routed \w+ webhook receipt (\S+)", record.getMessage()))
    ]


async def test_webhooks_that_arrive_while_temporal_is_away_reach_their_workflows_once_it_is_back(
    live: Live, pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keepwarm.sweeper")
    org_id, headers = await live.org()
    # Ada is texted and called; Alan's number turns out opted out at the carrier; Grace pays.
    ada = await new_lead(live, headers, name="Ada", phone="+447911123461", consent={"sms": True})
    alan = await new_lead(live, headers, name="Alan", phone="+447911123462", consent={"sms": True})
    grace = await new_lead(live, headers, name="Grace", email="grace@example.com")
    ada_sms = await sms_to(live, "+447911123461")
    alan_sms = await sms_to(live, "+447911123462")
    await eventually(lambda: lead_recorded(live, headers, grace), within=30)
    call_loop = await live.client.start_workflow(
        CallWorkflow.run,
        CallInput(org_id=org_id, lead_id=ada),
        id=f"call-sweeper-{uuid.uuid4().hex[:8]}",
        task_queue=LEADS,
    )
    [call] = await eventually(lambda: placed_calls(live), within=30)
    hooks = {
        "reply": live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_="+447911123461",
            to=SMS_FROM,
            body="Great, Tuesday works",
            auth_token=TWILIO_TOKEN,
        ),
        "delivered": live.fake.twilio_status_callback(ada_sms["sid"], "delivered"),
        "opted out": live.fake.twilio_status_callback(alan_sms["sid"], "failed", error_code=21610),
        "call report": live.fake.vapi_end_of_call_report(
            webhook_url("vapi", org_id),
            call_id=call["id"],
            secret=VAPI_SECRET,
            ended_reason="customer-ended-call",
            mode="hmac",
        ),
        "payment": live.fake.stripe_event(
            webhook_url("stripe", org_id),
            type="checkout.session.completed",
            data_object={
                "id": "cs_test_sweeper",
                "object": "checkout.session",
                "amount_total": 12500,
                "currency": "gbp",
                "metadata": {"lead_id": grace},
            },
            secret=STRIPE_SECRET,
        ),
    }

    away = live.settings.model_copy(update={"temporal_address": UNREACHABLE_TEMPORAL})
    async with api_process(away, org_id) as (down, _):
        answers = {name: await deliver(down, hook) for name, hook in hooks.items()}
        await asyncio.sleep(0.5)  # sweeps come and go while Temporal is away

    # What needs a workflow told gets 503 (the provider may retry), recorded with its effects;
    # a delivery status needs none: it lands and is routed at once.
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "reply": 503,
        "delivered": 200,
        "opted out": 503,
        "call report": 503,
        "payment": 503,
    }
    waiting = {r.id: r.event_type for r in receipts(pg_engine, org_id) if r.routed_at is None}
    assert sorted(waiting.values()) == [
        "checkout.session.completed",
        "end-of-call-report",
        "inbound_message",
        "status_callback",
    ]
    assert (await call_loop.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await lead(live, headers, grace))["stage"] != "converted"
    waits = [r for r in caplog.records if r.name == "keepwarm.sweeper" and "wait" in r.message]
    assert [r.levelname for r in waits] == ["WARNING"]  # once for the outage, not per sweep
    assert not set(routed_lines(caplog)) & set(waiting)

    async with api_process(live.settings, org_id) as (up, sweeper):

        async def all_routed() -> bool:
            return all(r.routed_at is not None for r in receipts(pg_engine, org_id))

        await eventually(all_routed, within=30)
        ended = await asyncio.wait_for(call_loop.result(), timeout=30)
        await eventually(lambda: stage_is(live, headers, ada, "engaged"), within=30)
        await eventually(lambda: stage_is(live, headers, alan, "opted_out"), within=30)
        await eventually(lambda: stage_is(live, headers, grace, "converted"), within=30)

        # Routed: a second sweep finds nothing, and a provider's late retry is a duplicate.
        assert await sweeper.sweep() == []
        retries = [await deliver(up, hook) for hook in hooks.values()]

    assert ended.ended_reason == "customer-ended-call"
    assert [(r.status_code, r.json()) for r in retries] == [
        (200, {"received": True, "duplicate": True})
    ] * len(hooks)
    assert len(receipts(pg_engine, org_id)) == 5
    routed = [receipt_id for receipt_id in routed_lines(caplog) if receipt_id in waiting]
    assert sorted(routed) == sorted(waiting)  # each logged once, by the sweeper that routed it
    # Each effect once: one reply on Ada's lead, one payment, one withdrawal, one call ending.
    assert count(pg_engine, Message, Message.org_id == org_id, Message.direction == "inbound") == 1
    assert (
        count(
            pg_engine,
            TimelineEvent,
            TimelineEvent.lead_id == ada,
            TimelineEvent.summary == "SMS reply received",
        )
        == 1
    )
    assert count(pg_engine, Payment, Payment.lead_id == grace) == 1
    assert (
        count(
            pg_engine,
            ConsentRecord,
            ConsentRecord.org_id == org_id,
            col(ConsentRecord.granted).is_(False),
        )
        == 1
    )
    with Session(pg_engine) as session:
        row = session.exec(select(Call).where(Call.provider_call_id == call["id"])).one()
        delivered = session.exec(
            select(Message).where(Message.provider_message_id == ada_sms["sid"])
        ).one()
    assert row.status == "ended"
    assert delivered.status == "delivered"


async def test_two_api_processes_sweeping_at_once_route_each_receipt_once(
    live: Live, pg_url: str, pg_engine: Engine
) -> None:
    org_id, headers = await live.org()
    grace = await new_lead(live, headers, name="Grace", email="grace@example.com")
    await eventually(lambda: lead_recorded(live, headers, grace), within=30)
    away = live.settings.model_copy(update={"temporal_address": UNREACHABLE_TEMPORAL})
    async with api_process(away, org_id) as (down, _):
        for n in range(6):
            hook = live.fake.stripe_event(
                webhook_url("stripe", org_id),
                type="invoice.payment_failed",
                data_object={
                    "id": f"in_sweep_{n}",
                    "object": "invoice",
                    "amount_due": 5000,
                    "currency": "gbp",
                    "metadata": {"lead_id": grace},
                },
                secret=STRIPE_SECRET,
            )
            assert (await deliver(down, hook)).status_code == 503
    mine = {r.id for r in receipts(pg_engine, org_id)}
    assert len(mine) == 6

    # Two processes: each its own connection pool and Temporal client.
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        sweepers = [
            Sweeper(
                database=Database(engine),
                temporal=TemporalConnection(live.settings),
                grace=NO_GRACE,
                org_ids={org_id},
            )
            for engine in engines
        ]
        first, second = await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))
    finally:
        for engine in engines:
            engine.dispose()

    assert not set(first) & set(second)
    assert (set(first) | set(second)) & mine == mine
    assert all(r.routed_at is not None for r in receipts(pg_engine, org_id))
    assert count(pg_engine, Payment, Payment.lead_id == grace) == 6


async def test_a_stop_and_a_start_sent_while_temporal_is_away_are_each_applied_once(
    live: Live, pg_engine: Engine
) -> None:
    """Routed again, a STOP must not withdraw the consent the START after it gave back."""
    org_id, _ = await live.org()
    texts = [
        live.fake.twilio_inbound_message(
            webhook_url("twilio", org_id),
            from_="+447911123463",
            to=SMS_FROM,
            body=body,
            auth_token=TWILIO_TOKEN,
        )
        for body in ("STOP", "START")
    ]
    away = live.settings.model_copy(update={"temporal_address": UNREACHABLE_TEMPORAL})
    async with api_process(away, org_id) as (down, _):
        assert [(await deliver(down, text)).status_code for text in texts] == [503, 503]

    async with api_process(live.settings, org_id) as (_, sweeper):

        async def all_routed() -> bool:
            return all(r.routed_at is not None for r in receipts(pg_engine, org_id))

        await eventually(all_routed, within=30)
        assert await sweeper.sweep() == []

    with Session(pg_engine) as session:
        changes = session.exec(
            select(ConsentRecord)
            .where(ConsentRecord.org_id == org_id, ConsentRecord.channel == "sms")
            .order_by(col(ConsentRecord.recorded_at))
        ).all()
    assert [change.granted for change in changes] == [False, True]


async def lead_recorded(live: Live, headers: dict[str, str], lead_id: str) -> bool:
    found = await live.api.get(f"/v1/leads/{lead_id}", headers=headers)
    return found.status_code == 200


async def placed_calls(live: Live) -> list[dict[str, Any]]:
    return live.fake.objects("vapi")


async def stage_is(live: Live, headers: dict[str, str], lead_id: str, stage: str) -> bool:
    return bool((await lead(live, headers, lead_id))["stage"] == stage)
