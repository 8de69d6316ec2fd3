"""The escalation ladder on the time-skipping server: handoff when someone is online, the
queue and an SLA climb to the owner's phone when nobody is."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.database import session_scope
from models.reads.attention import open_items
from models.services.escalations import acknowledge_escalation, escalate_thread
from models.store.threads import thread_of
from models.tables import Escalation, Lead, Message, Operator, TimelineEvent
from models.values import Priority
from tests.workflows.conftest import Harness
from workflows.escalation import EscalationWorkflow
from workflows.payloads import EscalationAck, EscalationInput, EscalationState

OWNER_PHONE = "+447700900111"
OPERATOR_PHONE = "+447700900222"


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests run on a server of their own (see ``own_time_env``)."""
    return own_time_env


def operator(harness: Harness, *, role: str, phone: str, seen: datetime | None) -> str:
    with session_scope(harness.engine) as session:
        row = Operator(
            id=f"op_{uuid.uuid4().hex}",
            org_id=harness.org_id,
            name=f"{role.title()} Person",
            phone=phone,
            role=role,
            last_seen_at=seen,
        )
        session.add(row)
        return row.id


async def escalate(
    harness: Harness, *, priority: Priority = Priority.HIGH
) -> tuple[Escalation, WorkflowHandle[EscalationWorkflow, EscalationState]]:
    lead_id, _ = await harness.start(
        name="Grace Hopper", phone="+447911123456", consent={"sms": True}, message="Need a quote"
    )
    for _ in range(50):  # the lead's contact and thread are recorded
        with session_scope(harness.engine) as session:
            lead = session.get(Lead, lead_id)
            thread = thread_of(session, org_id=harness.org_id, lead=lead) if lead else None
        if thread is not None:
            break
        await harness.env.sleep(timedelta(seconds=1))
    assert thread is not None
    with session_scope(harness.engine) as session:
        row, created = escalate_thread(
            session,
            org_id=harness.org_id,
            thread_id=thread,
            reason="customer_complaint",
            priority=priority,
            summary="Says the last clean was not finished.",
        )
    assert created
    handle = await harness.env.client.start_workflow(
        EscalationWorkflow.run,
        EscalationInput(org_id=harness.org_id, escalation_id=row.id),
        id=f"escalation-{harness.org_id}-{thread}",
        task_queue=harness.task_queue,
    )
    return row, handle


def notifications(harness: Harness, escalation_id: str) -> list[Message]:
    with session_scope(harness.engine) as session:
        return list(
            session.exec(
                select(Message)
                .where(col(Message.idempotency_key).startswith(f"escalation/{escalation_id}/"))
                .order_by(col(Message.created_at))
            )
        )


def ladder(harness: Harness, lead_id: str | None) -> list[str]:
    with session_scope(harness.engine) as session:
        return [
            event.summary
            for event in session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.lead_id == lead_id, TimelineEvent.kind == "escalation")
                .order_by(col(TimelineEvent.at))
            )
        ]


async def test_nobody_online_queues_it_then_the_owner_gets_an_sms_at_the_sla(
    harness: Harness,
) -> None:
    operator(harness, role="owner", phone=OWNER_PHONE, seen=None)
    before = await harness.env.get_current_time()
    row, handle = await escalate(harness, priority=Priority.HIGH)  # SLA 15 minutes
    await harness.env.sleep(timedelta(seconds=5))
    after = await harness.env.get_current_time()

    with session_scope(harness.engine) as session:
        [queued] = open_items(session, org_id=harness.org_id, limit=10)
    assert queued.id == row.id and queued.level == 0
    # Due 15 minutes after the workflow routed it (its clock, somewhere in these 5 s).
    sla = timedelta(minutes=15)
    assert before + sla <= queued.sla_due_at <= after + sla
    assert notifications(harness, row.id) == []
    assert ladder(harness, row.lead_id) == [
        "Escalation (high, level 0): nobody online: waiting in the needs-attention queue"
    ]

    await harness.env.sleep(timedelta(minutes=16))
    [sms] = notifications(harness, row.id)
    assert (sms.channel, sms.to_address, sms.sender) == ("sms", OWNER_PHONE, "system")
    assert sms.status == "simulated"
    assert "customer complaint" in sms.body and "Grace Hopper" in sms.body
    assert "not finished" in sms.body
    state = await handle.query(EscalationWorkflow.state)
    assert state.level == 1
    assert ladder(harness, row.lead_id)[-1] == (
        "Escalation (high, level 1): climbed to the owner: Owner Person notified by SMS"
    )
    with session_scope(harness.engine) as session:
        stored = session.get(Escalation, row.id)
        assert stored is not None and stored.level == 1

    await handle.signal(EscalationWorkflow.resolved, EscalationAck(operator_id="owner"))
    result = await handle.result()
    assert result.resolved_by == "owner"
    assert len(notifications(harness, row.id)) == 1  # nobody else to climb to, nothing more
    await harness.env.sleep(timedelta(seconds=5))  # let the lead settle before teardown


async def test_an_operator_online_gets_the_handoff_and_acknowledging_stops_the_climb(
    harness: Harness,
) -> None:
    now = await harness.env.get_current_time()
    online = operator(harness, role="operator", phone=OPERATOR_PHONE, seen=now)
    operator(harness, role="owner", phone=OWNER_PHONE, seen=None)
    row, handle = await escalate(harness, priority=Priority.URGENT)  # SLA 5 minutes
    await harness.env.sleep(timedelta(seconds=5))

    [handoff] = notifications(harness, row.id)
    assert handoff.to_address == OPERATOR_PHONE
    assert "stage " in handoff.body and "score " in handoff.body
    assert f"/v1/escalations/{row.id}/acknowledge" in handoff.body
    assert handoff.body.endswith(f"Take over: POST /v1/threads/{row.thread_id}/takeover")
    assert len(handoff.body) <= 600
    assert ladder(harness, row.lead_id)[0].endswith("handoff: Operator Person (operator) notified")

    with session_scope(harness.engine) as session:
        acknowledge_escalation(session, org_id=harness.org_id, escalation_id=row.id, by=online)
    await handle.signal(EscalationWorkflow.acknowledged, EscalationAck(operator_id=online))
    await harness.env.sleep(timedelta(hours=2))

    assert len(notifications(harness, row.id)) == 1  # acknowledged: the owner is never woken
    state = await handle.query(EscalationWorkflow.state)
    assert (state.level, state.acknowledged_by) == (0, online)
    await handle.signal(EscalationWorkflow.resolved, EscalationAck(operator_id=online))
    await handle.result()
    await harness.env.sleep(timedelta(seconds=5))  # let the lead settle before teardown
