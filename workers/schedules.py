"""Temporal Schedules keepwarm runs: ``keepwarm-health`` starts a ``HealthCheck`` run at the
configured interval. Ensured at deploy time (``keepwarm migrate`` / ``up``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from workflows.health import HealthCheckInput, HealthCheckWorkflow
from workflows.task_queues import LEADS

log = logging.getLogger(__name__)

HEALTH_SCHEDULE = "keepwarm-health"
#: Runs it may make up after an outage: a few minutes' worth, never the default year.
CATCHUP_WINDOW = timedelta(minutes=10)


def health_schedule_parts(
    interval: timedelta,
) -> tuple[ScheduleSpec, ScheduleActionStartWorkflow, SchedulePolicy]:
    """What the schedule should be: every ``interval``, one run at a time (a run still going
    when the next is due makes it skip), a short catch-up, never paused by a failure."""
    spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)])
    action = ScheduleActionStartWorkflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(interval=interval),
        id="keepwarm-health-check",
        task_queue=LEADS,
        execution_timeout=max(interval * 2, timedelta(minutes=10)),
        static_summary="keepwarm's scheduled health checks",
    )
    policy = SchedulePolicy(
        overlap=ScheduleOverlapPolicy.SKIP,
        catchup_window=max(CATCHUP_WINDOW, interval),
        pause_on_failure=False,
    )
    return spec, action, policy


async def ensure_health_schedule(client: Client, *, interval: timedelta) -> str:
    """Create the schedule, or bring an existing one up to date; ``created`` or ``updated``.

    An update keeps the schedule's state: one a person paused stays paused (with its note).
    """
    spec, action, policy = health_schedule_parts(interval)
    try:
        await client.create_schedule(
            HEALTH_SCHEDULE,
            Schedule(action=action, spec=spec, policy=policy, state=ScheduleState()),
        )
        log.info("schedule %s created (every %s)", HEALTH_SCHEDULE, interval)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def converge(update: ScheduleUpdateInput) -> ScheduleUpdate:
        current = update.description.schedule
        return ScheduleUpdate(schedule=replace(current, spec=spec, action=action, policy=policy))

    await client.get_schedule_handle(HEALTH_SCHEDULE).update(converge)
    log.info("schedule %s brought up to date (every %s)", HEALTH_SCHEDULE, interval)
    return "updated"
