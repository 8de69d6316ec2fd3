"""A worker killed in the middle of a send: the first touch still goes out, once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.tables import Message
from tests.conftest import (
    ISOLATED_NAMESPACE,
    create_org,
    dev_address,
    eventually,
    make_settings,
    serve,
)
from tests.workers.processes import drain, keepwarm_env, read_until, spawn, stopped_at_exit
from workers.client import connect, register_search_attributes


@pytest.fixture
async def isolated(pg_url: str, dev_server: WorkflowEnvironment) -> Settings:
    """Settings on a namespace no in-process worker polls: only the child workers here do."""
    settings = make_settings(
        database_url=pg_url,
        temporal_address=dev_address(dev_server),
        temporal_namespace=ISOLATED_NAMESPACE,
    )
    await register_search_attributes(await connect(settings))
    return settings


@pytest.fixture
async def api(isolated: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(isolated) as client:
        yield client


async def start_worker(settings: Settings, *, send_latency_ms: int) -> asyncio.subprocess.Process:
    env = keepwarm_env(
        database_url=settings.database_url,
        temporal_address=settings.temporal_address,
        temporal_namespace=settings.temporal_namespace,
        dry_run_latency_ms=str(send_latency_ms),
    )
    worker = await spawn("worker", env=env)
    try:
        await read_until(worker, "worker running", within=30)
    except AssertionError:
        worker.kill()
        raise
    return worker


async def test_worker_killed_mid_send_sends_the_first_touch_once(
    isolated: Settings, api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    _, headers = await create_org(api)
    # The first worker's sends take 30 s, so it is surely killed in the middle of one.
    first = await start_worker(isolated, send_latency_ms=30_000)
    async with stopped_at_exit(first):
        accepted = await api.post(
            "/v1/leads",
            json={"name": "Ada", "phone": "+447911123456", "consent": {"sms": True}},
            headers=headers,
        )
        assert accepted.status_code == 202
        lead_id = accepted.json()["lead_id"]

        async def claimed() -> list[Message]:
            with Session(pg_engine) as session:
                return list(session.exec(select(Message).where(Message.lead_id == lead_id)))

        [pending] = await eventually(claimed, within=30)
        assert pending.status == "pending"  # written before the provider call, not yet sent
        first.send_signal(signal.SIGKILL)
        await first.wait()

    second = await start_worker(isolated, send_latency_ms=0)
    output = drain(second)
    async with stopped_at_exit(second):

        async def contacted() -> dict[str, object] | None:
            lead: dict[str, object] = (
                await api.get(f"/v1/leads/{lead_id}", headers=headers)
            ).json()
            return lead if lead.get("stage") == "contacted" else None

        # The killed attempt is retried once its 30 s start-to-close timeout has passed.
        await eventually(contacted, within=120, every=0.5)
        listed = await api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), timeout=30)
        await output

    [message] = listed.json()["items"]
    assert message["id"] == pending.id
    assert message["status"] == "simulated"
    assert second.returncode == 0
    client = await connect(isolated)
    history = await client.get_workflow_handle(accepted.json()["workflow_id"]).fetch_history()
    send_attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(send_attempts) >= 2  # the send really was cut off and run again
