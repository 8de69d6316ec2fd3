"""The call-retry loop on the time-skipping server: a lead whose sequence has a voice step.

Calls are "placed" by a scripted adapter that answers like Vapi (queued, with an id); each
test plays Vapi's end-of-call reports into the loop the way the webhook does (row first, then
the ``call_ended`` signal) and checks what a business would notice: how many calls, when,
what was texted, whether a person was asked to step in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.voice import CallRequest, EndedCall, PlacedCall
from models.database import session_scope
from models.ids import ladder_id
from models.schemas import SequenceIn, SequenceStep
from models.services.calls import CallReport, record_call_report
from models.services.inbound import record_inbound_message
from models.services.orgs import patch_org_settings
from models.services.outbound import claim_outbound_message
from models.services.sequences import put_sequence
from models.tables import Call, Escalation, Identity, Message
from models.values import CallOutcome, Channel, Intent, ProviderMode
from tests.conftest import start_time_skipping
from tests.workflows.conftest import Harness
from tests.workflows.test_nudge import sleep_until
from tests.workflows.test_takeover import add_operator, release, take_over, thread_of
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.calls import CallRetryProgress, CallRetryResult, CallRetryWorkflow
from workflows.lead import LeadWorkflow
from workflows.payloads import CallEnded, EscalationAck, ReplyReceived

LONDON = ZoneInfo("Europe/London")
PHONE = "+447911123456"


class ScriptedCalls:
    """Takes calls like Vapi does (queued, an id) without dialling; reports come from tests."""

    def __init__(self) -> None:
        self.placed: list[CallRequest] = []

    def place(self, call: CallRequest) -> PlacedCall:
        self.placed.append(call)
        return PlacedCall(call_id=f"vapi-{uuid.uuid4()}", status="queued")

    def reconcile(self, call: CallRequest, *, attempted_at: datetime) -> PlacedCall | None:
        return None

    def lookup(self, provider_call_id: str) -> EndedCall | None:
        return None


def end_call(engine: Engine, call: Call, ended_reason: str) -> CallEnded:
    """Record Vapi's end-of-call report on the call's row, as the webhook does; the signal
    that tells its workflow."""
    assert call.provider_call_id is not None
    with session_scope(engine) as session:
        recorded = record_call_report(
            session,
            org_id=call.org_id,
            report=CallReport(
                provider_call_id=call.provider_call_id,
                call_key=call.idempotency_key,
                ended_reason=ended_reason,
                summary=None,
                duration_s=20.0,
                cost=0.05,
                ended_at=None,
            ),
        )
        assert recorded is not None and recorded.outcome is not None
        return CallEnded(
            call_id=recorded.id, ended_reason=ended_reason, outcome=CallOutcome(recorded.outcome)
        )


@dataclasses.dataclass
class Calls:
    harness: Harness
    scripted: ScriptedCalls
    executor: ThreadPoolExecutor

    def worker(self, *, cached: bool = True) -> Worker:
        """A keepwarm worker whose calls go to the scripted adapter. ``cached=False`` keeps no
        workflow in memory (no sticky queue), so a restart on the test server is clean."""
        adapters = dataclasses.replace(
            self.harness.adapters, placers={ProviderMode.DRY_RUN: self.scripted}
        )
        return build_worker(
            self.harness.env.client,
            engine=self.harness.engine,
            adapters=adapters,
            task_queue=self.harness.task_queue,
            executor=self.executor,
            max_cached_workflows=1000 if cached else 0,
        )

    def rows(self, lead_id: str) -> list[Call]:
        with session_scope(self.harness.engine) as session:
            return list(
                session.exec(
                    select(Call).where(Call.lead_id == lead_id).order_by(col(Call.attempt))
                )
            )

    def loop(self, lead_id: str) -> WorkflowHandle[CallRetryWorkflow, CallRetryResult]:
        return self.harness.env.client.get_workflow_handle_for(
            CallRetryWorkflow.run, f"{lead_id}/calls-1"
        )

    async def progress(self, lead_id: str) -> CallRetryProgress:
        return await self.loop(lead_id).query(CallRetryWorkflow.progress)

    async def planned(self, lead_id: str) -> CallRetryProgress:
        """The loop's progress once it has planned its next attempt.

        A report's outcome is recorded before the next attempt is planned (a local activity),
        so a query answered in between shows no next attempt yet.
        """
        for _ in range(200):
            progress = await self.progress(lead_id)
            if progress.next_at is not None:
                return progress
            await asyncio.sleep(0.05)
        raise AssertionError(f"the next attempt was never planned: {progress}")

    async def next_call(self, lead_id: str, attempt: int) -> Call:
        """Skip to the loop's next attempt and return its row once placed."""
        for _ in range(50):
            rows = self.rows(lead_id)
            if len(rows) >= attempt and rows[attempt - 1].provider_call_id:
                return rows[attempt - 1]
            try:
                progress = await self.progress(lead_id)
            except Exception:  # the loop has not started yet
                progress = None
            now = await self.harness.env.get_current_time()
            if progress is not None and progress.next_at is not None and progress.next_at > now:
                await sleep_until(self.harness, progress.next_at + timedelta(seconds=1))
            else:
                await self.harness.env.sleep(timedelta(seconds=30))
        raise AssertionError(f"attempt {attempt} was never placed: {self.rows(lead_id)}")

    async def report(self, call: Call, ended_reason: str) -> None:
        """What the Vapi webhook does with an end-of-call report."""
        ended = end_call(self.harness.engine, call, ended_reason)
        await self.harness.env.client.get_workflow_handle(call.workflow_id).signal(
            CallRetryWorkflow.call_ended, ended
        )

    async def result(self, lead_id: str) -> CallRetryResult:
        return await self.loop(lead_id).result()

    async def settle(self, lead_id: str) -> None:
        """Let the sequence finish and the lead go idle before the worker stops, and end the
        escalation ladders: the test server never unlocks its clock for a workflow terminated
        with a task outstanding, nor for a timer that fires with no worker to take it."""
        await self.harness.env.client.get_workflow_handle(f"{lead_id}/nudge-1").result()
        await self.harness.env.sleep(timedelta(seconds=5))
        with session_scope(self.harness.engine) as session:
            rows = session.exec(select(Escalation).where(Escalation.lead_id == lead_id)).all()
            ladders = [ladder_id(row) for row in rows]
        for ladder in ladders:
            handle = self.harness.env.client.get_workflow_handle(ladder)
            await handle.signal("resolved", EscalationAck(operator_id="test"))
            await handle.result()


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests run on a server of their own (see ``own_time_env``)."""
    return own_time_env


@pytest.fixture
async def calls(harness: Harness) -> AsyncIterator[Calls]:
    with session_scope(harness.engine) as session:
        put_sequence(
            session,
            org_id=harness.org_id,
            name="call-them",
            body=SequenceIn(
                applies_to=list(Intent),
                steps=[
                    SequenceStep(after=timedelta(minutes=10), channel=Channel.VOICE, template="-")
                ],
                max_attempts=1,
            ),
        )
        patch_org_settings(
            session,
            org_id=harness.org_id,
            changes={
                "quiet_hours": {"voice": ["09:00", "18:00"]},
                "touch_budget": {"per_24h": 50, "calls_per_subject_per_24h": 20},
            },
        )
    scripted = ScriptedCalls()
    # A task queue of its own: the harness's worker (calls simulated) must not take these.
    own = dataclasses.replace(harness, task_queue=f"calls-{uuid.uuid4().hex[:8]}")
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        yield Calls(harness=own, scripted=scripted, executor=executor)
    for lead_id in harness.lead_ids:
        handle = harness.env.client.get_workflow_handle(f"{lead_id}/calls-1")
        with contextlib.suppress(RPCError):
            await handle.terminate("test finished")


async def start_lead(calls: Calls) -> tuple[str, WorkflowHandle[LeadWorkflow, object]]:
    return await calls.harness.start(
        name="Ada",
        phone=PHONE,
        consent={"sms": True, "voice": True},
        timezone="Europe/London",
        message="Need a quote",
    )


async def morning(harness: Harness) -> None:
    """Move the shared clock to 09:30 London on a coming day, so calls can start at once."""
    now = (await harness.env.get_current_time()).astimezone(LONDON)
    day = now.date() + timedelta(days=1)
    await sleep_until(harness, datetime(day.year, day.month, day.day, 9, 30, tzinfo=LONDON))


async def test_four_unanswered_calls_at_their_local_times_then_a_person_is_asked(
    calls: Calls,
) -> None:
    harness = calls.harness
    await morning(harness)
    async with calls.worker():
        lead_id, handle = await start_lead(calls)
        placed: list[Call] = []
        for attempt in range(1, 5):
            call = await calls.next_call(lead_id, attempt)
            placed.append(call)
            await calls.report(call, "customer-did-not-answer")
        result = await calls.result(lead_id)
        for _ in range(20):
            if "ghosting" in harness.stages(lead_id):
                break
            await harness.env.sleep(timedelta(seconds=1))
        status = await handle.query(LeadWorkflow.status)
        await calls.settle(lead_id)

    assert result.outcome == "cap_reached" and result.attempts == 4
    rows = calls.rows(lead_id)
    assert [row.attempt for row in rows] == [1, 2, 3, 4]
    assert {row.outcome for row in rows} == {"no_answer"}
    assert len(calls.scripted.placed) == 4
    times = [row.touched_at for row in rows]
    assert all(t is not None for t in times)
    local = [t.astimezone(LONDON) for t in times if t is not None]
    # Every attempt inside the 09:00-18:00 calling window, local time...
    assert all(9 <= moment.hour < 18 for moment in local), local
    # ...and at least the policy's spacing apart (5 min, 2 h, 1 day).
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]  # type: ignore[operator]
    for gap, spacing in zip(
        gaps, [timedelta(minutes=5), timedelta(hours=2), timedelta(days=1)], strict=True
    ):
        assert gap >= spacing
    # Vapi got the loop's metadata with each call.
    metadata = [dict(request.metadata) for request in calls.scripted.placed]
    assert [m["attempt"] for m in metadata] == ["1", "2", "3", "4"]
    assert {m["workflow_id"] for m in metadata} == {f"{lead_id}/calls-1"}

    with session_scope(harness.engine) as session:
        [escalation] = session.exec(select(Escalation).where(Escalation.lead_id == lead_id)).all()
    assert escalation.reason == "call_attempts_exhausted"
    assert escalation.summary.count("no_answer") == 4
    assert escalation.status == "open"
    assert harness.stages(lead_id)[-1] == "ghosting"
    assert status.stage == "ghosting"


async def test_voicemail_texts_back_once_and_an_answer_ends_the_loop(calls: Calls) -> None:
    harness = calls.harness
    await morning(harness)
    async with calls.worker():
        lead_id, _ = await start_lead(calls)
        for attempt, reason in enumerate(["voicemail", "voicemail", "customer-ended-call"], 1):
            await calls.report(await calls.next_call(lead_id, attempt), reason)
        result = await calls.result(lead_id)
        await calls.settle(lead_id)

    assert (result.outcome, result.attempts) == ("answered", 3)
    assert [row.outcome for row in calls.rows(lead_id)] == ["voicemail", "voicemail", "answered"]
    text_backs = [
        m
        for m in harness.messages(lead_id)
        if (m.idempotency_key or "").endswith("voicemail-text-back")
    ]
    assert len(text_backs) == 1
    assert text_backs[0].channel == "sms" and "tried to call you" in text_backs[0].body
    with session_scope(harness.engine) as session:
        assert session.exec(select(Escalation).where(Escalation.lead_id == lead_id)).all() == []


async def test_a_worker_restart_between_attempts_changes_nothing(calls: Calls) -> None:
    harness = calls.harness
    await morning(harness)
    async with calls.worker(cached=False):
        lead_id, _ = await start_lead(calls)
        await calls.report(await calls.next_call(lead_id, 1), "customer-busy")
        progress = await calls.planned(lead_id)
    # No worker while the loop waits for attempt 2: nothing happens, nothing is lost.
    assert progress.attempts_used == 1 and progress.next_at is not None
    async with calls.worker(cached=False):
        await calls.report(await calls.next_call(lead_id, 2), "customer-ended-call")
        result = await calls.result(lead_id)
        await calls.settle(lead_id)

    assert (result.outcome, result.attempts) == ("answered", 2)
    assert [row.outcome for row in calls.rows(lead_id)] == ["busy", "answered"]
    assert len(calls.scripted.placed) == 2


async def test_a_reply_during_the_wait_cancels_the_pending_attempts(calls: Calls) -> None:
    harness = calls.harness
    await morning(harness)
    async with calls.worker():
        lead_id, handle = await start_lead(calls)
        await calls.report(await calls.next_call(lead_id, 1), "customer-did-not-answer")
        with session_scope(harness.engine) as session:
            inbound = record_inbound_message(
                session,
                org_id=harness.org_id,
                channel=Channel.SMS,
                from_phone=PHONE,
                to_address=None,
                body="Call me tomorrow please",
                provider_message_id=f"SM{uuid.uuid4().hex}",
                consent=None,
                source="twilio",
            )
        await handle.signal(
            LeadWorkflow.message_received,
            ReplyReceived(message_id=inbound.message_id, channel=Channel.SMS),
        )
        result = await calls.result(lead_id)
        await calls.settle(lead_id)
        await harness.env.sleep(timedelta(days=3))

    assert (result.outcome, result.attempts) == ("stopped", 1)
    assert result.detail == "reply"
    assert len(calls.rows(lead_id)) == 1
    assert len(calls.scripted.placed) == 1


async def test_an_invalid_number_is_not_retried_and_never_used_again(calls: Calls) -> None:
    harness = calls.harness
    await morning(harness)
    async with calls.worker():
        lead_id, _ = await start_lead(calls)
        await calls.report(await calls.next_call(lead_id, 1), "twilio-reported-customer-misdialed")
        result = await calls.result(lead_id)
        await calls.settle(lead_id)
        await harness.env.sleep(timedelta(days=3))

    assert (result.outcome, result.attempts) == ("invalid_number", 1)
    assert len(calls.rows(lead_id)) == 1
    with session_scope(harness.engine) as session:
        identity = session.exec(select(Identity).where(Identity.value == PHONE)).one()
        assert identity.invalid_at is not None
        assert "misdialed" in (identity.invalid_reason or "")
        # A text to the same person now has no number to go to.
        claim = claim_outbound_message(
            session,
            org_id=harness.org_id,
            lead_id=lead_id,
            channel=Channel.SMS,
            idempotency_key=f"after-invalid/{uuid.uuid4()}",
            template="first_touch",
        )
        assert claim.message.to_address is None
        assert session.exec(
            select(Message).where(Message.lead_id == lead_id, Message.to_address == PHONE)
        ).all()  # only the first touch, sent before the number was known to be bad


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]),
    arrival=st.integers(min_value=0, max_value=48 * 60),  # minutes from now
    max_attempts=st.integers(min_value=1, max_value=5),
    per_subject=st.integers(min_value=1, max_value=3),
    opens=st.integers(min_value=7, max_value=12),
)
async def test_no_attempt_outside_the_window_and_never_more_than_the_caps(
    calls: Calls, zone: str, arrival: int, max_attempts: int, per_subject: int, opens: int
) -> None:
    """Unanswered leads arriving at any time, anywhere: every attempt inside the calling
    window in the lead's local time, at most the per-subject cap in any 24 h, and exactly the
    policy's attempts before a person is asked."""
    window = (f"{opens:02d}:00", f"{opens + 8:02d}:00")
    with session_scope(calls.harness.engine) as session:
        patch_org_settings(
            session,
            org_id=calls.harness.org_id,
            changes={
                "quiet_hours": {"voice": list(window)},
                "touch_budget": {"per_24h": 50, "calls_per_subject_per_24h": per_subject},
                "call_policy": {"max_attempts": max_attempts, "spacing": ["PT5M", "PT1H"]},
            },
        )
    # Each example on a server of its own: nothing of one example can hold the next's clock.
    env = await start_time_skipping()
    harness = dataclasses.replace(
        calls.harness, env=env, task_queue=f"calls-{uuid.uuid4().hex[:8]}", started=[]
    )
    example = Calls(harness=harness, scripted=ScriptedCalls(), executor=calls.executor)
    try:
        await harness.env.sleep(timedelta(minutes=arrival + 1))
        async with example.worker():
            lead_id, _ = await harness.start(
                name="Ada",
                phone=f"+4479111{uuid.uuid4().int % 100000:05d}",
                consent={"sms": True, "voice": True},
                timezone=zone,
            )
            for attempt in range(1, max_attempts + 1):
                call = await example.next_call(lead_id, attempt)
                await example.report(call, "customer-did-not-answer")
            result = await example.result(lead_id)
    finally:
        await env.shutdown()

    assert (result.outcome, result.attempts) == ("cap_reached", max_attempts)
    rows = example.rows(lead_id)
    assert len(rows) == max_attempts
    times = sorted(row.touched_at for row in rows if row.touched_at is not None)
    assert len(times) == max_attempts
    local = ZoneInfo(zone)
    for moment in times:
        assert opens <= moment.astimezone(local).hour < opens + 8, (moment, zone, window)
    for i, moment in enumerate(times):
        assert len([t for t in times[i:] if t < moment + timedelta(hours=24)]) <= per_subject


async def test_no_call_while_an_operator_holds_the_thread_and_the_loop_resumes_after(
    calls: Calls,
) -> None:
    harness = calls.harness
    with session_scope(harness.engine) as session:
        patch_org_settings(session, org_id=harness.org_id, changes={"takeover_timeout": "PT12H"})
    ada = add_operator(harness, name="Ada")
    await morning(harness)
    async with calls.worker():
        lead_id, _ = await start_lead(calls)
        first = await calls.next_call(lead_id, 1)
        await calls.report(first, "customer-did-not-answer")  # attempt 2 in 5 minutes
        thread_id = await thread_of(harness, lead_id)
        await take_over(harness, thread_id, ada)
        await harness.env.sleep(timedelta(seconds=5))
        assert (await calls.progress(lead_id)).paused

        await harness.env.sleep(timedelta(hours=3))
        assert len(calls.rows(lead_id)) == 1 and len(calls.scripted.placed) == 1

        await release(harness, thread_id, ada)
        released_at = await harness.env.get_current_time()
        second = await calls.next_call(lead_id, 2)
        await calls.report(second, "customer-ended-call")
        result = await calls.result(lead_id)
        await calls.settle(lead_id)

    assert result.outcome == "answered" and result.attempts == 2
    assert second.touched_at is not None
    # What was left of the 5-minute spacing is waited from the release, not skipped.
    assert timedelta(0) < second.touched_at - released_at <= timedelta(minutes=5, seconds=30)
