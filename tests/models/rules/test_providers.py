"""A provider's figures from known visits, and the flags raised when a period is worse than
their usual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.rules.providers import Performance, Visit, flags, performance

NOW = datetime(2027, 3, 20, 18, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


def visit(
    name: str,
    day: int,
    *,
    status: str = "completed",
    late_by: timedelta | None = timedelta(0),
    rating: int | None = None,
    complained: bool = False,
) -> Visit:
    """A 09:00 visit on ``day``, arrived ``late_by`` after the start (``None``: no arrival)."""
    starts = at(day)
    return Visit(
        booking_id=name,
        starts_at=starts,
        status=status,
        arrived_at=None if late_by is None else starts + late_by,
        rating=rating,
        complained=complained,
    )


def test_every_figure_from_known_visits() -> None:
    visits = [
        visit("on time", 10, late_by=timedelta(minutes=5), rating=5),
        visit("late", 11, late_by=timedelta(minutes=25), rating=2, complained=True),
        visit("early", 12, late_by=timedelta(minutes=-10)),
        visit("missed", 13, status="no_show", late_by=None),
        visit("no arrival time", 14, late_by=None, rating=4),
        visit("cancelled", 15, status="cancelled", late_by=None),
        visit("tomorrow", 21, status="confirmed", late_by=None),
    ]

    figures = performance(visits, grace=GRACE, now=NOW)

    assert figures == Performance(
        # Due: the five before now that were not cancelled.
        visits=5,
        # Came to four of them (an arrival, or completed without one).
        attended_rate=0.8,
        # Of the three with an arrival time, two within 10 minutes of the start.
        on_time_rate=0.6667,
        # 5 min, 25 min and early (0): 10 minutes on average.
        average_lateness_s=600.0,
        average_rating=3.67,
        ratings=3,
        # One complaint over the four attended.
        complaint_rate=0.25,
    )


def test_no_visits_have_no_rates() -> None:
    assert performance([], grace=GRACE, now=NOW) == Performance(
        visits=0,
        attended_rate=None,
        on_time_rate=None,
        average_lateness_s=None,
        average_rating=None,
        ratings=0,
        complaint_rate=None,
    )


def history(count: int, *, late: int = 0, first_day: int = 1) -> list[Visit]:
    """``count`` past visits, the first ``late`` of them 30 minutes late."""
    return [
        visit(
            f"h{first_day}-{i}",
            first_day + i % 9,
            late_by=timedelta(minutes=30 if i < late else 0),
        )
        for i in range(count)
    ]


def week(late: int, of: int = 8) -> list[Visit]:
    return [
        visit(f"w{i}", 16 + i % 4, late_by=timedelta(minutes=40 if i < late else 2))
        for i in range(of)
    ]


def test_a_provider_whose_on_time_rate_drops_is_flagged_with_the_late_visits() -> None:
    period = week(late=4)

    [flag] = flags(period, history=history(20), org=history(100, late=5), grace=GRACE, now=NOW)

    assert flag.kind == "late"
    assert flag.booking_ids == ("w0", "w1", "w2", "w3")
    assert flag.summary == "Late to 4 of 8 visits (50%; usually 2%)"
    assert flag.p_value < 0.001


@pytest.mark.parametrize(
    ("late", "usual_late", "org_late"),
    [
        (2, 0, 5),  # two late arrivals are not enough to say anything
        (4, 10, 5),  # this provider is often late: four of eight is their usual
        (4, 0, 50),  # a new provider in an org where half the arrivals are late
    ],
)
def test_a_week_like_the_usual_is_not_flagged(late: int, usual_late: int, org_late: int) -> None:
    usual = history(20, late=usual_late) if usual_late else []
    found = flags(week(late), history=usual, org=history(100, late=org_late), grace=GRACE, now=NOW)

    assert found == []


def test_missed_visits_low_ratings_and_complaints_are_flagged_too() -> None:
    period = [
        visit("m1", 16, status="no_show", late_by=None),
        visit("m2", 16, status="no_show", late_by=None),
        visit("m3", 17, status="no_show", late_by=None),
        visit("r1", 17, rating=1, complained=True),
        visit("r2", 18, rating=2, complained=True),
        visit("r3", 18, rating=1, complained=True),
        visit("ok", 19, rating=5),
    ]
    usual = [visit(f"u{i}", 1 + i % 9, rating=5) for i in range(30)]

    found = flags(period, history=usual, org=usual, grace=GRACE, now=NOW)

    assert [(flag.kind, flag.booking_ids) for flag in found] == [
        ("no_show", ("m1", "m2", "m3")),
        ("low_rating", ("r1", "r2", "r3")),
        ("complaint", ("r1", "r2", "r3")),
    ]
    assert found[1].summary == "Rated 2 or less on 3 of 4 rated visits (75%; usually 2%)"


def test_visits_still_ahead_or_cancelled_count_for_nothing() -> None:
    ahead = [visit(f"a{i}", 25, status="confirmed", late_by=None) for i in range(5)]
    cancelled = [visit(f"c{i}", 16, status="cancelled", late_by=None) for i in range(5)]

    assert flags(ahead + cancelled, history=[], org=[], grace=GRACE, now=NOW) == []
    assert performance(ahead + cancelled, grace=GRACE, now=NOW).visits == 0
