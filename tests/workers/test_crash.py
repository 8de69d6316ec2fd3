"""A worker killed right after a lead is accepted: the first touch still goes out, once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from models.settings import Settings
from tests.conftest import ISOLATED_NAMESPACE, create_org, dev_address, eventually, make_settings
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
    app = create_app(isolated)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://keepwarm.test"
        ) as client:
            yield client


async def start_worker(settings: Settings) -> asyncio.subprocess.Process:
    env = keepwarm_env(
        database_url=settings.database_url,
        temporal_address=settings.temporal_address,
        temporal_namespace=settings.temporal_namespace,
    )
    worker = await spawn("worker", env=env)
    try:
        await read_until(worker, "worker running", within=30)
    except AssertionError:
        worker.kill()
        raise
    return worker


async def test_worker_killed_after_accept_sends_the_first_touch_once(
    isolated: Settings, api: httpx.AsyncClient
) -> None:
    _, headers = await create_org(api)
    first = await start_worker(isolated)
    async with stopped_at_exit(first):
        accepted = await api.post(
            "/v1/leads",
            json={"name": "Ada", "phone": "+447911123456", "consent": {"sms": True}},
            headers=headers,
        )
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert accepted.status_code == 202
    lead_id = accepted.json()["lead_id"]

    second = await start_worker(isolated)
    output = drain(second)
    async with stopped_at_exit(second):

        async def contacted() -> dict[str, object] | None:
            lead: dict[str, object] = (
                await api.get(f"/v1/leads/{lead_id}", headers=headers)
            ).json()
            return lead if lead.get("stage") == "contacted" else None

        await eventually(contacted, within=90, every=0.2)
        listed = await api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), timeout=30)
        await output

    [message] = listed.json()["items"]
    assert message["status"] == "simulated"
    assert message["idempotency_key"].endswith(f"/{lead_id}/touch-1")
    assert second.returncode == 0
