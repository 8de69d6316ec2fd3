"""The Appointment workflow with time skipping: a booking's confirmation and reminders, moves
(one across a worker restart), a cancellation, the quiet hours, the customer's C and rating,
and a no-show in the provider's figures. Each send is a real row through the real send path
(dry run), and the booking's row is written by the services the API calls."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.database import session_scope
from models.reads.providers import provider_performance
from models.services.bookings import (
    book,
    booking_reply,
    cancel_booking,
    move_booking,
    record_visit_event,
)
from models.services.inbound import record_inbound_message
from models.services.orgs import patch_org_settings
from models.services.providers import create_provider
from models.store.orgs import get_org
from models.tables import Booking, Escalation, Lead, Message, TimelineEvent
from models.values import Channel, EscalationReason, VisitEvent
from tests.workflows.conftest import Harness
from tests.workflows.test_nudge import sleep_until
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.appointment import (
    AppointmentInput,
    AppointmentResult,
    AppointmentWorkflow,
    BookingNews,
)

LONDON = ZoneInfo("Europe/London")
PHONE = "+447911123456"
DAY, TWO_HOURS = 86400, 7200


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests stop and start workers: a server of their own."""
    return own_time_env


@dataclasses.dataclass
class Visits:
    harness: Harness
    executor: ThreadPoolExecutor
    task_queue: str

    def worker(self, *, cached: bool = True) -> Worker:
        return build_worker(
            self.harness.env.client,
            engine=self.harness.engine,
            adapters=self.harness.adapters,
            task_queue=self.task_queue,
            executor=self.executor,
            max_cached_workflows=1000 if cached else 0,
        )

    async def now(self) -> datetime:
        return await self.harness.env.get_current_time()

    async def lead(self) -> str:
        """A lead for Ada (SMS allowed), once its workflow has recorded it."""
        lead_id, _ = await self.harness.start(
            name="Ada Lovelace",
            phone=PHONE,
            consent={"sms": True},
            timezone="Europe/London",
            message="Need a deep clean",
        )
        for _ in range(60):
            with session_scope(self.harness.engine) as session:
                if session.get(Lead, lead_id) is not None:
                    return lead_id
            await asyncio.sleep(0.1)
        raise AssertionError("the lead was never recorded")

    async def book(
        self, lead_id: str, starts_at: datetime, *, provider_id: str | None = None
    ) -> tuple[str, WorkflowHandle[AppointmentWorkflow, AppointmentResult]]:
        with session_scope(self.harness.engine) as session:
            made = book(
                session,
                org_id=self.harness.org_id,
                lead_id=lead_id,
                event_id=uuid.uuid4().hex,
                starts_at=starts_at,
                ends_at=None,
                provider_id=provider_id,
                service="deep clean",
                address=None,
                note=None,
            )
        handle = await self.harness.env.client.start_workflow(
            AppointmentWorkflow.run,
            AppointmentInput(
                org_id=self.harness.org_id, booking_id=made.booking_id, lead_id=lead_id
            ),
            id=made.workflow_id,
            task_queue=self.task_queue,
        )
        return made.booking_id, handle

    async def wake(self, booking_id: str, what: str) -> None:
        with session_scope(self.harness.engine) as session:
            row = session.get(Booking, booking_id)
            assert row is not None
            workflow_id, version = row.workflow_id, row.version
        await self.harness.env.client.get_workflow_handle(workflow_id).signal(
            AppointmentWorkflow.booking_changed, BookingNews(what=what, version=version)
        )

    async def move(self, booking_id: str, starts_at: datetime) -> None:
        """What ``PATCH /v1/bookings/{id}`` does."""
        now = await self.now()
        with session_scope(self.harness.engine) as session:
            move_booking(
                session,
                org_id=self.harness.org_id,
                booking_id=booking_id,
                starts_at=starts_at,
                ends_at=None,
                provider_id=None,
                now=now,
            )
        await self.wake(booking_id, "moved")

    async def event(self, booking_id: str, kind: VisitEvent, at: datetime | None = None) -> None:
        """What ``POST /v1/bookings/{id}/events`` does."""
        now = await self.now()
        with session_scope(self.harness.engine) as session:
            record_visit_event(
                session,
                org_id=self.harness.org_id,
                booking_id=booking_id,
                kind=kind,
                at=at,
                now=now,
            )
        await self.wake(booking_id, kind.value)

    async def reply(self, booking_id: str, body: str) -> None:
        """What the Twilio webhook does with the customer's text."""
        now = await self.now()
        with session_scope(self.harness.engine) as session:
            inbound = record_inbound_message(
                session,
                org_id=self.harness.org_id,
                channel=Channel.SMS,
                from_phone=PHONE,
                to_address=None,
                body=body,
                provider_message_id=f"SM{uuid.uuid4().hex}",
                consent=None,
                source="twilio",
            )
            org = get_org(session, org_id=self.harness.org_id)
            heard = booking_reply(
                session, org=org, contact_id=inbound.contact_id, body=body, now=now
            )
            assert heard is not None and heard.booking_id == booking_id
        await self.wake(booking_id, heard.kind)

    def sent(self, workflow_id: str) -> list[tuple[str, datetime]]:
        """The booking's messages: (step, when the gate let it through, to the second: the
        send is scheduled a few ms after its timer fires), in that order."""
        with session_scope(self.harness.engine) as session:
            rows = session.exec(
                select(Message)
                .where(col(Message.idempotency_key).startswith(f"{workflow_id}/"))
                .order_by(col(Message.touched_at))
            ).all()
        return [
            (
                str(row.idempotency_key).removeprefix(f"{workflow_id}/"),
                row.touched_at.replace(microsecond=0),
            )
            for row in rows
            if row.touched_at is not None
        ]

    def bodies(self, workflow_id: str) -> dict[str, str]:
        with session_scope(self.harness.engine) as session:
            rows = session.exec(
                select(Message).where(col(Message.idempotency_key).startswith(f"{workflow_id}/"))
            ).all()
        return {str(row.idempotency_key).removeprefix(f"{workflow_id}/"): row.body for row in rows}

    def timeline(self, booking_id: str) -> list[str]:
        with session_scope(self.harness.engine) as session:
            events = session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.booking_id == booking_id)
                .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            )
            return [event.summary for event in events]


@pytest.fixture
async def visits(harness: Harness) -> AsyncIterator[Visits]:
    with session_scope(harness.engine) as session:
        # One touch a day: the lead's first touch uses it up, and no visit message waits.
        patch_org_settings(session, org_id=harness.org_id, changes={"touch_budget": {"per_24h": 1}})
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        yield Visits(
            harness=harness, executor=executor, task_queue=f"visits-{uuid.uuid4().hex[:8]}"
        )


def at_local(day_offset: int, hour: int, now: datetime) -> datetime:
    day = now.astimezone(LONDON).date() + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON)


async def test_a_booking_is_confirmed_at_once_and_reminded_a_day_and_two_hours_before(
    visits: Visits,
) -> None:
    async with visits.worker():
        lead_id = await visits.lead()
        booked_at = await visits.now()
        starts_at = at_local(3, 14, booked_at)
        booking_id, handle = await visits.book(lead_id, starts_at)
        await visits.harness.env.sleep(timedelta(minutes=1))
        confirmation = visits.sent(handle.id)
        await sleep_until(visits.harness, starts_at + timedelta(minutes=30))
        await visits.event(booking_id, VisitEvent.NO_SHOW)
        result = await handle.result()

    assert [step for step, _ in confirmation] == ["confirmation"]
    assert confirmation[0][1] - booked_at < timedelta(minutes=1)
    assert visits.sent(handle.id) == [
        confirmation[0],
        (f"reminder-v1-{DAY}", starts_at - timedelta(days=1)),
        (f"reminder-v1-{TWO_HOURS}", starts_at - timedelta(hours=2)),
    ]
    bodies = visits.bodies(handle.id)
    assert "Ada" in bodies["confirmation"] and "deep clean" in bodies["confirmation"]
    assert "Reply C to confirm or R to reschedule" in bodies["confirmation"]
    assert "CANCEL" not in " ".join(bodies.values()).upper()
    assert result.outcome == "no_show"
    # Sent by the system, not the AI: the touch budget (1 a day, used by the first touch)
    # held back none of them.
    with session_scope(visits.harness.engine) as session:
        senders = {
            row.sender
            for row in session.exec(
                select(Message).where(col(Message.idempotency_key).startswith(f"{handle.id}/"))
            )
        }
    assert senders == {"system"}


async def test_moved_twice_once_across_a_restart_it_reminds_once_per_offset_before_the_final_time(
    visits: Visits,
) -> None:
    harness = visits.harness
    async with visits.worker(cached=False):
        lead_id = await visits.lead()
        now = await visits.now()
        first = at_local(3, 14, now)
        booking_id, handle = await visits.book(lead_id, first)
        await harness.env.sleep(timedelta(hours=1))
        second = at_local(5, 11, now)
        await visits.move(booking_id, second)
        await harness.env.sleep(timedelta(hours=1))
    # No worker: the visit moves again; the booking's row and the signal wait for one.
    final = at_local(4, 16, now)
    await visits.move(booking_id, final)
    async with visits.worker(cached=False):
        await sleep_until(harness, final + timedelta(minutes=5))
        await visits.event(booking_id, VisitEvent.NO_SHOW)
        await handle.result()

    steps = [step for step, _ in visits.sent(handle.id)]
    assert steps == [
        "confirmation",
        "moved-v2",
        "moved-v3",
        f"reminder-v3-{DAY}",
        f"reminder-v3-{TWO_HOURS}",
    ]
    at = dict(visits.sent(handle.id))
    assert at[f"reminder-v3-{DAY}"] == final - timedelta(days=1)
    assert at[f"reminder-v3-{TWO_HOURS}"] == final - timedelta(hours=2)
    bodies = visits.bodies(handle.id)
    assert final.astimezone(LONDON).strftime("%a %d %b at %H:%M") in bodies["moved-v3"]
    assert second.astimezone(LONDON).strftime("%a %d %b at %H:%M") in bodies["moved-v2"]
    timeline = visits.timeline(booking_id)
    assert sum(line.startswith("Moved from") for line in timeline) == 2
    assert sum(line.startswith("Reminders:") for line in timeline) == 3


async def test_a_move_the_workflow_has_not_heard_of_yet_stops_the_old_reminder(
    visits: Visits,
) -> None:
    """The row moves and the signal is lost: when the old time's first reminder falls due, the
    workflow reads the row first, sends nothing for the old time and plans the new one's."""
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        now = await visits.now()
        first = at_local(2, 14, now)
        booking_id, handle = await visits.book(lead_id, first)
        await harness.env.sleep(timedelta(minutes=5))
        final = at_local(4, 10, now)
        with session_scope(harness.engine) as session:
            move_booking(
                session,
                org_id=harness.org_id,
                booking_id=booking_id,
                starts_at=final,
                ends_at=None,
                provider_id=None,
                now=await visits.now(),
            )
        await sleep_until(harness, final + timedelta(minutes=5))
        await visits.event(booking_id, VisitEvent.NO_SHOW)
        await handle.result()

    steps = [step for step, _ in visits.sent(handle.id)]
    assert not [step for step in steps if step.startswith("reminder-v1")]
    assert steps == [
        "confirmation",
        "moved-v2",
        f"reminder-v2-{DAY}",
        f"reminder-v2-{TWO_HOURS}",
    ]
    timeline = visits.timeline(booking_id)
    assert sum(line.startswith("Reminders:") for line in timeline) == 2


async def test_a_cancelled_booking_gets_no_reminder(visits: Visits) -> None:
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        starts_at = at_local(3, 14, await visits.now())
        booking_id, handle = await visits.book(lead_id, starts_at)
        await harness.env.sleep(timedelta(hours=1))
        with session_scope(harness.engine) as session:
            cancel_booking(
                session,
                org_id=harness.org_id,
                booking_id=booking_id,
                reason="customer called",
                now=await visits.now(),
            )
        await visits.wake(booking_id, "cancelled")
        result = await handle.result()
        await harness.env.sleep(timedelta(days=4))

    assert result.outcome == "cancelled"
    assert [step for step, _ in visits.sent(handle.id)] == ["confirmation", "cancelled"]
    assert "cancelled" in visits.bodies(handle.id)["cancelled"]


async def test_a_reminder_due_in_quiet_hours_goes_when_they_end_before_the_visit(
    visits: Visits,
) -> None:
    harness = visits.harness
    with session_scope(harness.engine) as session:
        patch_org_settings(
            session,
            org_id=harness.org_id,
            changes={
                "quiet_hours": {"sms": ["08:00", "21:00"]},
                "appointments": {"reminders": ["PT4H", "PT30M"]},
            },
        )
    # Book at 12:00 for 10:00 two days on: the 4 h reminder falls at 06:00.
    noon = at_local(1, 12, await visits.now())
    await sleep_until(harness, noon)
    async with visits.worker():
        lead_id = await visits.lead()
        starts_at = at_local(2, 10, noon)
        booking_id, handle = await visits.book(lead_id, starts_at)
        await sleep_until(harness, starts_at + timedelta(minutes=5))
        await visits.event(booking_id, VisitEvent.NO_SHOW)
        await handle.result()

    at = dict(visits.sent(handle.id))
    assert at[f"reminder-v1-{4 * 3600}"] == at_local(2, 8, noon)
    assert at["reminder-v1-1800"] == starts_at - timedelta(minutes=30)
    assert any("moved out of quiet hours" in line for line in visits.timeline(booking_id))


async def test_c_confirms_and_is_thanked(visits: Visits) -> None:
    async with visits.worker():
        lead_id = await visits.lead()
        starts_at = at_local(3, 14, await visits.now())
        booking_id, handle = await visits.book(lead_id, starts_at)
        await visits.harness.env.sleep(timedelta(minutes=10))
        await visits.reply(booking_id, "c")
        await visits.harness.env.sleep(timedelta(minutes=10))
        progress = await handle.query(AppointmentWorkflow.progress)
        await sleep_until(visits.harness, starts_at - timedelta(hours=23))
        await visits.event(booking_id, VisitEvent.NO_SHOW)
        await handle.result()

    with session_scope(visits.harness.engine) as session:
        row = session.get(Booking, booking_id)
        assert row is not None and row.confirmed_at is not None
    assert progress.status == "confirmed"
    assert [step for step, _ in visits.sent(handle.id)][:2] == ["confirmation", "confirmed-v1"]
    assert "confirmed" in visits.bodies(handle.id)["confirmed-v1"]
    # Once confirmed, the reminders no longer ask for a C.
    assert "Reply C" not in visits.bodies(handle.id)[f"reminder-v1-{DAY}"]


async def test_a_two_star_rating_after_the_visit_opens_an_escalation(visits: Visits) -> None:
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        starts_at = at_local(1, 14, await visits.now())
        booking_id, handle = await visits.book(lead_id, starts_at)
        await sleep_until(harness, starts_at + timedelta(hours=2))
        await visits.event(booking_id, VisitEvent.COMPLETED)
        await harness.env.sleep(timedelta(hours=1, minutes=5))
        asked = [step for step, _ in visits.sent(handle.id)]
        await visits.reply(booking_id, "2")
        result = await handle.result()

    assert "rating-request" in asked
    assert (result.outcome, result.rating) == ("rated", 2)
    assert visits.sent(handle.id)[-1][0] == "rated"
    with session_scope(harness.engine) as session:
        escalations = session.exec(
            select(Escalation).where(Escalation.reason == EscalationReason.LOW_RATING)
        ).all()
        row = session.get(Booking, booking_id)
    assert len(escalations) == 1 and escalations[0].lead_id == lead_id
    assert row is not None and row.rating == 2


async def test_a_no_show_counts_in_the_providers_figures(visits: Visits) -> None:
    harness = visits.harness
    with session_scope(harness.engine) as session:
        provider = create_provider(
            session, org_id=harness.org_id, name="Maria", phone=None, email=None
        )
    async with visits.worker():
        lead_id = await visits.lead()
        now = await visits.now()
        on_time = at_local(1, 10, now)
        missed = at_local(2, 10, now)
        kept, first = await visits.book(lead_id, on_time, provider_id=provider.id)
        lost, second = await visits.book(lead_id, missed, provider_id=provider.id)
        await sleep_until(harness, on_time + timedelta(minutes=5))
        await visits.event(kept, VisitEvent.ARRIVED, at=on_time + timedelta(minutes=3))
        await visits.event(kept, VisitEvent.COMPLETED)
        await sleep_until(harness, missed + timedelta(hours=1))
        await visits.event(lost, VisitEvent.NO_SHOW)
        assert (await second.result()).outcome == "no_show"
        await first.terminate("test finished")
        figures_at = await visits.now()

    with session_scope(harness.engine) as session:
        figures = provider_performance(
            session,
            org_id=harness.org_id,
            provider_id=provider.id,
            start=now,
            end=figures_at,
            grace=timedelta(minutes=10),
            now=figures_at,
        )
    assert (figures.visits, figures.attended_rate, figures.on_time_rate) == (2, 0.5, 1.0)


async def test_a_visit_booked_and_cancelled_overnight_sends_nothing(visits: Visits) -> None:
    """The confirmation waits for the quiet hours to end; cancelled before then, the customer
    hears nothing at all (no cancellation of a booking they were never told of)."""
    harness = visits.harness
    with session_scope(harness.engine) as session:
        patch_org_settings(
            session, org_id=harness.org_id, changes={"quiet_hours": {"sms": ["08:00", "21:00"]}}
        )
    evening = at_local(1, 22, await visits.now())
    await sleep_until(harness, evening)
    async with visits.worker():
        lead_id = await visits.lead()
        booking_id, handle = await visits.book(lead_id, at_local(3, 14, evening))
        await harness.env.sleep(timedelta(hours=1))
        with session_scope(harness.engine) as session:
            cancel_booking(
                session,
                org_id=harness.org_id,
                booking_id=booking_id,
                reason=None,
                now=await visits.now(),
            )
        await visits.wake(booking_id, "cancelled")
        result = await handle.result()

    assert (result.outcome, result.sent) == ("cancelled", [])
    assert visits.sent(handle.id) == []
    timeline = visits.timeline(booking_id)
    assert [line for line in timeline if "waits" in line] == [
        f"The confirmation waits: quiet hours: until {at_local(1, 8, evening):%a %d %b %H:%M} "
        "Europe/London"
    ]


async def test_an_unanswered_rating_request_ends_the_visit_completed(visits: Visits) -> None:
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        starts_at = at_local(1, 14, await visits.now())
        booking_id, handle = await visits.book(lead_id, starts_at)
        await sleep_until(harness, starts_at + timedelta(hours=2))
        await visits.event(booking_id, VisitEvent.COMPLETED)
        result = await handle.result()

    assert (result.outcome, result.rating) == ("completed", None)
    assert result.sent[-1] == "rating-request"
