"""Lead workflow on the time-skipping server, with the real activities on a real database."""

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

from models import store
from models.database import make_engine, session_scope
from models.schemas import OrgSettings
from models.tables import Message, TimelineEvent
from models.values import Channel, MessageStatus, ProviderMode, Stage, TimelineKind
from workers.registry import Adapters, dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.lead import IntakeReceived, LeadInput, LeadResult, LeadWorkflow


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

    def receipt(self, **payload: Any) -> str:
        with session_scope(self.engine) as session:
            receipt, _ = store.record_intake_receipt(
                session, org_id=self.org_id, event_id=None, kind="lead", payload=payload
            )
            return receipt.id

    async def start(self, **payload: Any) -> tuple[str, WorkflowHandle[LeadWorkflow, LeadResult]]:
        lead_id = f"lead_{uuid.uuid4().hex}"
        receipt_id = self.receipt(**payload)
        handle = await self.env.client.start_workflow(
            LeadWorkflow.run,
            LeadInput(org_id=self.org_id, lead_id=lead_id, receipt_id=receipt_id),
            id=f"lead-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        self.started_receipts[handle.id] = receipt_id
        return lead_id, handle

    def messages(self, lead_id: str) -> list[Message]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(Message).where(Message.lead_id == lead_id)))

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


@pytest.fixture
async def harness(time_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Harness]:
    with session_scope(engine) as session:
        org, _ = store.create_org(
            session,
            name="Shine Cleaning",
            settings=OrgSettings(timezone="Europe/London", inactivity_threshold=timedelta(days=2)),
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


async def test_sms_first_touch_then_ghosting_then_lost(harness: Harness) -> None:
    lead_id, handle = await harness.start(
        name="Ada Lovelace", phone="+447911123456", consent={"sms": True}, source="website_form"
    )

    result = await handle.result()

    assert result.stage == Stage.LOST
    assert harness.stages(lead_id) == ["contacted", "ghosting", "lost"]
    [message] = harness.messages(lead_id)
    assert message.channel == Channel.SMS
    assert message.status == MessageStatus.SIMULATED
    assert message.to_address == "+447911123456"
    assert message.body.startswith("Hi Ada, thanks for getting in touch with Shine Cleaning")
    assert message.idempotency_key == f"{handle.id}/{lead_id}/touch-1"


async def test_email_when_there_is_no_sms_consent(harness: Harness) -> None:
    lead_id, handle = await harness.start(
        email="ada@example.com", phone="+447911123456", consent={"sms": False}
    )
    await handle.result()

    [message] = harness.messages(lead_id)
    assert message.channel == Channel.EMAIL
    assert message.to_address == "ada@example.com"


async def test_no_touch_without_a_consented_channel(harness: Harness) -> None:
    lead_id, handle = await harness.start(phone="+447911123456", consent={"sms": None})
    await harness.env.sleep(timedelta(minutes=1))

    status = await handle.query(LeadWorkflow.status)

    assert harness.messages(lead_id) == []
    assert status.stage == Stage.NEW
    assert status.waiting_reason is not None
    assert "SMS needs explicit consent" in status.waiting_reason


async def test_query_says_what_happens_next(harness: Harness) -> None:
    _, handle = await harness.start(phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(hours=1))

    status = await handle.query(LeadWorkflow.status)

    assert status.stage == Stage.CONTACTED
    assert status.next_action == "mark the lead ghosting"
    assert status.attempts_used == 1
    assert status.waiting_reason is not None
    assert "then ghosting" in status.waiting_reason


async def test_repeat_submission_is_noted_once_and_restarts_the_clock(harness: Harness) -> None:
    lead_id, handle = await harness.start(phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(days=1, hours=12))
    again = harness.receipt(phone="+447911123456", source="cart")

    await handle.signal(LeadWorkflow.intake_received, IntakeReceived(receipt_id=again))
    await handle.signal(LeadWorkflow.intake_received, IntakeReceived(receipt_id=again))
    await harness.env.sleep(timedelta(days=1))

    # Without the repeat the lead would be ghosting by day 2; with it, not before day 3.5.
    assert (await handle.query(LeadWorkflow.status)).stage == Stage.CONTACTED
    await harness.env.sleep(timedelta(days=1, hours=1))
    assert (await handle.query(LeadWorkflow.status)).stage == Stage.GHOSTING
    assert harness.timeline_kinds(lead_id).count(TimelineKind.REPEAT_INTAKE) == 1
    assert len(harness.messages(lead_id)) == 1


async def test_submit_intake_names_the_lead_and_whether_it_started_it(harness: Harness) -> None:
    lead_id, handle = await harness.start(email="ada@example.com")
    own = (await handle.describe()).id
    start_receipt = harness.started_receipts[own]
    again = harness.receipt(email="ada@example.com", phone="+447911123456")

    mine = await handle.execute_update(
        LeadWorkflow.submit_intake, IntakeReceived(receipt_id=start_receipt)
    )
    other = await handle.execute_update(
        LeadWorkflow.submit_intake, IntakeReceived(receipt_id=again)
    )
    await handle.execute_update(LeadWorkflow.submit_intake, IntakeReceived(receipt_id=again))
    await harness.env.sleep(timedelta(minutes=1))

    assert (mine.lead_id, mine.started_this_lead) == (lead_id, True)
    assert (other.lead_id, other.started_this_lead) == (lead_id, False)
    assert harness.timeline_kinds(lead_id).count(TimelineKind.REPEAT_INTAKE) == 1


async def test_a_failed_first_touch_is_not_counted_as_contact(harness: Harness) -> None:
    # A phone with SMS consent but no SMS adapter: the send fails for good.
    harness.adapters.senders[ProviderMode.DRY_RUN].pop(Channel.SMS)
    lead_id, handle = await harness.start(phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=1))

    status = await handle.query(LeadWorkflow.status)

    assert status.stage == Stage.NEW
    assert status.waiting_reason is not None
    assert status.waiting_reason.startswith("first sms failed: no adapter for channel sms")
    [message] = harness.messages(lead_id)
    assert message.status == MessageStatus.FAILED
    assert "touch_skipped" in harness.timeline_kinds(lead_id)
