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
