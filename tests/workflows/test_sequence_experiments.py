"""Experiments and honest sends in running sequences, on the time-skipping server: each lead
gets its variant of a step and keeps it through a continue-as-new; after STOP an all-SMS
sequence writes nothing more, and a step with a fallback goes by email instead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from models.database import session_scope
from models.rules.experiments import bucket, choose
from models.schemas import SequenceIn, SequenceStep, Variant
from models.services.sequences import put_sequence
from models.tables import Message, TimelineEvent
from models.values import Channel, Intent, MessageStatus, TimelineKind
from tests.models.test_experiments import withdraw_sms
from tests.workflows.conftest import Harness
from workflows.lead import ConsentChanged, IntakeReceived, LeadWorkflow

NAME = "follow-up"


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests run on a server of their own (see ``own_time_env``): their leads'
    timers outlive each test, and on a shared server one that fires with no worker to take
    it keeps the clock from moving for the tests after it."""
    return own_time_env


def put(harness: Harness, *steps: SequenceStep) -> None:
    with session_scope(harness.engine) as session:
        put_sequence(
            session,
            org_id=harness.org_id,
            name=NAME,
            body=SequenceIn(applies_to=list(Intent), steps=list(steps), max_attempts=len(steps)),
        )


def sms(after: timedelta, text: str, *, fallback: list[Channel] | None = None) -> SequenceStep:
    return SequenceStep(after=after, channel=Channel.SMS, template=text, fallback=fallback or [])


def ab(after: timedelta, a: str, b: str) -> SequenceStep:
    return SequenceStep(
        after=after,
        channel=Channel.SMS,
        variants=[Variant(name="a", template=a), Variant(name="b", template=b)],
    )


async def messages(harness: Harness, lead_id: str, count: int) -> list[Message]:
    """The lead's messages once there are ``count`` (sends run in real time)."""
    for _ in range(100):
        found = harness.messages(lead_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return harness.messages(lead_id)


def skipped_notes(harness: Harness, lead_id: str) -> list[str]:
    with session_scope(harness.engine) as session:
        return sorted(
            event.summary
            for event in session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.lead_id == lead_id,
                    TimelineEvent.kind == TimelineKind.TOUCH_SKIPPED,
                )
            )
        )


async def stop_sms(harness: Harness, lead_id: str, handle: object) -> None:
    """The person texts STOP: SMS consent withdrawn (email still allowed), and the Lead told."""
    withdraw_sms(harness.engine, harness.org_id, lead_id)
    await handle.signal(  # type: ignore[attr-defined]
        LeadWorkflow.consent_changed,
        ConsentChanged(channel=Channel.SMS, granted=False, opted_out_everywhere=False),
    )


STEPS = (timedelta(minutes=15), timedelta(days=1), timedelta(days=2))


async def test_after_stop_an_all_sms_sequence_writes_no_further_messages(
    harness: Harness,
) -> None:
    put(harness, *(sms(after, f"Step {n}") for n, after in enumerate(STEPS, 1)))
    lead_id, handle = await harness.start(
        name="Ada", phone="+447911123456", email="ada@example.com", consent={"sms": True}
    )
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await messages(harness, lead_id, 2)) == 2  # first touch, step 1

    await stop_sms(harness, lead_id, handle)
    await harness.env.sleep(timedelta(days=4))

    sent = harness.messages(lead_id)
    assert [m.body for m in sent][1:] == ["Step 1"]
    assert not [m for m in sent if m.status == MessageStatus.FAILED]
    assert skipped_notes(harness, lead_id) == [
        f"Step 2 of {NAME} skipped: sms withdrawn",
        f"Step 3 of {NAME} skipped: sms withdrawn",
    ]


async def test_a_step_with_a_fallback_goes_by_email_after_stop(harness: Harness) -> None:
    put(
        harness,
        sms(STEPS[0], "Step 1"),
        sms(STEPS[1], "Step 2 for {first_name}", fallback=[Channel.EMAIL]),
    )
    lead_id, handle = await harness.start(
        name="Ada", phone="+447911123456", email="ada@example.com", consent={"sms": True}
    )
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await messages(harness, lead_id, 2)) == 2

    await stop_sms(harness, lead_id, handle)
    await harness.env.sleep(timedelta(days=1))

    last = (await messages(harness, lead_id, 3))[-1]
    assert (last.channel, last.body, last.to_address) == (
        Channel.EMAIL,
        "Step 2 for Ada",
        "ada@example.com",
    )
    assert (last.sequence, last.step) == (NAME, 2)
    assert skipped_notes(harness, lead_id) == []


async def test_each_lead_keeps_its_variants_through_a_continue_as_new(harness: Harness) -> None:
    put(
        harness,
        ab(STEPS[0], "A1 {first_name}", "B1 {first_name}"),
        ab(STEPS[1], "A2", "B2"),
    )
    started = [
        await harness.start(
            history_limit=60, name="Ada", phone=f"+44791112345{n}", consent={"sms": True}
        )
        for n in range(4)
    ]
    await harness.env.sleep(timedelta(minutes=16))
    first_runs = [(await handle.describe()).run_id for _, handle in started]
    # Repeat submissions grow each lead's history past its limit: each continues as new
    # between its two steps, and its sequence starts again from step 2.
    for _ in range(12):
        for _, handle in started:
            await handle.signal(
                LeadWorkflow.intake_received, IntakeReceived(receipt_id=harness.receipt(name="Ada"))
            )
        await harness.env.sleep(timedelta(minutes=1))
    await harness.env.sleep(timedelta(days=1))

    for (lead_id, handle), first_run in zip(started, first_runs, strict=True):
        assert (await handle.describe()).run_id != first_run
        steps = [m for m in await messages(harness, lead_id, 3) if m.step is not None]
        expected = [choose(["a", "b"], [1, 1], bucket(lead_id, NAME, str(n))) for n in (1, 2)]
        assert [(m.step, m.variant) for m in steps] == list(zip((1, 2), expected, strict=True))
        assert steps[0].body == f"{expected[0].upper()}1 Ada"
        assert steps[1].body == f"{expected[1].upper()}2"
