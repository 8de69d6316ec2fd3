"""Takeover on the time-skipping server: while an operator holds the thread no nudge or call
goes out, a release resumes the sequence where it stood, and an idle hold releases itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.database import session_scope
from models.errors import ThreadHeld
from models.ids import takeover_workflow_id
from models.services import takeover as takeover_service
from models.services.merge import merge_contacts
from models.services.orgs import patch_org_settings
from models.services.replies import claim_reply
from models.services.takeover import release_hold
from models.store import threads as thread_store
from models.store.contacts import resolve_contact
from models.tables import Lead, Message, Operator, Thread, TimelineEvent
from models.values import Channel
from tests.workflows.conftest import Harness
from tests.workflows.test_nudge import put
from workflows.lead import LeadWorkflow
from workflows.nudge import NudgeSequenceWorkflow
from workflows.payloads import (
    TAKEOVER_CHANGED_SIGNAL,
    HoldChanged,
    TakeoverState,
    ThreadReleased,
    ThreadTakenOver,
)
from workflows.takeover import (
    HumanReplyWorkflow,
    StoredMessageInput,
    TakeoverInput,
    TakeoverWorkflow,
)

OPERATOR_PHONE = "+447700900333"


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests run on a server of their own (see ``own_time_env``)."""
    return own_time_env


def add_operator(harness: Harness, *, name: str = "Olive Operator") -> str:
    with session_scope(harness.engine) as session:
        row = Operator(
            id=f"op_{uuid.uuid4().hex}",
            org_id=harness.org_id,
            name=name,
            phone=OPERATOR_PHONE,
            role="operator",
        )
        session.add(row)
        return row.id


def set_timeout(harness: Harness, timeout: str) -> None:
    with session_scope(harness.engine) as session:
        patch_org_settings(session, org_id=harness.org_id, changes={"takeover_timeout": timeout})


async def thread_of(harness: Harness, lead_id: str) -> str:
    for _ in range(100):  # the lead's contact and thread are recorded by its workflow
        with session_scope(harness.engine) as session:
            lead = session.get(Lead, lead_id)
            thread = (
                thread_store.thread_of(session, org_id=harness.org_id, lead=lead) if lead else None
            )
        if thread is not None:
            return thread
        await asyncio.sleep(0.05)
    raise AssertionError("the lead's thread was never recorded")


async def tell(
    harness: Harness, thread_id: str, operator_id: str, *, held: bool
) -> WorkflowHandle[TakeoverWorkflow, TakeoverState]:
    """What the API does after a takeover or release: signal-with-start the thread's
    Takeover workflow."""
    return await harness.env.client.start_workflow(
        TakeoverWorkflow.run,
        TakeoverInput(org_id=harness.org_id, thread_id=thread_id),
        id=takeover_workflow_id(harness.org_id, thread_id),
        task_queue=harness.task_queue,
        start_signal=TAKEOVER_CHANGED_SIGNAL,
        start_signal_args=[HoldChanged(operator_id=operator_id, held=held)],
    )


async def take_over(
    harness: Harness, thread_id: str, operator_id: str
) -> WorkflowHandle[TakeoverWorkflow, TakeoverState]:
    now = await harness.env.get_current_time()
    with session_scope(harness.engine) as session:
        hold = takeover_service.take_over(
            session, org_id=harness.org_id, thread_id=thread_id, operator_id=operator_id, now=now
        )
    assert hold.changed and hold.held_by == operator_id
    return await tell(harness, thread_id, operator_id, held=True)


async def release(harness: Harness, thread_id: str, operator_id: str) -> None:
    now = await harness.env.get_current_time()
    with session_scope(harness.engine) as session:
        release_hold(
            session, org_id=harness.org_id, thread_id=thread_id, operator_id=operator_id, now=now
        )
    await tell(harness, thread_id, operator_id, held=False)


async def settle(harness: Harness, seconds: float = 2) -> None:
    """Let signals and activities run (they take real time; the clock skips only when all
    is quiet)."""
    await harness.env.sleep(timedelta(seconds=seconds))


def steps_sent(harness: Harness, lead_id: str) -> list[Message]:
    return [m for m in harness.messages(lead_id) if m.body.startswith("Step")]


async def sent_within(harness: Harness, lead_id: str, count: int) -> list[Message]:
    """The sequence's messages once there are ``count`` (sends run in real time)."""
    for _ in range(100):
        found = steps_sent(harness, lead_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return steps_sent(harness, lead_id)


def takeover_notes(harness: Harness, lead_id: str) -> list[str]:
    with session_scope(harness.engine) as session:
        return [
            event.summary
            for event in session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.lead_id == lead_id, TimelineEvent.kind == "takeover")
                .order_by(col(TimelineEvent.at))
            )
        ]


async def test_no_nudge_while_held_and_the_release_resumes_where_it_stood(
    harness: Harness,
) -> None:
    set_timeout(harness, "PT12H")  # this test is about the release, not the timeout
    put(harness, (timedelta(hours=1), "Step 1"), (timedelta(hours=1), "Step 2"))
    ada = add_operator(harness, name="Ada")
    bob = add_operator(harness, name="Bob")
    lead_id, lead = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    thread_id = await thread_of(harness, lead_id)
    await harness.env.sleep(timedelta(minutes=10))
    assert steps_sent(harness, lead_id) == []

    holder = await take_over(harness, thread_id, ada)
    await settle(harness)
    with session_scope(harness.engine) as session, pytest.raises(ThreadHeld):
        takeover_service.take_over(
            session,
            org_id=harness.org_id,
            thread_id=thread_id,
            operator_id=bob,
            now=await harness.env.get_current_time(),
        )
    status = await lead.query(LeadWorkflow.status)
    assert (status.waiting_reason or "").startswith("paused: an operator has the conversation")

    # Step 1 was due 50 minutes after the takeover; three hours later nothing has gone.
    await harness.env.sleep(timedelta(hours=3))
    assert steps_sent(harness, lead_id) == []
    state = await holder.query(TakeoverWorkflow.state)
    assert state.held_by == ada

    await release(harness, thread_id, ada)
    released_at = await harness.env.get_current_time()
    await settle(harness)
    assert (await holder.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await holder.query(TakeoverWorkflow.state)).held_by is None
    # The 50 minutes left when it paused are waited again, from the release.
    await harness.env.sleep(timedelta(minutes=45))
    assert steps_sent(harness, lead_id) == []
    await harness.env.sleep(timedelta(minutes=10))
    [step_1] = await sent_within(harness, lead_id, 1)
    assert step_1.body == "Step 1" and step_1.status == "simulated"
    assert step_1.touched_at is not None
    assert timedelta(minutes=49) <= step_1.touched_at - released_at <= timedelta(minutes=51)
    await harness.env.sleep(timedelta(hours=1))
    assert [m.body for m in await sent_within(harness, lead_id, 2)] == ["Step 1", "Step 2"]
    assert takeover_notes(harness, lead_id) == [
        "Taken over by Ada: automation paused (released after 720 min without a message from them)",
        "Released by Ada: automation resumes",
    ]


async def test_an_idle_hold_releases_itself_with_a_notice_and_a_reply_keeps_it(
    harness: Harness,
) -> None:
    put(harness, (timedelta(minutes=20), "Step 1"))
    ada = add_operator(harness, name="Ada")
    lead_id, _ = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    thread_id = await thread_of(harness, lead_id)
    await settle(harness)
    holder = await take_over(harness, thread_id, ada)
    await settle(harness)

    # A reply 20 minutes in restarts the 30-minute clock.
    await harness.env.sleep(timedelta(minutes=20))
    with session_scope(harness.engine) as session:
        claim = claim_reply(
            session,
            org_id=harness.org_id,
            thread_id=thread_id,
            operator_id=ada,
            body="Hi Grace, Ada here - Tuesday works.",
            channel=None,
            key=f"reply/{uuid.uuid4().hex}",
            now=await harness.env.get_current_time(),
        )
    await harness.env.client.start_workflow(
        HumanReplyWorkflow.run,
        StoredMessageInput(org_id=harness.org_id, message_id=claim.message.id),
        id=f"reply-{harness.org_id}-{claim.message.id}",
        task_queue=harness.task_queue,
    )
    assert not claim.hold.changed  # Ada held it already
    await harness.env.sleep(timedelta(minutes=25))  # 45 minutes in: still held
    assert (await holder.query(TakeoverWorkflow.state)).held_by == ada
    assert steps_sent(harness, lead_id) == []

    await harness.env.sleep(timedelta(minutes=10))  # 30 minutes after the reply
    await settle(harness)
    assert (await holder.describe()).status == WorkflowExecutionStatus.COMPLETED
    result = await holder.query(TakeoverWorkflow.state)
    assert result.held_by is None and result.timed_out == 1
    with session_scope(harness.engine) as session:
        [notice] = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith("takeover/"))
        ).all()
        thread = session.get(Thread, thread_id)
        assert thread is not None and thread.held_by is None and thread.handled_by == "ai"
    assert (notice.to_address, notice.sender, notice.status) == (
        OPERATOR_PHONE,
        "system",
        "simulated",
    )
    assert "Grace" in notice.body and "30 min" in notice.body
    assert takeover_notes(harness, lead_id)[-1] == (
        "Released after 30 min without a message from Ada: automation resumes"
    )
    # The sequence, due 20 minutes after intake, was paused 0-1 minutes in: it goes now.
    await harness.env.sleep(timedelta(minutes=25))
    [step] = await sent_within(harness, lead_id, 1)
    assert step.body == "Step 1"
    [human] = [m for m in harness.messages(lead_id) if m.sender == "human"]
    assert (human.operator_id, human.status, human.channel) == (ada, "simulated", Channel.SMS)


async def test_a_first_touch_held_back_by_a_takeover_goes_on_release(
    harness: Harness,
) -> None:
    set_timeout(harness, "PT12H")
    ada = add_operator(harness, name="Ada")
    first_id, _ = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    thread_id = await thread_of(harness, first_id)
    holder = await take_over(harness, thread_id, ada)
    await settle(harness)

    # A new lead of the same person while Ada holds the thread: its first touch waits.
    second_id, _ = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(hours=2))
    assert harness.first_touches(second_id) == []
    assert "touch_deferred" in harness.timeline_kinds(second_id)

    await release(harness, thread_id, ada)
    await settle(harness, 5)
    for _ in range(100):
        if harness.first_touches(second_id):
            break
        await asyncio.sleep(0.05)
    [touch] = harness.first_touches(second_id)
    assert touch.sender == "ai" and touch.status == "simulated"
    assert (await holder.query(TakeoverWorkflow.state)).held_by is None


async def test_a_takeover_and_release_in_quick_succession_leave_the_sequence_running(
    harness: Harness,
) -> None:
    put(harness, (timedelta(hours=1), "Step 1"))
    lead_id, lead = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=59, seconds=30))  # the sequence has started
    nudge: WorkflowHandle[Any, Any] = harness.env.client.get_workflow_handle(f"{lead_id}/nudge-1")
    for _ in range(5):  # the signals as the Takeover workflow sends them, back to back
        await lead.signal(LeadWorkflow.taken_over, ThreadTakenOver(thread_id="th"))
        await lead.signal(LeadWorkflow.released, ThreadReleased(thread_id="th"))
    await settle(harness)

    assert not (await nudge.query(NudgeSequenceWorkflow.progress)).paused
    status = await lead.query(LeadWorkflow.status)
    assert not (status.waiting_reason or "").startswith("paused")
    await harness.env.sleep(timedelta(minutes=5))
    assert [m.body for m in await sent_within(harness, lead_id, 1)] == ["Step 1"]


async def test_a_held_thread_merged_away_releases_its_leads(harness: Harness) -> None:
    set_timeout(harness, "PT12H")
    put(harness, (timedelta(hours=1), "Step 1"))
    ada = add_operator(harness, name="Ada")
    lead_id, lead = await harness.start(name="Grace", phone="+447911123456", consent={"sms": True})
    thread_id = await thread_of(harness, lead_id)
    holder = await take_over(harness, thread_id, ada)
    await settle(harness)
    paused = (await lead.query(LeadWorkflow.status)).waiting_reason
    assert paused is not None and paused.startswith("paused")

    # An operator merges Grace's contact into another record of hers: the held thread goes.
    with session_scope(harness.engine) as session:
        grace = session.get(Lead, lead_id)
        assert grace is not None
        other = resolve_contact(
            session, org_id=harness.org_id, payload={"email": "grace@example.com"}
        )
        merge_contacts(session, org_id=harness.org_id, keep_id=other.id, other_id=grace.contact_id)
    await tell(harness, thread_id, ada, held=False)
    await settle(harness)

    assert (await holder.describe()).status == WorkflowExecutionStatus.COMPLETED
    status = await lead.query(LeadWorkflow.status)
    assert not (status.waiting_reason or "").startswith("paused")
    await harness.env.sleep(timedelta(hours=1))
    assert [m.body for m in await sent_within(harness, lead_id, 1)] == ["Step 1"]
