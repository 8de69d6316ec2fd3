"""Worker construction, shared by ``keepwarm worker``, ``keepwarm up`` and the tests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from models.settings import Settings
from workers.registry import Adapters, build_activities
from workflows.catalogue import WORKFLOWS
from workflows.task_queues import LEADS

#: Activities are synchronous (SQLModel); they run on this many threads per worker by
#: default: the default of ``KEEPWARM_WORKER_ACTIVITY_THREADS``.
ACTIVITY_THREADS: int = Settings.model_fields["worker_activity_threads"].default
#: The sandbox's runtime checks (no wall clock, randomness, I/O or threads in workflow code)
#: stay on, but modules are imported once per process instead of once per workflow run:
#: re-importing the workflow modules for every run was a quarter of the worker's CPU. Safe
#: because no workflow module keeps state at module level (constants only); keep it so.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)


def build_worker(
    client: Client,
    *,
    engine: Engine,
    adapters: Adapters,
    task_queue: str = LEADS,
    executor: ThreadPoolExecutor,
    max_cached_workflows: int = 1000,
    activity_threads: int = ACTIVITY_THREADS,
) -> Worker:
    """A worker for every keepwarm workflow and activity on ``task_queue``
    (``max_cached_workflows=0``: no sticky cache, as a restart test on the test server needs)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(engine=engine, adapters=adapters, client=client),
        activity_executor=executor,
        max_concurrent_activities=activity_threads,
        max_cached_workflows=max_cached_workflows,
    )
