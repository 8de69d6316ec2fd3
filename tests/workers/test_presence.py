"""What the health check asks Temporal, on the dev server: with no worker polling, the
workers are missing (a critical verdict naming them) and work waits in a growing backlog."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio.client import Client

from models.rules import health
from models.settings import Settings
from models.values import HealthStatus
from tests.conftest import IDLE_NAMESPACE, eventually
from workers.client import connect
from workers.presence import TemporalHealth
from workflows.task_queues import LEADS


async def presence_client(settings: Settings) -> Client:
    return await connect(settings.model_copy(update={"temporal_namespace": IDLE_NAMESPACE}))


async def test_no_worker_polling_is_a_critical_workers_missing_verdict(
    stack_settings: Settings,
) -> None:
    temporal = TemporalHealth(await presence_client(stack_settings))

    missing, identities = await temporal.worker_polls(now=datetime.now(UTC))
    verdict = health.workers_verdict(
        health.WorkerPresence(task_queue=LEADS, missing_kinds=missing, identities=identities)
    )

    assert missing == ["workflow", "activity"]
    assert verdict.status == HealthStatus.CRITICAL
    assert "workflow" in verdict.detail and "activity" in verdict.detail


async def test_work_nobody_takes_shows_as_an_aging_backlog(stack_settings: Settings) -> None:
    client = await presence_client(stack_settings)
    temporal = TemporalHealth(client)
    handle = await client.start_workflow(
        "Lead", id=f"backlog-{uuid.uuid4().hex[:8]}", task_queue=LEADS
    )
    try:

        async def aged() -> float | None:
            age = await temporal.backlog_age()
            return age if age is not None and age >= 1 else None

        age = await eventually(aged, within=20, every=0.5)
        verdict = health.backlog_verdict(health.Backlog(task_queue=LEADS, age_seconds=age))
        assert verdict.status == HealthStatus.OK  # a second is fine; past 60 s it warns
        late = health.backlog_verdict(health.Backlog(task_queue=LEADS, age_seconds=age + 60))
        assert late.status == HealthStatus.WARNING
    finally:
        await handle.terminate("test over")
