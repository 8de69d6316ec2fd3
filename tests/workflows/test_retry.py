"""RetrySend on the time-skipping server: a failed touch retried at night waits for the
morning, goes once, and a later retry of it sends nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.database import session_scope
from models.services.orgs import patch_org_settings
from tests.channels.test_retry_sends import failed_message
from tests.workflows.conftest import Harness
from tests.workflows.test_nudge import sleep_until
from workflows.retry import (
    RetrySendInput,
    RetrySendResult,
    RetrySendWorkflow,
    retry_send_workflow_id,
)

LONDON = ZoneInfo("Europe/London")


def next_local(after: datetime, hour: int, minute: int) -> datetime:
    """The first ``hour:minute`` in London after ``after``."""
    day = after.astimezone(LONDON).date()
    while (moment := datetime.combine(day, time(hour, minute), LONDON)) <= after:
        day += timedelta(days=1)
    return moment


async def test_a_retry_at_night_waits_for_the_window_and_goes_once(harness: Harness) -> None:
    lead_id, _ = await harness.start(
        name="Ada", phone="+447911123456", consent={"sms": True}, timezone="Europe/London"
    )
    for _ in range(100):
        if harness.first_touches(lead_id):
            break
        await harness.env.sleep(timedelta(seconds=1))
    message_id = failed_message(
        harness.engine,
        lead_id,
        body=f"Hi Ada, still interested? ({uuid.uuid4().hex[:6]})",
        error="down: Twilio answered 503 (no attempt left before the send's deadline)",
        attempted=False,
    )
    with session_scope(harness.engine) as session:
        patch_org_settings(
            session, org_id=harness.org_id, changes={"quiet_hours": {"sms": ["08:00", "21:00"]}}
        )
    night = next_local(await harness.env.get_current_time(), 22, 30)
    await sleep_until(harness, night)

    handle = await harness.env.client.start_workflow(
        RetrySendWorkflow.run,
        RetrySendInput(org_id=harness.org_id, message_id=message_id),
        id=retry_send_workflow_id(message_id),
        task_queue=harness.task_queue,
    )
    await sleep_until(harness, next_local(night, 7, 59))
    [held] = [m for m in harness.messages(lead_id) if m.id == message_id]
    assert held.status == "failed"  # not reopened while it waits for the window

    result = await handle.result()
    [sent] = [m for m in harness.messages(lead_id) if m.id == message_id]
    assert result == RetrySendResult(status="simulated")
    assert sent.status == "simulated" and sent.error is None
    assert await harness.env.get_current_time() >= next_local(night, 8, 0)

    # The same message retried again (a stale page) finds it sent: nothing goes twice.
    again: RetrySendResult = await harness.env.client.execute_workflow(
        RetrySendWorkflow.run,
        RetrySendInput(org_id=harness.org_id, message_id=message_id),
        id=retry_send_workflow_id(message_id),
        task_queue=harness.task_queue,
    )
    [still] = [m for m in harness.messages(lead_id) if m.id == message_id]
    assert again.status == "simulated"
    assert still.sent_at == sent.sent_at
