"""Worker construction, shared by ``keepwarm worker``, ``keepwarm up`` and the tests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from workers.registry import Adapters, build_activities
from workflows.catalogue import WORKFLOWS
from workflows.task_queues import LEADS

#: Activities are synchronous (SQLModel); they run on this many threads per worker.
ACTIVITY_THREADS = 32


def build_worker(
    client: Client,
    *,
    engine: Engine,
    adapters: Adapters,
    task_queue: str = LEADS,
    executor: ThreadPoolExecutor,
) -> Worker:
    """A worker for every keepwarm workflow and activity on ``task_queue``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(engine=engine, adapters=adapters),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )
