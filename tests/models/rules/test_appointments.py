"""An appointment's reminders around the quiet hours, and what a customer's reply means."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.rules.appointments import (
    AppointmentReply,
    PlannedReminder,
    appointment_reply,
    plan_reminders,
    rating_of,
)
from models.rules.keywords import classify

LONDON = ZoneInfo("Europe/London")
#: 08:00-21:00 local, as the org's SMS quiet hours default.
WINDOW = (time(8), time(21))
DAY, TWO_HOURS = timedelta(days=1), timedelta(hours=2)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in London in March 2027 (GMT, before the clocks change on the 28th)."""
    return datetime(2027, 3, day, hour, minute, tzinfo=LONDON)


def plan(starts_at: datetime, now: datetime, *offsets: timedelta) -> list[PlannedReminder]:
    return plan_reminders(
        starts_at=starts_at,
        offsets=list(offsets) or [DAY, TWO_HOURS],
        now=now,
        zone=LONDON,
        window=WINDOW,
    )


def test_a_visit_three_days_out_is_reminded_a_day_and_two_hours_before() -> None:
    visit = local(12, 14)

    planned = plan(visit, local(9, 10))

    assert [(r.offset, r.at, r.note) for r in planned] == [
        (DAY, local(11, 14), ""),
        (TWO_HOURS, local(12, 12), ""),
    ]


def test_a_reminder_due_at_six_goes_at_eight_when_the_visit_is_at_ten() -> None:
    visit = local(12, 10)

    [reminder] = plan(visit, local(9, 10), timedelta(hours=4))

    assert reminder.at == local(12, 8)
    assert reminder.note == "moved out of quiet hours to Fri 12 Mar 08:00"


def test_a_reminder_the_quiet_hours_would_push_past_the_visit_is_skipped_and_noted() -> None:
    visit = local(12, 8, 30)  # two hours before is 06:30: it waits for 08:00
    early = local(12, 8)  # two hours before is 06:00; the window opens as the visit starts

    moved = plan(visit, local(9, 10), TWO_HOURS)
    skipped = plan(early, local(9, 10), TWO_HOURS)

    assert [r.at for r in moved] == [local(12, 8)]
    assert skipped == [
        PlannedReminder(
            offset=TWO_HOURS,
            at=None,
            note="not sent: quiet hours until after the visit (Fri 12 Mar 08:00)",
        )
    ]


def test_a_late_booking_skips_the_reminders_already_due() -> None:
    visit = local(12, 14)

    planned = plan(visit, local(12, 9))

    assert [(r.at, r.note) for r in planned] == [
        (None, "not sent: booked less than 1 day before the visit"),
        (local(12, 12), ""),
    ]


def test_two_reminders_moved_to_the_same_opening_go_once() -> None:
    visit = local(12, 9)  # 10 and 12 hours before are 23:00 and 21:00: both wait for 08:00

    planned = plan(visit, local(9, 10), timedelta(hours=12), timedelta(hours=10))

    assert [(r.offset, r.at) for r in planned] == [
        (timedelta(hours=12), None),
        (timedelta(hours=10), local(12, 8)),
    ]
    assert planned[0].note == "not sent: the quiet hours put it with the next reminder"


def test_without_quiet_hours_every_reminder_goes_on_time_in_utc() -> None:
    visit = datetime(2027, 3, 12, 3, 0, tzinfo=UTC)

    planned = plan_reminders(
        starts_at=visit, offsets=[TWO_HOURS], now=visit - DAY, zone=LONDON, window=None
    )

    assert [r.at for r in planned] == [visit - TWO_HOURS]


def test_a_day_is_24_hours_and_the_window_is_local_across_the_change_to_summer_time() -> None:
    # 28 March 2027: London goes from 01:00 GMT to 02:00 BST. A visit at 07:30 BST on the
    # 29th (06:30 UTC) is due a reminder 24 hours before: 07:30 BST on the 28th, in quiet
    # hours, so it goes at 08:00 BST (07:00 UTC), not 08:00 GMT.
    visit = datetime(2027, 3, 29, 6, 30, tzinfo=UTC)

    [reminder] = plan(visit, local(20, 10), DAY)

    assert reminder.at == datetime(2027, 3, 28, 7, tzinfo=UTC)
    assert reminder.note == "moved out of quiet hours to Sun 28 Mar 08:00"


@pytest.mark.parametrize("body", ["C", "c", " Yes ", "YES!", "confirm", "Confirmed."])
def test_c_and_yes_confirm_the_visit(body: str) -> None:
    assert appointment_reply(body) == AppointmentReply.CONFIRM


@pytest.mark.parametrize("body", ["R", "r.", "Reschedule"])
def test_r_asks_to_move_it(body: str) -> None:
    assert appointment_reply(body) == AppointmentReply.RESCHEDULE


@pytest.mark.parametrize("body", ["Can we do Tuesday instead?", "CANCEL", "STOP", "", "no"])
def test_anything_else_is_a_message_and_cancel_or_stop_stays_an_opt_out(body: str) -> None:
    assert appointment_reply(body) is None


def test_the_words_an_appointment_text_asks_for_are_not_opt_outs() -> None:
    for word in ("C", "R", "YES"):
        assert classify(word).consent is not False


@pytest.mark.parametrize(
    ("body", "rating"),
    [
        ("5", 5),
        (" 4 ", 4),
        ("4/5", 4),
        ("3 stars", 3),
        ("1 star!", 1),
        ("★★", 2),
        ("2 out of 5", 2),
    ],
)
def test_a_reply_of_one_to_five_is_a_rating(body: str, rating: int) -> None:
    assert rating_of(body) == rating


@pytest.mark.parametrize("body", ["0", "6", "10", "45", "great, thanks", "5 minutes late", ""])
def test_other_replies_are_not_ratings(body: str) -> None:
    assert rating_of(body) is None
