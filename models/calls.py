"""The call-retry loop's rules: what an ended call means, when to try again, and the history.

Vapi ends every call with an ``endedReason``; keepwarm reduces it to an outcome that decides
what the loop does next. When to call is the compliance gate's calling window and call cap,
narrowed, once an org has enough history, to the local hours its calls are answered most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import compliance
from models.schemas import OrgSettings
from models.tables import Call, Contact, Identity, Lead
from models.values import CallOutcome, Channel, IdentityKind

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


def best_hours(session: Session, *, org_id: str) -> frozenset[int] | None:
    """The local hours whose calls are answered at least as often as the org's calls overall,
    once the org has ``MIN_HISTORY`` attempts with an outcome; ``None`` until then."""
    rows = session.exec(
        select(Call.local_hour, Call.outcome).where(
            Call.org_id == org_id, col(Call.outcome).is_not(None), col(Call.local_hour).is_not(None)
        )
    ).all()
    if len(rows) < MIN_HISTORY:
        return None
    tries: Counter[int] = Counter()
    answers: Counter[int] = Counter()
    for hour, outcome in rows:
        assert hour is not None
        tries[hour] += 1
        answers[hour] += outcome == CallOutcome.ANSWERED
    overall = sum(answers.values()) / len(rows)
    good = {
        hour
        for hour, count in tries.items()
        if count >= MIN_PER_HOUR and answers[hour] / count >= overall and answers[hour]
    }
    return frozenset(good) or None


@dataclass(frozen=True, kw_only=True)
class CallSlot:
    """When the next attempt should be placed, and why then."""

    at: datetime
    timezone: str
    #: ``at`` in words in the recipient's timezone (``Mon 23 Nov 10:00 Europe/London``).
    local: str
    #: Why later than asked (quiet hours, the call cap, the best hours), if it is.
    reason: str | None


def next_slot(
    session: Session, *, settings: OrgSettings, lead: Lead, contact: Contact, earliest: datetime
) -> CallSlot:
    """The first moment at or after ``earliest`` the gate lets a call through, moved into the
    org's best hours where it has them (by at most ``PREFERENCE_HORIZON``)."""
    who = compliance.recipient_of(session, lead=lead, contact=contact, settings=settings)
    zone = ZoneInfo(who.timezone)
    hours = best_hours(session, org_id=lead.org_id)
    moment, reasons = earliest, []
    for _ in range(6):  # the gate and the preference may push each other on; settle them
        verdict = compliance.check(
            session,
            settings=settings,
            lead=lead,
            contact=contact,
            channel=Channel.VOICE,
            now=moment,
            holds=False,
        )
        if not verdict.allowed:
            assert verdict.until is not None and verdict.reason is not None
            moment = verdict.until
            reasons.append(verdict.reason.split(": until", 1)[0])
            continue
        preferred = _preferred(moment, zone=zone, hours=hours, limit=earliest + PREFERENCE_HORIZON)
        if preferred == moment:
            break
        moment = preferred
        reasons.append("the hours this business's calls are answered most")
    local = f"{moment.astimezone(zone):%a %d %b %H:%M} {who.timezone}"
    reason = " and ".join(dict.fromkeys(reasons)) or None
    return CallSlot(at=moment, timezone=who.timezone, local=local, reason=reason)


def _preferred(
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


def local_hour(
    session: Session, *, settings: OrgSettings, lead: Lead, contact: Contact, at: datetime
) -> int:
    """The recipient's local hour at ``at`` (what the answer-rate statistics are kept by)."""
    who = compliance.recipient_of(session, lead=lead, contact=contact, settings=settings)
    return at.astimezone(ZoneInfo(who.timezone)).hour


def history(session: Session, *, org_id: str, lead_id: str) -> list[Call]:
    """The lead's calls, oldest first (none of another org's)."""
    return list(
        session.exec(
            select(Call)
            .where(Call.org_id == org_id, Call.lead_id == lead_id)
            .order_by(col(Call.created_at), col(Call.attempt), col(Call.id))
        )
    )


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


def dialable_phone(session: Session, *, org_id: str, contact_id: str) -> str | None:
    """The contact's newest phone number no provider has called invalid."""
    return session.exec(
        select(Identity.value)
        .where(
            Identity.org_id == org_id,
            Identity.contact_id == contact_id,
            Identity.kind == IdentityKind.PHONE,
            col(Identity.invalid_at).is_(None),
        )
        .order_by(col(Identity.created_at).desc(), col(Identity.id).desc())
    ).first()


def mark_invalid(session: Session, *, org_id: str, number: str, reason: str, at: datetime) -> None:
    """A provider said ``number`` can't be reached: nothing is dialled or texted to it again."""
    identity = session.exec(
        select(Identity).where(
            Identity.org_id == org_id, Identity.kind == IdentityKind.PHONE, Identity.value == number
        )
    ).first()
    if identity is not None and identity.invalid_at is None:
        identity.invalid_at = at
        identity.invalid_reason = reason[:200]
        session.add(identity)
