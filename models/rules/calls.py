"""Call rules: what a provider's end reason means, when a retry is better placed in another
part of the day, and how a call history reads in a handoff. Pure.

When to call: a first call is never delayed (the gate decides alone). A retry is moved out of
its default part of the day only when the org's own outcomes make it at least ``CONFIDENCE``
likely that another part answers at least ``MIN_LIFT`` more often. Answer rates are kept per
cell (part of day x weekday/weekend, in the recipient's local time), each a Beta-Binomial
posterior shrunk toward the org's pooled rate, so a handful of lucky calls moves nothing and
identical hours never narrow calling to half the day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
from scipy.stats import beta as beta_distribution

from models.tables import Call
from models.values import CallOutcome

#: ``endedReason`` values by outcome (Vapi's ``CallEndedReason``). A reason not listed here
#: and not matching a failure prefix is kept verbatim and treated as ``failed``.
_OUTCOMES: dict[str, CallOutcome] = {
    "customer-did-not-answer": CallOutcome.NO_ANSWER,
    "call.forwarding.no-answer": CallOutcome.NO_ANSWER,
    # Picked up, but nobody spoke: more like a missed call than a conversation.
    "silence-timed-out": CallOutcome.NO_ANSWER,
    "customer-busy": CallOutcome.BUSY,
    "call.forwarding.operator-busy": CallOutcome.BUSY,
    "voicemail": CallOutcome.VOICEMAIL,
    "twilio-reported-customer-misdialed": CallOutcome.INVALID_NUMBER,
    "sip-outbound-unallocated-number": CallOutcome.INVALID_NUMBER,
    "assistant-ended-call": CallOutcome.ANSWERED,
    "assistant-said-end-call-phrase": CallOutcome.ANSWERED,
    "assistant-ended-call-with-hangup-task": CallOutcome.ANSWERED,
    "assistant-ended-call-after-message-spoken": CallOutcome.ANSWERED,
    "assistant-forwarded-call": CallOutcome.ANSWERED,
    "customer-ended-call": CallOutcome.ANSWERED,
    "customer-ended-call-before-warm-transfer": CallOutcome.ANSWERED,
    "customer-ended-call-after-warm-transfer-attempt": CallOutcome.ANSWERED,
    "customer-ended-call-during-transfer": CallOutcome.ANSWERED,
    "exceeded-max-duration": CallOutcome.ANSWERED,
    "call.in-progress.twilio-completed-call": CallOutcome.ANSWERED,
    "call.in-progress.sip-completed-call": CallOutcome.ANSWERED,
    "vonage-completed": CallOutcome.ANSWERED,
}

#: Outcomes that say whether somebody picks up at that time of day. A call that failed to
#: start or reached a wrong number says nothing about when people answer, so it is not counted.
RINGING_OUTCOMES = (
    CallOutcome.ANSWERED,
    CallOutcome.NO_ANSWER,
    CallOutcome.BUSY,
    CallOutcome.VOICEMAIL,
)

#: A retry may be moved by at most this much past its earliest moment.
PREFERENCE_HORIZON = timedelta(hours=24)

#: The prior's weight, in pseudo-calls at the org's pooled answer rate: a cell needs about this
#: many calls of its own before its rate counts as much as the org's.
PRIOR_STRENGTH = 20.0

#: How much better (answer rate, absolute) another part of the day must be to move a retry.
MIN_LIFT = 0.03

#: How sure the posteriors must be that the other part is ``MIN_LIFT`` better, over every
#: comparison the week's cells allow: each must clear ``1 - (1 - CONFIDENCE) / COMPARISONS``
#: (Bonferroni). At 95 % per comparison, the 28 pairs of 8 cells would move retries by noise
#: alone in most orgs with a few thousand identical calls.
CONFIDENCE = 0.95
#: Pairs of the 8 cells (part of day x weekday/weekend) a retry may be moved between.
COMPARISONS = 28

#: One in this many retries the rule would move stays at its default moment, so every part of
#: the day keeps getting calls and its estimate stays honest (otherwise a part that lost early
#: would never be called again, and never get the chance to show it was unlucky). Chosen from
#: a hash of the lead and the attempt, so a replayed plan decides the same way.
KEEP_LEARNING_ONE_IN = 5

#: Quadrature points for ``chance_better``: quantiles of the compared-to rate, so the answer
#: is within 1e-3 however concentrated (or, below one pseudo-call, skewed) the posteriors are.
_POINTS = 1000


class PartOfDay(StrEnum):
    """A part of the recipient's local day, by the hour it starts."""

    NIGHT = "night"  # [00:00, 05:00)
    MORNING = "morning"  # [05:00, 12:00)
    AFTERNOON = "afternoon"  # [12:00, 17:00)
    EVENING = "evening"  # [17:00, 24:00)

    @property
    def starts(self) -> int:
        """The local hour the part starts."""
        return _STARTS[self]

    @property
    def plural(self) -> str:
        """``mornings``, ``nights``...: how a rate over many days reads."""
        return f"{self.value}s"


_STARTS = {
    PartOfDay.NIGHT: 0,
    PartOfDay.MORNING: 5,
    PartOfDay.AFTERNOON: 12,
    PartOfDay.EVENING: 17,
}


def part_of_day(hour: int) -> PartOfDay:
    """The part of the day a local hour (0-23) is in."""
    if hour < PartOfDay.MORNING.starts:
        return PartOfDay.NIGHT
    if hour < PartOfDay.AFTERNOON.starts:
        return PartOfDay.MORNING
    if hour < PartOfDay.EVENING.starts:
        return PartOfDay.AFTERNOON
    return PartOfDay.EVENING


@dataclass(frozen=True, kw_only=True)
class CallCell:
    """Where answer rates are kept: a part of the local day, on a weekday or at the weekend."""

    weekend: bool
    part: PartOfDay

    def words(self, *, with_day: bool) -> str:
        """``evenings``, or ``weekend evenings`` when the kind of day matters."""
        if not with_day:
            return self.part.plural
        return f"{'weekend' if self.weekend else 'weekday'} {self.part.plural}"


def cell_of(hour: int, weekday: int) -> CallCell:
    """The cell of a local hour (0-23) on a local weekday (0 Monday .. 6 Sunday)."""
    return CallCell(weekend=weekday >= 5, part=part_of_day(hour))


def cell_at(moment: datetime, *, zone: ZoneInfo) -> CallCell:
    """The cell ``moment`` falls in, in ``zone``."""
    local = moment.astimezone(zone)
    return cell_of(local.hour, local.weekday())


#: Every cell (8).
CELLS = tuple(
    CallCell(weekend=weekend, part=part) for weekend in (False, True) for part in PartOfDay
)


@dataclass(frozen=True, kw_only=True)
class Tally:
    """Calls that rang, and how many of them were answered."""

    answered: int = 0
    calls: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(answered=self.answered + other.answered, calls=self.calls + other.calls)

    @property
    def rate(self) -> float | None:
        """The observed answer rate (``None`` without calls)."""
        return self.answered / self.calls if self.calls else None


@dataclass(frozen=True, kw_only=True)
class AnswerCounts:
    """An org's answered calls: pooled (every call, with or without a local time) and by cell
    (calls whose local hour and weekday are known)."""

    pooled: Tally = field(default_factory=Tally)
    cells: Mapping[CallCell, Tally] = field(default_factory=dict)

    def of(self, cell: CallCell) -> Tally:
        """The cell's tally (empty if it has no calls)."""
        return self.cells.get(cell, Tally())


@dataclass(frozen=True, kw_only=True)
class Beta:
    """A Beta distribution over an answer rate."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        """The expected answer rate."""
        return self.alpha / (self.alpha + self.beta)


def prior_of(pooled: Tally) -> Beta:
    """The prior every cell starts from: centred on the org's pooled answer rate (Laplace-
    smoothed, so no history gives 50 %), worth ``PRIOR_STRENGTH`` calls, but never more calls
    than the pool rests on plus two (with no history it is Beta(1, 1), flat)."""
    centre = (pooled.answered + 1) / (pooled.calls + 2)
    strength = min(PRIOR_STRENGTH, pooled.calls + 2.0)
    return Beta(alpha=strength * centre, beta=strength * (1 - centre))


def posterior(prior: Beta, tally: Tally) -> Beta:
    """The prior updated with a cell's own answered and unanswered calls."""
    return Beta(alpha=prior.alpha + tally.answered, beta=prior.beta + tally.calls - tally.answered)


def chance_better(better: Beta, than: Beta, *, by: float) -> float:
    """P(p - q >= ``by``) for independent p ~ ``better`` and q ~ ``than``.

    A quadrature, not a simulation (the same counts always give the same answer): the mean of
    P(p >= q + by) over ``_POINTS`` evenly spaced quantiles of q.
    """
    quantiles = (np.arange(_POINTS) + 0.5) / _POINTS
    q = beta_distribution.ppf(quantiles, than.alpha, than.beta)
    return float(np.mean(beta_distribution.sf(q + by, better.alpha, better.beta)))


@dataclass(frozen=True, kw_only=True)
class CellMove:
    """A retry's better cell: where, when, how sure, and the two cells' own counts."""

    cell: CallCell
    at: datetime
    chance: float
    tally: Tally
    default_cell: CallCell
    default_tally: Tally

    def evidence(self) -> str:
        """``evenings answered 41 % vs 12 % mornings over 230 calls``."""
        with_day = self.cell.weekend != self.default_cell.weekend
        ours, theirs = self.tally.rate or 0.0, self.default_tally.rate or 0.0
        calls = self.tally.calls + self.default_tally.calls
        return (
            f"{self.cell.words(with_day=with_day)} answered {ours * 100:.0f} % vs "
            f"{theirs * 100:.0f} % {self.default_cell.words(with_day=with_day)} over {calls} calls"
        )


def better_cell(
    counts: AnswerCounts, *, default: CallCell, options: Mapping[CallCell, datetime]
) -> CellMove | None:
    """The cell a retry should move to from ``default``, if any: among ``options`` (each cell's
    earliest allowed moment) with calls of their own, those likely enough (``CONFIDENCE``
    over all of them together) to answer ``MIN_LIFT`` more often than ``default``; of those
    the highest posterior mean (the earliest on a tie)."""
    prior = prior_of(counts.pooled)
    base = posterior(prior, counts.of(default))
    # A cell with no calls of its own has only the prior: nothing learned, not compared.
    compared = {
        cell: at for cell, at in options.items() if cell != default and counts.of(cell).calls
    }
    needed = 1 - (1 - CONFIDENCE) / COMPARISONS
    best: tuple[float, datetime, CellMove] | None = None
    for cell, at in compared.items():
        tally = counts.of(cell)
        candidate = posterior(prior, tally)
        chance = chance_better(candidate, base, by=MIN_LIFT)
        if chance < needed:
            continue
        move = CellMove(
            cell=cell,
            at=at,
            chance=chance,
            tally=tally,
            default_cell=default,
            default_tally=counts.of(default),
        )
        if best is None or (-candidate.mean, at) < (-best[0], best[1]):
            best = (candidate.mean, at, move)
    return best[2] if best else None


def keeps_learning(lead_id: str, attempt: int) -> bool:
    """Whether this retry stays at its default moment although another part of the day looks
    better (one in ``KEEP_LEARNING_ONE_IN``, the same answer every time it is asked)."""
    digest = hashlib.sha256(f"{lead_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % KEEP_LEARNING_ONE_IN == 0


def part_starts(after: datetime, *, zone: ZoneInfo, limit: datetime) -> list[datetime]:
    """Each local start of a part of the day in (``after``, ``limit``], oldest first (UTC)."""
    starts = []
    day: date = after.astimezone(zone).date() - timedelta(days=1)
    while datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC) <= limit:
        for part in PartOfDay:
            start = datetime.combine(day, time(part.starts), tzinfo=zone).astimezone(UTC)
            if after < start <= limit:
                starts.append(start)
        day += timedelta(days=1)
    return sorted(set(starts))


def earliest_by_cell(moments: Sequence[datetime], *, zone: ZoneInfo) -> dict[CallCell, datetime]:
    """The earliest of ``moments`` in each cell they reach."""
    found: dict[CallCell, datetime] = {}
    for moment in sorted(moments):
        found.setdefault(cell_at(moment, zone=zone), moment)
    return found


@dataclass(frozen=True, kw_only=True)
class RetryTiming:
    """When a retry goes after what the org's answer rates say, and why (``None``: they said
    nothing, the retry goes at its default moment)."""

    at: datetime
    reason: str | None
    moved: bool = False


def retry_timing(
    counts: AnswerCounts,
    *,
    default: datetime,
    options: Sequence[datetime],
    zone: ZoneInfo,
    lead_id: str,
    attempt: int,
) -> RetryTiming:
    """Where a retry goes: ``default`` (the first moment the gate allows), or the earliest of
    ``options`` (other moments the gate allows within ``PREFERENCE_HORIZON``) in a part of the
    day clearly better (``better_cell``), unless this retry is one kept to keep learning."""
    move = better_cell(
        counts,
        default=cell_at(default, zone=zone),
        options=earliest_by_cell([default, *options], zone=zone),
    )
    if move is None:
        return RetryTiming(at=default, reason=None)
    if keeps_learning(lead_id, attempt):
        kept = f"{default.astimezone(zone):%H:%M}"
        return RetryTiming(at=default, reason=f"kept at {kept} to keep learning: {move.evidence()}")
    moved = f"{move.at.astimezone(zone):%H:%M}"
    return RetryTiming(at=move.at, reason=f"retry at {moved}: {move.evidence()}", moved=True)


def outcome_of(ended_reason: str | None) -> CallOutcome:
    """What an ``endedReason`` means for the loop; unknown reasons count as ``failed``."""
    return _OUTCOMES.get(ended_reason or "", CallOutcome.FAILED)


@dataclass(frozen=True, kw_only=True)
class CallSlot:
    """When the next attempt should be placed, and why then."""

    at: datetime
    timezone: str
    #: ``at`` in words in the recipient's timezone (``Mon 23 Nov 10:00 Europe/London``).
    local: str
    #: Why later than asked (quiet hours, the call cap, a better part of the day), if it is.
    reason: str | None
    #: What the org's answer rates decided for a retry (moved, or kept to keep learning),
    #: in words: what the lead's timeline says.
    learned: str | None = None


def history_summary(calls: list[Call], *, timezone: str) -> str:
    """The lead's call attempts in a few lines, for the escalation a person reads."""
    zone = ZoneInfo(timezone)
    lines = []
    for call in calls:
        when = call.touched_at or call.created_at
        outcome = call.outcome or call.status
        reason = (
            f" ({call.ended_reason})" if call.ended_reason and call.ended_reason != outcome else ""
        )
        seconds = f", {call.duration_s:.0f} s" if call.duration_s is not None else ""
        lines.append(
            f"attempt {call.attempt}: {when.astimezone(zone):%a %d %b %H:%M} {timezone}: "
            f"{outcome}{reason}{seconds}"
        )
    return "\n".join(lines)
