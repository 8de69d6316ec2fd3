"""Which workers poll keepwarm's task queue, from Temporal's ``DescribeTaskQueue``.

Read by ``/readyz``, by ``keepwarm up`` (it says "up" once a worker polls, not before) and by
the health check's "workers present". Temporal remembers a poller for a few minutes after its
last poll, and a worker with nothing to do long-polls for about a minute between polls, so a
worker counts as gone once no poll of its kind has been seen for ``ABSENT_AFTER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from workflows.task_queues import LEADS

#: No poll seen for this long: the workers of that kind are missing (HEALTH.md: 2 min).
ABSENT_AFTER = timedelta(minutes=2)

#: A keepwarm worker polls for both; a process that polls for one only is half a worker.
KINDS: dict[str, TaskQueueType.ValueType] = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


@dataclass(frozen=True)
class Polls:
    """What Temporal knows of the pollers of one kind on one task queue."""

    task_queue: str
    kind: str
    #: Worker identities (``pid@host``) the server remembers.
    identities: tuple[str, ...]
    #: The latest poll of any of them; ``None`` when the server knows of none.
    last_poll: datetime | None

    def present(self, *, now: datetime, absent_after: timedelta = ABSENT_AFTER) -> bool:
        """A poll seen within ``absent_after`` of ``now``."""
        return self.last_poll is not None and now - self.last_poll <= absent_after


async def task_queue_polls(client: Client, *, task_queue: str = LEADS) -> list[Polls]:
    """The pollers of each kind on ``task_queue``, one request per kind."""
    found = []
    for kind, queue_type in KINDS.items():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=queue_type,
            )
        )
        times = [
            poller.last_access_time.ToDatetime(tzinfo=UTC)
            for poller in described.pollers
            if poller.HasField("last_access_time")
        ]
        found.append(
            Polls(
                task_queue=task_queue,
                kind=kind,
                identities=tuple(sorted({poller.identity for poller in described.pollers})),
                last_poll=max(times, default=None),
            )
        )
    return found


def missing(
    polls: list[Polls], *, now: datetime, absent_after: timedelta = ABSENT_AFTER
) -> list[str]:
    """The kinds of worker with no poll within ``absent_after`` (``[]``: all present)."""
    return [p.kind for p in polls if not p.present(now=now, absent_after=absent_after)]


async def workers_missing(
    client: Client, *, now: datetime, absent_after: timedelta = ABSENT_AFTER
) -> list[str]:
    """``missing`` for keepwarm's task queue, asked of Temporal now."""
    return missing(await task_queue_polls(client), now=now, absent_after=absent_after)


async def backlog_age_seconds(client: Client, *, task_queue: str = LEADS) -> float | None:
    """Age of the oldest task waiting on ``task_queue`` for a worker, workflow or activity
    (``None``: nothing waits)."""
    ages = []
    for queue_type in KINDS.values():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=queue_type,
                report_stats=True,
            )
        )
        stats = described.stats
        if described.HasField("stats") and stats.approximate_backlog_count > 0:
            ages.append(stats.approximate_backlog_age.ToTimedelta().total_seconds())
    return max(ages, default=None)


#: Failed runs a check reads at most (enough to name the types; the count says "at least").
FAILED_RUNS_MAX = 200


async def failed_runs(client: Client, *, since: datetime) -> dict[str, int]:
    """keepwarm's workflow runs that failed or timed out since ``since``, by workflow type."""
    query = (
        "ExecutionStatus IN ('Failed', 'TimedOut') AND CloseTime > "
        f"'{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    )
    counts: dict[str, int] = {}
    async for execution in client.list_workflows(query, limit=FAILED_RUNS_MAX):
        counts[execution.workflow_type] = counts.get(execution.workflow_type, 0) + 1
    return counts


class TemporalHealth:
    """What the health check asks Temporal (``activities.health.TemporalSource``)."""

    def __init__(self, client: Client, *, absent_after: timedelta = ABSENT_AFTER) -> None:
        """Ask through ``client``."""
        self.client = client
        self._absent_after = absent_after

    async def worker_polls(self, *, now: datetime) -> tuple[list[str], list[str]]:
        """The kinds of worker missing, and the identities of those that poll."""
        polls = await task_queue_polls(self.client)
        identities = sorted({identity for p in polls for identity in p.identities})
        return missing(polls, now=now, absent_after=self._absent_after), identities

    async def backlog_age(self) -> float | None:
        """``backlog_age_seconds`` of keepwarm's task queue."""
        return await backlog_age_seconds(self.client)

    async def failed_runs(self, *, since: datetime) -> dict[str, int]:
        """``failed_runs`` since ``since``."""
        return await failed_runs(self.client, since=since)
