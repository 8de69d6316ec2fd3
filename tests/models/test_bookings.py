"""Bookings in the data layer, on SQLite and PostgreSQL: a visit's messages are transactional
(consent and quiet hours, never the touch budget, and they use none of it), each is claimed
against the booking as it is now (a moved or cancelled time sends nothing), and a customer's
text means what it says only where it should."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models.database import session_scope
from models.errors import BookingClosed
from models.rules.appointments import AppointmentText
from models.rules.compliance import Deferred
from models.services.bookings import (
    book,
    booking_reply,
    cancel_booking,
    claim_appointment_message,
    move_booking,
    record_visit_event,
)
from models.services.orgs import patch_org_settings
from models.services.outbound import TransactionalClaim
from models.store.calls import touches_since
from models.store.messages import mark_message_attempted
from models.store.orgs import get_org
from models.tables import Booking, Lead, Message
from models.values import VisitEvent
from tests.models.test_takeover import claim_touch, lead_of

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def booked(engine: Engine, *, budget: int = 3, starts_in: timedelta = timedelta(days=3)) -> Booking:
    org_id, lead_id, _ = lead_of(engine, budget=budget)
    with session_scope(engine) as session:
        made = book(
            session,
            org_id=org_id,
            lead_id=lead_id,
            event_id=uuid.uuid4().hex,
            starts_at=NOW + starts_in,
            ends_at=None,
            provider_id=None,
            service="deep clean",
            address=None,
            note=None,
        )
        row = session.get(Booking, made.booking_id)
        assert row is not None
        return row


def claim(
    engine: Engine,
    row: Booking,
    kind: AppointmentText,
    *,
    version: int = 1,
    offset_s: int | None = None,
    now: datetime = NOW,
) -> TransactionalClaim:
    with session_scope(engine) as session:
        return claim_appointment_message(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            kind=kind,
            version=version,
            offset_s=offset_s,
            idempotency_key=f"{row.workflow_id}/{kind.value}-v{version}-{offset_s}",
            now=now,
        )


def messages_of(engine: Engine, row: Booking) -> list[Message]:
    with session_scope(engine) as session:
        return list(
            session.exec(
                select(Message).where(col(Message.idempotency_key).startswith(row.workflow_id))
            )
        )


def test_a_visits_messages_pass_a_spent_touch_budget_and_use_none_of_it(engine: Engine) -> None:
    row = booked(engine, budget=1)
    claim_touch(engine, row.org_id, row.lead_id, now=NOW)  # the AI's one touch today
    with pytest.raises(Deferred):
        claim_touch(engine, row.org_id, row.lead_id, now=NOW + timedelta(minutes=1))

    confirmation = claim(engine, row, AppointmentText.CONFIRMATION)
    reminder = claim(engine, row, AppointmentText.REMINDER, offset_s=86400, now=NOW)

    assert confirmation.claim is not None and reminder.claim is not None
    assert {m.sender for m in messages_of(engine, row)} == {"system"}
    with session_scope(engine) as session:
        used = touches_since(session, contact_id=row.contact_id, since=NOW - timedelta(days=1))
    assert len(used) == 1


def test_a_visits_messages_wait_for_the_quiet_hours_to_end(engine: Engine) -> None:
    row = booked(engine)
    with session_scope(engine) as session:
        patch_org_settings(
            session, org_id=row.org_id, changes={"quiet_hours": {"sms": ["08:00", "21:00"]}}
        )
    late_evening = NOW.replace(hour=22)

    with pytest.raises(Deferred) as held:
        claim(engine, row, AppointmentText.CONFIRMATION, now=late_evening)

    assert held.value.verdict.until == (NOW + timedelta(days=1)).replace(hour=8)
    assert messages_of(engine, row) == []


def test_a_reminder_of_a_moved_or_cancelled_time_is_never_claimed(engine: Engine) -> None:
    row = booked(engine)
    with session_scope(engine) as session:
        move_booking(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            starts_at=NOW + timedelta(days=5),
            ends_at=None,
            provider_id=None,
            now=NOW,
        )

    old = claim(engine, row, AppointmentText.REMINDER, version=1, offset_s=86400)
    current = claim(engine, row, AppointmentText.REMINDER, version=2, offset_s=86400)
    with session_scope(engine) as session:
        cancel_booking(session, org_id=row.org_id, booking_id=row.id, reason=None, now=NOW)
    after_cancel = claim(engine, row, AppointmentText.REMINDER, version=2, offset_s=7200)
    notice = claim(engine, row, AppointmentText.CANCELLED, version=2)

    assert (old.claim, old.skipped) == (None, "the visit has moved since")
    assert current.claim is not None
    assert (after_cancel.claim, after_cancel.skipped) == (None, "the visit is cancelled")
    assert notice.claim is not None
    assert len(messages_of(engine, row)) == 2
    # Claimed before the cancellation but never handed to a provider (a crash, an outage):
    # its retry closes it unsent.
    again = claim(engine, row, AppointmentText.REMINDER, version=2, offset_s=86400)
    assert (again.claim, again.skipped) == (None, "the visit is cancelled")
    with session_scope(engine) as session:
        closed = session.get(Message, current.claim.message.id)
        assert closed is not None and closed.status == "failed"
        assert closed.error == "not sent: the visit is cancelled"


def test_a_reminder_already_handed_to_the_provider_is_reconciled_not_closed(
    engine: Engine,
) -> None:
    row = booked(engine)
    first = claim(engine, row, AppointmentText.REMINDER, offset_s=86400)
    assert first.claim is not None
    with session_scope(engine) as session:
        mark_message_attempted(session, message_id=first.claim.message.id)
        cancel_booking(session, org_id=row.org_id, booking_id=row.id, reason=None, now=NOW)

    again = claim(engine, row, AppointmentText.REMINDER, offset_s=86400)

    # It may have reached the provider: the send reconciles it rather than pretend.
    assert again.claim is not None and again.claim.message.id == first.claim.message.id


def test_a_move_keeps_the_visits_length_and_forgets_the_old_times_news(engine: Engine) -> None:
    row = booked(engine)
    with session_scope(engine) as session:
        move_booking(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            starts_at=row.starts_at,
            ends_at=row.starts_at + timedelta(hours=3),
            provider_id=None,
            now=NOW,
        )
        record_visit_event(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            kind=VisitEvent.ON_MY_WAY,
            at=None,
            now=NOW,
        )
        later = row.starts_at + timedelta(days=2)
        move_booking(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            starts_at=later,
            ends_at=None,
            provider_id=None,
            now=NOW,
        )
        moved = session.get(Booking, row.id)
        assert moved is not None
        assert (moved.ends_at, moved.on_my_way_at, moved.version) == (
            later + timedelta(hours=3),
            None,
            2,
        )
    assert claim(engine, row, AppointmentText.ON_MY_WAY, version=1).skipped == (
        "the visit has moved since"
    )


def test_a_reminder_after_the_visit_has_started_is_skipped(engine: Engine) -> None:
    row = booked(engine, starts_in=timedelta(hours=1))

    late = claim(engine, row, AppointmentText.REMINDER, offset_s=7200, now=NOW + timedelta(hours=2))

    assert late.skipped == "the visit has started"


def test_replies_mean_what_they_say_only_where_they_should(engine: Engine) -> None:
    row = booked(engine)

    def reply(body: str, at: datetime = NOW) -> str | None:
        with session_scope(engine) as session:
            heard = booking_reply(
                session,
                org=get_org(session, org_id=row.org_id),
                contact_id=row.contact_id,
                body=body,
                now=at,
            )
            return heard.kind if heard else None

    # A number before any rating request is an ordinary message; so is a word.
    assert reply("5") is None and reply("Can you come earlier?") is None
    assert reply("Yes") == "confirm"
    assert reply(" r ") == "reschedule"
    with session_scope(engine) as session:
        record_visit_event(
            session,
            org_id=row.org_id,
            booking_id=row.id,
            kind=VisitEvent.COMPLETED,
            at=None,
            now=NOW,
        )
    assert claim(engine, row, AppointmentText.RATING_REQUEST).claim is not None
    assert reply("4 stars", at=NOW + timedelta(days=8)) is None  # past the rating window
    assert reply("4/5", at=NOW + timedelta(hours=2)) == "rating"
    assert reply("3", at=NOW + timedelta(hours=3)) is None  # rated once
    with session_scope(engine) as session:
        done = session.get(Booking, row.id)
        assert done is not None and (done.rating, done.status) == (4, "completed")
        patch_org_settings(
            session, org_id=row.org_id, changes={"appointments": {"confirm_by_reply": False}}
        )
    with session_scope(engine) as session:
        book(
            session,
            org_id=row.org_id,
            lead_id=row.lead_id,
            event_id=uuid.uuid4().hex,
            starts_at=NOW + timedelta(days=9),
            ends_at=None,
            provider_id=None,
            service=None,
            address=None,
            note=None,
        )
    # The org no longer asks for C / R: they are ordinary messages.
    assert reply("C", at=NOW + timedelta(days=1)) is None


def test_the_providers_news_cannot_contradict_itself(engine: Engine) -> None:
    row = booked(engine)

    def news(kind: VisitEvent, at: datetime | None = None) -> bool:
        with session_scope(engine) as session:
            return record_visit_event(
                session, org_id=row.org_id, booking_id=row.id, kind=kind, at=at, now=NOW
            ).changed

    assert news(VisitEvent.ARRIVED, NOW - timedelta(minutes=1)) is True
    assert news(VisitEvent.ARRIVED) is False
    assert news(VisitEvent.COMPLETED) is True
    with pytest.raises(BookingClosed):
        news(VisitEvent.NO_SHOW)
    with pytest.raises(ValueError):
        news(VisitEvent.ON_MY_WAY, NOW + timedelta(hours=1))
    with session_scope(engine) as session:
        lead = session.get(Lead, row.lead_id)
        assert lead is not None
        with pytest.raises(BookingClosed):
            cancel_booking(session, org_id=row.org_id, booking_id=row.id, reason=None, now=NOW)
