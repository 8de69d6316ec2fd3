"""The time-skipping harness for workflow tests: a worker on a fresh SQLite database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.database import make_engine, session_scope
from models.schemas import OrgSettings, QuietHours
from models.services.orgs import create_org
from models.store.receipts import record_intake_receipt
from models.tables import Message, TimelineEvent
from models.values import TimelineKind
from workers.registry import Adapters, dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.lead import LeadInput, LeadResult, LeadWorkflow


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@dataclass
class Harness:
    env: WorkflowEnvironment
    engine: Engine
    task_queue: str
    org_id: str
    adapters: Adapters
    started: list[WorkflowHandle[LeadWorkflow, LeadResult]] = field(default_factory=list)
    started_receipts: dict[str, str] = field(default_factory=dict)
    lead_ids: list[str] = field(default_factory=list)

    def receipt(self, **payload: Any) -> str:
        with session_scope(self.engine) as session:
            receipt, _ = record_intake_receipt(
                session, org_id=self.org_id, event_id=None, kind="lead", payload=payload
            )
            return receipt.id

    async def start(
        self, history_limit: int | None = None, **payload: Any
    ) -> tuple[str, WorkflowHandle[LeadWorkflow, LeadResult]]:
        lead_id = f"lead_{uuid.uuid4().hex}"
        receipt_id = self.receipt(**payload)
        handle = await self.env.client.start_workflow(
            LeadWorkflow.run,
            LeadInput(
                org_id=self.org_id,
                lead_id=lead_id,
                receipt_id=receipt_id,
                history_limit=history_limit,
            ),
            id=f"lead-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        self.lead_ids.append(lead_id)
        self.started_receipts[handle.id] = receipt_id
        return lead_id, handle

    def messages(self, lead_id: str) -> list[Message]:
        with session_scope(self.engine) as session:
            return list(
                session.exec(
                    select(Message).where(Message.lead_id == lead_id).order_by(Message.created_at)  # type: ignore[arg-type]
                )
            )

    def first_touches(self, lead_id: str) -> list[Message]:
        return [m for m in self.messages(lead_id) if (m.idempotency_key or "").endswith("/touch-1")]

    def stages(self, lead_id: str) -> list[str]:
        with session_scope(self.engine) as session:
            events = session.exec(
                select(TimelineEvent)
                .where(
                    TimelineEvent.lead_id == lead_id,
                    TimelineEvent.kind == TimelineKind.STAGE_CHANGED,
                )
                .order_by(TimelineEvent.at)  # type: ignore[arg-type]
            )
            return [event.data["to"] for event in events]

    def timeline_kinds(self, lead_id: str) -> list[str]:
        with session_scope(self.engine) as session:
            events = session.exec(select(TimelineEvent).where(TimelineEvent.lead_id == lead_id))
            return sorted(event.kind for event in events)


ANY_HOUR = QuietHours(sms=None, whatsapp=None, voice=None, email=None)


@pytest.fixture
async def harness(time_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Harness]:
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine Cleaning",
            # Quiet hours off: only the tests about them may depend on the time of day.
            settings=OrgSettings(
                timezone="Europe/London",
                inactivity_threshold=timedelta(days=2),
                quiet_hours=ANY_HOUR,
            ),
        )
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    adapters = dry_run_adapters()
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker: Worker = build_worker(
            time_env.client,
            engine=engine,
            adapters=adapters,
            task_queue=task_queue,
            executor=executor,
        )
        async with worker:
            harness = Harness(
                env=time_env,
                engine=engine,
                task_queue=task_queue,
                org_id=org.id,
                adapters=adapters,
            )
            yield harness
            # Workflows left running would hold the shared server's clock for later tests.
            for handle in harness.started:
                with contextlib.suppress(RPCError):
                    await handle.terminate("test finished")
            for lead_id in harness.lead_ids:
                for run in (1, 2, 3):
                    nudge = time_env.client.get_workflow_handle(f"{lead_id}/nudge-{run}")
                    with contextlib.suppress(RPCError):
                        await nudge.terminate("test finished")
