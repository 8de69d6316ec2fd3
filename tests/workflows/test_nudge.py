"""Nudge sequences on the time-skipping server: two weeks of follow-up in seconds."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.service import RPCError

from models.database import session_scope
from models.schemas import SequenceIn, SequenceStep
from models.services.sequences import put_sequence
from models.values import Channel, Intent, Stage
from tests.workflows.conftest import Harness
from workflows.lead import (
    BookingReceived,
    ConsentChanged,
    IntakeReceived,
    LeadResult,
    LeadWorkflow,
    PaymentReceived,
    ReplyReceived,
)
from workflows.payloads import NudgeResult

ALL_INTENTS = list(Intent)


def put(harness: Harness, *steps: tuple[timedelta, str], name: str = "follow-up") -> None:
    with session_scope(harness.engine) as session:
        put_sequence(
            session,
            org_id=harness.org_id,
            name=name,
            body=SequenceIn(
                applies_to=ALL_INTENTS,
                steps=[
                    SequenceStep(after=after, channel=Channel.SMS, template=text)
                    for after, text in steps
                ],
                max_attempts=len(steps),
            ),
        )


TWO_WEEKS = (
    (timedelta(minutes=15), "Step 1 for {first_name}"),
    (timedelta(days=1), "Step 2 from {org_name}"),
    (timedelta(days=3), "Step 3"),
    (timedelta(days=7), "Step 4"),
)


async def bodies(harness: Harness, lead_id: str, count: int) -> list[str]:
    """The lead's message bodies once there are ``count`` (sends run in real time)."""
    for _ in range(100):
        found = [m.body for m in harness.messages(lead_id)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return [m.body for m in harness.messages(lead_id)]


async def test_each_step_goes_out_at_its_time_then_ghosting_then_lost(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})

    await harness.env.sleep(timedelta(minutes=14))
    assert len(await bodies(harness, lead_id, 1)) == 1  # the first touch only
    await harness.env.sleep(timedelta(minutes=2))
    assert (await bodies(harness, lead_id, 2))[1] == "Step 1 for Ada"
    await harness.env.sleep(timedelta(hours=23))
    assert len(await bodies(harness, lead_id, 2)) == 2
    await harness.env.sleep(timedelta(hours=2))
    assert (await bodies(harness, lead_id, 3))[2] == "Step 2 from Shine Cleaning"
    await harness.env.sleep(timedelta(days=3))
    assert len(await bodies(harness, lead_id, 4)) == 4
    await harness.env.sleep(timedelta(days=7))
    assert len(await bodies(harness, lead_id, 5)) == 5

    result = await handle.result()

    assert result.stage == Stage.LOST
    assert harness.stages(lead_id) == ["contacted", "ghosting", "lost"]
    keys = [m.idempotency_key for m in harness.messages(lead_id)]
    assert len(set(keys)) == 5


async def test_a_reply_stops_the_sequence(harness: Harness) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await bodies(harness, lead_id, 2)) == 2

    await handle.signal(
        LeadWorkflow.message_received, ReplyReceived(message_id="msg_reply", channel=Channel.SMS)
    )
    await harness.env.sleep(timedelta(days=12))

    assert len(harness.messages(lead_id)) == 2
    assert "engaged" in harness.stages(lead_id)


@pytest.mark.parametrize(
    "convert",
    [
        lambda handle: handle.signal(
            LeadWorkflow.payment_received, PaymentReceived(payment_id="pay_1", status="paid")
        ),
        lambda handle: handle.signal(
            LeadWorkflow.booking_received, BookingReceived(booking_id="rcpt_1")
        ),
    ],
    ids=["payment", "booking"],
)
async def test_a_conversion_stops_the_sequence(harness: Harness, convert: Any) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await bodies(harness, lead_id, 2)) == 2

    await convert(handle)
    result = await handle.result()
    await harness.env.sleep(timedelta(days=12))

    assert result.stage == Stage.CONVERTED
    assert harness.stages(lead_id) == ["contacted", "converted"]
    assert len(harness.messages(lead_id)) == 2


async def test_an_edit_in_flight_never_resends_a_step_and_applies_to_later_ones(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, _ = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await bodies(harness, lead_id, 2)) == 2

    put(
        harness,
        (timedelta(minutes=1), "Step 1, reworded"),
        (timedelta(days=1), "Step 2, reworded"),
        (timedelta(days=2), "Step 3, reworded"),
    )
    await harness.env.sleep(timedelta(days=1, hours=1))
    await harness.env.sleep(timedelta(days=2, hours=1))
    sent = await bodies(harness, lead_id, 4)

    assert sent[1:] == ["Step 1 for Ada", "Step 2, reworded", "Step 3, reworded"]
    await harness.env.sleep(timedelta(days=10))
    assert len(harness.messages(lead_id)) == 4  # the new cap is 3 steps


async def sleep_until(harness: Harness, moment: datetime) -> None:
    now = await harness.env.get_current_time()
    assert moment > now, "the test server's clock is already past the moment this test needs"
    await harness.env.sleep(moment - now)


def next_spring_forward(zone: ZoneInfo, after: datetime) -> date:
    """The next day on which ``zone``'s clocks go forward."""
    day = after.astimezone(zone).date() + timedelta(days=1)
    for _ in range(400):
        before = datetime.combine(day - timedelta(days=1), time(12), zone).utcoffset()
        on = datetime.combine(day, time(12), zone).utcoffset()
        if before is not None and on is not None and on > before:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone} has no DST change within a year")


async def test_days_count_on_the_contacts_local_calendar_across_a_dst_change(
    harness: Harness,
) -> None:
    """Europe/London goes from GMT to BST on a Sunday in March: a step one day after 10:00 on
    Saturday is due at 10:00 BST on Sunday (09:00 UTC), not 24 hours later."""
    london = ZoneInfo("Europe/London")
    sunday = next_spring_forward(london, await harness.env.get_current_time())
    saturday, monday = sunday - timedelta(days=1), sunday + timedelta(days=1)

    def local(day: date, hour: int, minute: int) -> datetime:
        return datetime.combine(day, time(hour, minute), london)

    put(
        harness,
        (timedelta(minutes=15), "Saturday 10:00"),
        (timedelta(days=1), "Sunday 10:00"),
        (timedelta(days=1, hours=2), "Monday 12:00"),
    )
    await sleep_until(harness, local(saturday, 9, 45))
    lead_id, _ = await harness.start(
        name="Ada", phone="+447911123456", consent={"sms": True}, timezone="Europe/London"
    )

    await sleep_until(harness, local(saturday, 10, 1))
    assert (await bodies(harness, lead_id, 2))[1:] == ["Saturday 10:00"]
    await sleep_until(harness, local(sunday, 9, 59))
    assert len(await bodies(harness, lead_id, 2)) == 2
    await sleep_until(harness, local(sunday, 10, 1))  # 23 hours after Saturday 10:00
    assert (await bodies(harness, lead_id, 3))[2] == "Sunday 10:00"
    await sleep_until(harness, local(monday, 11, 59))
    assert len(await bodies(harness, lead_id, 3)) == 3
    await sleep_until(harness, local(monday, 12, 1))
    assert (await bodies(harness, lead_id, 4))[3] == "Monday 12:00"


async def test_a_reply_leaves_a_sequence_running_that_does_not_stop_on_replies(
    harness: Harness,
) -> None:
    with session_scope(harness.engine) as session:
        put_sequence(
            session,
            org_id=harness.org_id,
            name="reminders",
            body=SequenceIn(
                applies_to=ALL_INTENTS,
                steps=[
                    SequenceStep(after=timedelta(hours=1), channel=Channel.SMS, template="One"),
                    SequenceStep(after=timedelta(days=1), channel=Channel.SMS, template="Two"),
                ],
                stop_on=["booking", "payment"],
            ),
        )
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=5))
    await handle.signal(
        LeadWorkflow.message_received, ReplyReceived(message_id="msg_reply", channel=Channel.SMS)
    )
    await harness.env.sleep(timedelta(days=1, hours=2))

    assert (await bodies(harness, lead_id, 3))[1:] == ["One", "Two"]
    assert "engaged" in harness.stages(lead_id)


async def test_a_long_history_continues_as_new_without_resending_or_skipping_a_step(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(
        history_limit=60, name="Ada", phone="+447911123456", consent={"sms": True}
    )
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await bodies(harness, lead_id, 2)) == 2
    first_run = (await handle.describe()).run_id

    # Repeat submissions grow the history (an activity each) past the limit.
    for _ in range(12):
        await handle.signal(
            LeadWorkflow.intake_received, IntakeReceived(receipt_id=harness.receipt(name="Ada"))
        )
        await harness.env.sleep(timedelta(minutes=1))
    await harness.env.sleep(timedelta(hours=1))
    assert (await handle.describe()).run_id != first_run
    status = await handle.query(LeadWorkflow.status)
    assert status.stage == Stage.CONTACTED
    assert status.nudge_workflow_id == f"{lead_id}/nudge-2"

    result = await handle.result()

    assert result.stage == Stage.LOST
    sent = await bodies(harness, lead_id, 5)
    assert sent[1:] == ["Step 1 for Ada", "Step 2 from Shine Cleaning", "Step 3", "Step 4"]
    assert len({m.idempotency_key for m in harness.messages(lead_id)}) == 5
    assert harness.stages(lead_id) == ["contacted", "ghosting", "lost"]
    assert harness.timeline_kinds(lead_id).count("repeat_intake") == 12


async def test_a_reply_before_the_first_step_means_the_sequence_never_starts(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=5))
    status = await handle.query(LeadWorkflow.status)
    assert status.next_action == "send the next SMS (step 1 of 4)"

    await handle.signal(
        LeadWorkflow.message_received, ReplyReceived(message_id="msg_early", channel=Channel.SMS)
    )
    await harness.env.sleep(timedelta(days=12))

    assert len(harness.messages(lead_id)) == 1
    with pytest.raises(RPCError):
        await harness.env.client.get_workflow_handle(f"{lead_id}/nudge-1").describe()


async def test_an_opt_out_everywhere_stops_the_sequence_and_ends_the_lead(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=16))
    assert len(await bodies(harness, lead_id, 2)) == 2
    nudge = harness.env.client.get_workflow_handle(f"{lead_id}/nudge-1", result_type=NudgeResult)

    await handle.signal(
        LeadWorkflow.consent_changed,
        ConsentChanged(channel=Channel.SMS, granted=False, opted_out_everywhere=True),
    )
    result = await handle.result()
    await harness.env.sleep(timedelta(days=12))

    assert result.stage == Stage.OPTED_OUT
    assert harness.stages(lead_id) == ["contacted", "opted_out"]
    assert (await nudge.result()).stopped == "opt-out"
    assert len(harness.messages(lead_id)) == 2


async def test_an_opt_out_of_one_channel_leaves_the_lead_running(harness: Harness) -> None:
    put(harness, *TWO_WEEKS)
    _, handle = await harness.start(name="Ada", phone="+447911123456", consent={"sms": True})
    await harness.env.sleep(timedelta(minutes=16))

    await handle.signal(
        LeadWorkflow.consent_changed,
        ConsentChanged(channel=Channel.EMAIL, granted=False, opted_out_everywhere=False),
    )
    await harness.env.sleep(timedelta(hours=1))

    assert (await handle.query(LeadWorkflow.status)).stage == Stage.CONTACTED


async def test_a_long_history_before_the_sequence_starts_continues_as_new_and_starts_it(
    harness: Harness,
) -> None:
    put(harness, *TWO_WEEKS)
    lead_id, handle = await harness.start(
        history_limit=60, name="Ada", phone="+447911123456", consent={"sms": True}
    )
    await harness.env.sleep(timedelta(minutes=1))
    first_run = (await handle.describe()).run_id
    latest = harness.env.client.get_workflow_handle(handle.id, result_type=LeadResult)

    # Repeat submissions grow the history past the limit while the sequence, whose first
    # step is 15 minutes out, has not started yet.
    for _ in range(12):
        await latest.signal(
            LeadWorkflow.intake_received, IntakeReceived(receipt_id=harness.receipt(name="Ada"))
        )
        await harness.env.sleep(timedelta(seconds=30))
    await harness.env.sleep(timedelta(hours=1))
    assert (await latest.describe()).run_id != first_run

    result = await handle.result()

    assert result.stage == Stage.LOST
    sent = await bodies(harness, lead_id, 5)
    assert sent[1:] == ["Step 1 for Ada", "Step 2 from Shine Cleaning", "Step 3", "Step 4"]
    assert len({m.idempotency_key for m in harness.messages(lead_id)}) == 5
    assert harness.timeline_kinds(lead_id).count("repeat_intake") == 12
