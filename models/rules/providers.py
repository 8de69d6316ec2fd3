"""A provider's performance over a period (visits, attended, on time, lateness, ratings,
complaints) and the flags raised when their recent figures fall below their own history or
the org's norm, with the visits that caused it. Pure: the visits come in as arguments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.rules.health import baseline_rate, failures_exceed_baseline

#: A flag is a signal on the owner's page, not a page to a person: a looser test than the
#: health alerts' (alpha 0.001, 5 failures), over the few visits a provider does in a week.
FLAG_ALPHA = 0.01
FLAG_MIN_EVENTS = 3
#: The org's rate counts as this many of the provider's own visits in their baseline, so a
#: new provider is measured against the org and a long-serving one against themselves.
ORG_WEIGHT = 20
#: The lowest baseline rate a flag is tested against: a provider who was never late before
#: isn't flagged for one late arrival.
BASELINE_FLOOR = 0.02
#: A rating at or below this is a low one.
LOW_RATING = 2

SCHEDULED, CONFIRMED, COMPLETED, NO_SHOW, CANCELLED = (
    "scheduled",
    "confirmed",
    "completed",
    "no_show",
    "cancelled",
)


@dataclass(frozen=True, kw_only=True)
class Visit:
    """One booking a provider was given, as the figures need it."""

    booking_id: str
    starts_at: datetime
    #: ``scheduled``, ``confirmed``, ``completed``, ``no_show`` or ``cancelled``.
    status: str
    arrived_at: datetime | None = None
    rating: int | None = None
    #: The customer complained about it (an escalation for the booking).
    complained: bool = False

    def due(self, now: datetime) -> bool:
        """A visit that should have happened by ``now`` (not cancelled, started)."""
        return self.status != CANCELLED and self.starts_at <= now

    @property
    def attended(self) -> bool:
        """The provider came: they arrived, or the visit was completed."""
        return self.arrived_at is not None or self.status == COMPLETED

    def late(self, grace: timedelta) -> bool:
        """They arrived more than ``grace`` after the start."""
        return self.arrived_at is not None and self.arrived_at > self.starts_at + grace


@dataclass(frozen=True, kw_only=True)
class Performance:
    """A provider's figures over their visits that were due; rates are ``None`` without a
    denominator, rounded to 4 decimals."""

    visits: int
    attended_rate: float | None
    on_time_rate: float | None
    average_lateness_s: float | None
    average_rating: float | None
    ratings: int
    complaint_rate: float | None


def performance(visits: Sequence[Visit], *, grace: timedelta, now: datetime) -> Performance:
    """The figures of ``visits`` due by ``now``: attended of due; on time (arrived within
    ``grace`` of the start) and the average lateness (seconds after the start, early counts
    as 0) of those with an arrival time; the ratings; complaints of attended."""
    due = [visit for visit in visits if visit.due(now)]
    attended = [visit for visit in due if visit.attended]
    arrived = [visit for visit in due if visit.arrived_at is not None]
    rated = [visit.rating for visit in due if visit.rating is not None]
    lateness = [
        max(0.0, (visit.arrived_at - visit.starts_at).total_seconds())
        for visit in arrived
        if visit.arrived_at is not None
    ]
    return Performance(
        visits=len(due),
        attended_rate=_rate(len(attended), len(due)),
        on_time_rate=_rate(sum(not visit.late(grace) for visit in arrived), len(arrived)),
        average_lateness_s=round(sum(lateness) / len(lateness), 1) if lateness else None,
        average_rating=round(sum(rated) / len(rated), 2) if rated else None,
        ratings=len(rated),
        complaint_rate=_rate(sum(visit.complained for visit in attended), len(attended)),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, kw_only=True)
class Flag:
    """A figure of the period that is worse than the provider's usual, with its evidence."""

    #: ``late``, ``no_show``, ``low_rating`` or ``complaint``.
    kind: str
    summary: str
    #: The period's visits that count against it.
    booking_ids: tuple[str, ...]
    p_value: float


@dataclass(frozen=True)
class _Measure:
    kind: str
    #: Which visits it is measured over, and which of them count against the provider.
    over: Callable[[Visit], bool]
    bad: Callable[[Visit], bool]
    #: The flag's words, with ``{bad}`` and ``{of}``.
    words: str


def _measures(grace: timedelta) -> tuple[_Measure, ...]:
    return (
        _Measure(
            "late",
            lambda v: v.arrived_at is not None,
            lambda v: v.late(grace),
            "Late to {bad} of {of} visits",
        ),
        _Measure(
            "no_show", lambda v: True, lambda v: v.status == NO_SHOW, "Missed {bad} of {of} visits"
        ),
        _Measure(
            "low_rating",
            lambda v: v.rating is not None,
            lambda v: v.rating is not None and v.rating <= LOW_RATING,
            f"Rated {LOW_RATING} or less on {{bad}} of {{of}} rated visits",
        ),
        _Measure(
            "complaint",
            lambda v: v.attended,
            lambda v: v.complained,
            "Complaints about {bad} of {of} visits",
        ),
    )


def flags(
    period: Sequence[Visit],
    *,
    history: Sequence[Visit],
    org: Sequence[Visit],
    grace: timedelta,
    now: datetime,
) -> list[Flag]:
    """What is worse in the provider's ``period`` than their ``history`` (their visits
    before it) and the ``org``'s (every provider's visits before it) explain.

    For each measure (arrived late, missed, rated low, complained about), the period's bad
    visits are tested against a baseline rate: the provider's history, shrunk toward the
    org's rate (worth ``ORG_WEIGHT`` visits), at least ``BASELINE_FLOOR``. A one-sided
    binomial test fires below ``FLAG_ALPHA`` with at least ``FLAG_MIN_EVENTS`` bad visits.
    """
    found = []
    for measure in _measures(grace):
        counted = [visit for visit in period if visit.due(now) and measure.over(visit)]
        bad = [visit for visit in counted if measure.bad(visit)]
        usual = [visit for visit in history if visit.due(now) and measure.over(visit)]
        norm = [visit for visit in org if visit.due(now) and measure.over(visit)]
        org_rate = baseline_rate(
            sum(measure.bad(visit) for visit in norm), len(norm), prior_weight=ORG_WEIGHT
        )
        baseline = max(
            BASELINE_FLOOR,
            baseline_rate(
                sum(measure.bad(visit) for visit in usual),
                len(usual),
                prior_rate=org_rate,
                prior_weight=ORG_WEIGHT,
            ),
        )
        fires, p_value = failures_exceed_baseline(
            len(bad), len(counted), baseline, alpha=FLAG_ALPHA, min_failures=FLAG_MIN_EVENTS
        )
        if fires:
            found.append(
                Flag(
                    kind=measure.kind,
                    summary=(
                        measure.words.format(bad=len(bad), of=len(counted))
                        + f" ({len(bad) / len(counted):.0%}; usually {baseline:.0%})"
                    ),
                    booking_ids=tuple(visit.booking_id for visit in bad),
                    p_value=p_value,
                )
            )
    return found
