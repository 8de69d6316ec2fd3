"""Call rules: what a provider's end reason means, which local hours answer best, and how a
call history reads in a handoff. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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


#: Past attempts an org needs before its answer rates pick the hours to call.
MIN_HISTORY = 40


#: Attempts an hour needs before its own answer rate counts.
MIN_PER_HOUR = 4


#: The best hours may move a call by at most this much past its earliest moment.
PREFERENCE_HORIZON = timedelta(hours=24)


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
    #: Why later than asked (quiet hours, the call cap, the best hours), if it is.
    reason: str | None


def preferred_moment(
    moment: datetime, *, zone: ZoneInfo, hours: frozenset[int] | None, limit: datetime
) -> datetime:
    """``moment`` if its local hour is a good one, else the next good hour's start before
    ``limit``, else ``moment``."""
    if not hours:
        return moment
    local = moment.astimezone(zone)
    if local.hour in hours:
        return moment
    start = local.replace(minute=0, second=0, microsecond=0)
    for step in range(1, 25):
        candidate = (start + timedelta(hours=step)).astimezone(UTC)
        if candidate > limit:
            break
        if candidate.astimezone(zone).hour in hours:
            return candidate
    return moment


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
