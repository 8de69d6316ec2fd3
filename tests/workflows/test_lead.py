"""Lead workflow on the time-skipping server, with the real activities on a real database."""

from __future__ import annotations

import json
from datetime import timedelta

from models.values import Channel, MessageStatus, ProviderMode, Stage, TimelineKind
from tests.workflows.conftest import Harness
from workflows.lead import IntakeReceived, LeadWorkflow


async def test_sms_first_touch_then_ghosting_then_lost(harness: Harness) -> None:
    lead_id, handle = await harness.start(
        name="Ada Lovelace", phone="+447911123456", consent={"sms": True}, source="website_form"
    )

    result = await handle.result()

    assert result.stage == Stage.LOST
    assert harness.stages(lead_id) == ["contacted", "ghosting", "lost"]
    [message] = harness.first_touches(lead_id)
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

    [message] = harness.first_touches(lead_id)
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
    # A browsing lead: the nurture sequence's first email is a day after the first touch.
    assert status.next_action == "send the next email (step 1 of 2)"
    assert status.next_action_at is not None
    assert status.attempts_used == 1
    assert status.waiting_reason is not None
    assert "next email at " in status.waiting_reason
    assert "Europe/London (step 1 of 2)" in status.waiting_reason
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
    assert len(harness.first_touches(lead_id)) == 1


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
    [message] = harness.first_touches(lead_id)
    assert message.status == MessageStatus.FAILED
    assert "touch_skipped" in harness.timeline_kinds(lead_id)


async def test_the_first_touch_records_contacted_with_the_send(harness: Harness) -> None:
    """One write fewer per lead: the send's transaction moves the lead to contacted, so the
    run runs no ``record_stage`` of its own until the lead goes quiet."""
    lead_id, handle = await harness.start(phone="+447911123456", consent={"sms": True})
    await handle.result()

    history = await handle.fetch_history()
    local = []
    for event in history.events:
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            [payload] = event.marker_recorded_event_attributes.details["data"].payloads
            local.append(json.loads(payload.data)["activity_type"])
    assert local == ["record_lead", "record_stage", "record_stage"]  # ghosting, lost
    assert harness.stages(lead_id) == ["contacted", "ghosting", "lost"]
