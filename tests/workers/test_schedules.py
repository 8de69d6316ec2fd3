"""The ``keepwarm-health`` schedule on the dev server: created once, brought up to date on
every deploy, and a schedule a person paused stays paused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy

from models.settings import Settings
from tests.conftest import IDLE_NAMESPACE
from workers.client import connect
from workers.schedules import HEALTH_SCHEDULE, ensure_health_schedule


@pytest.fixture
async def client(stack_settings: Settings) -> AsyncIterator[Client]:
    """A namespace no worker polls: the schedule's runs wait there and start nothing."""
    client = await connect(stack_settings.model_copy(update={"temporal_namespace": IDLE_NAMESPACE}))
    yield client
    await client.get_schedule_handle(HEALTH_SCHEDULE).delete()


async def test_the_health_schedule_is_created_once_and_converged_without_unpausing(
    client: Client,
) -> None:
    assert await ensure_health_schedule(client, interval=timedelta(minutes=5)) == "created"
    handle = client.get_schedule_handle(HEALTH_SCHEDULE)
    described = await handle.describe()
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(minutes=5)]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert described.schedule.policy.catchup_window == timedelta(minutes=10)
    assert not described.schedule.policy.pause_on_failure

    await handle.pause(note="Moving the database tonight")
    assert await ensure_health_schedule(client, interval=timedelta(seconds=30)) == "updated"

    described = await handle.describe()
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(seconds=30)]
    assert described.schedule.state.paused
    assert described.schedule.state.note == "Moving the database tonight"
