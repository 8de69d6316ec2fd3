"""Quiet hours on the time-skipping server: a lead at night is texted in the morning, local."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.database import session_scope
from models.services.orgs import patch_org_settings
from tests.workflows.conftest import Harness
from tests.workflows.test_nudge import next_spring_forward, sleep_until
from workflows.lead import LeadWorkflow

LONDON = ZoneInfo("Europe/London")


def local(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON)


async def test_a_lead_at_half_past_ten_at_night_is_texted_at_eight_across_a_dst_change(
    harness: Harness,
) -> None:
    with session_scope(harness.engine) as session:
        patch_org_settings(
            session, org_id=harness.org_id, changes={"quiet_hours": {"sms": ["08:00", "21:00"]}}
        )
    sunday = next_spring_forward(LONDON, await harness.env.get_current_time())
    saturday = sunday - timedelta(days=1)
    await sleep_until(harness, local(saturday, 22, 30))

    lead_id, handle = await harness.start(
        name="Ada", phone="+447911123456", consent={"sms": True}, timezone="Europe/London"
    )
    await harness.env.sleep(timedelta(minutes=5))
    status = await handle.query(LeadWorkflow.status)
    assert status.waiting_reason is not None
    assert "held back: quiet hours" in status.waiting_reason
    assert "08:00 Europe/London" in status.waiting_reason
    assert "touch_deferred" in harness.timeline_kinds(lead_id)

    await sleep_until(harness, local(sunday, 7, 59))  # 06:59 UTC: BST began at 01:00
    assert harness.messages(lead_id) == []
    await sleep_until(harness, local(sunday, 8, 1))
    for _ in range(100):
        if harness.messages(lead_id):
            break
        await harness.env.sleep(timedelta(seconds=1))
    [touch] = harness.messages(lead_id)
    assert touch.channel == "sms"
    assert (await handle.query(LeadWorkflow.status)).stage == "contacted"
