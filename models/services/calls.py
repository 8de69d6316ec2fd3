"""Calls as use cases: claim a call through the gate (once per key), record how a call ended,
and plan when the next attempt may go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.database import lock, locking
from models.errors import NotFound
from models.ids import calls_exhausted_key
from models.payloads import CallPlan
from models.rules.calls import (
    PREFERENCE_HORIZON,
    CallSlot,
    history_summary,
    outcome_of,
    part_starts,
    retry_timing,
)
from models.rules.compliance import Deferred
from models.rules.orgs import org_settings
from models.schemas import OrgSettings
from models.services.gate import check_gate, held_back_for_takeover
from models.services.pacing import take_slot
from models.store import agent_days
from models.store.calls import answer_counts, call_history, call_placed
from models.store.consent import current_consent
from models.store.contacts import dialable_phone, mark_invalid, recipient_of
from models.store.escalations import open_escalation
from models.store.leads import get_lead
from models.store.orgs import get_org, settings_for
from models.store.threads import thread_of_contact
from models.store.timeline import add_to_timeline, add_to_timeline_once
from models.tables import (
    Call,
    Contact,
    Lead,
    utcnow,
)
from models.values import (
    CallOutcome,
    CallStatus,
    Channel,
    EscalationReason,
    Priority,
    TimelineKind,
    new_id,
)


@dataclass(frozen=True, kw_only=True)
class CallClaim:
    """The claimed call row and what placing the call needs."""

    call: Call
    customer_name: str | None
    assistant_id: str | None
    phone_number_id: str | None
    #: The contact's voice consent (``False``: they said no, the call must not be placed).
    consent: bool | None = None


def claim_call(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    workflow_id: str,
    attempt: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> CallClaim:
    """The call row for ``idempotency_key``, created (``pending``) if new, before any dialling.

    A new call passes the compliance gate first (calling window, touch budget, per-subject call
    cap, at ``now``), with the contact row locked so concurrent calls count one at a time: if
    it may not go yet, nothing is written and ``store.Deferred`` says until when.
    """
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    lead = session.get(Lead, lead_id)
    if lead is None or lead.org_id != org_id:
        raise NotFound(lead_id)
    contact = lock(session, Contact, lead.contact_id)
    assert contact is not None
    consent = current_consent(session, org_id=org_id, contact_id=contact.id)[Channel.VOICE]
    call = session.exec(select(Call).where(Call.idempotency_key == idempotency_key)).first()
    if call is None:
        call = _new_call(
            session,
            settings=settings,
            lead=lead,
            contact=contact,
            consent=consent,
            workflow_id=workflow_id,
            attempt=attempt,
            idempotency_key=idempotency_key,
            now=now or utcnow(),
        )
    elif call.org_id != org_id:
        raise NotFound(idempotency_key)
    elif call.attempted_at is None and call.status == CallStatus.PENDING:
        # Claimed before a takeover and retried during it: not dialled yet, so it waits.
        held_back_for_takeover(
            session, settings=settings, contact_id=contact.id, now=now or utcnow()
        )
    return CallClaim(
        call=call,
        customer_name=contact.name,
        assistant_id=settings.vapi_assistant_id,
        phone_number_id=settings.vapi_phone_number_id,
        consent=consent,
    )


def _new_call(
    session: Session,
    *,
    settings: OrgSettings,
    lead: Lead,
    contact: Contact,
    consent: bool | None,
    workflow_id: str,
    attempt: int,
    idempotency_key: str,
    now: datetime,
) -> Call:
    """A new call row, ``pending``, once the gate lets it go at ``now`` (``Deferred`` if not;
    without consent or a number it is written anyway, and the activity fails it)."""
    phone = dialable_phone(session, org_id=lead.org_id, contact_id=contact.id)
    if consent is not False and phone:
        verdict = check_gate(
            session, settings=settings, lead=lead, contact=contact, channel=Channel.VOICE, now=now
        )
        if not verdict.allowed:
            raise Deferred(verdict)
        take_slot(
            session,
            settings=settings,
            org_id=lead.org_id,
            channel=Channel.VOICE,
            key=idempotency_key,
            priority=lead.score,
            now=now,
        )
    # The answer-rate statistics are kept in the recipient's local time.
    local = now.astimezone(
        ZoneInfo(recipient_of(session, lead=lead, contact=contact, settings=settings).timezone)
    )
    call = Call(
        id=new_id("call"),
        org_id=lead.org_id,
        lead_id=lead.id,
        workflow_id=workflow_id,
        attempt=attempt,
        idempotency_key=idempotency_key,
        mode=settings.provider_mode.value,
        to_address=phone,
        status=CallStatus.PENDING,
        touched_at=now,
        local_hour=local.hour,
        local_weekday=local.weekday(),
    )
    session.add(call)
    session.flush()
    return call


@dataclass(frozen=True, kw_only=True)
class CallReport:
    """Vapi's end-of-call report, as far as keepwarm keeps it."""

    provider_call_id: str
    call_key: str | None
    ended_reason: str
    summary: str | None
    duration_s: float | None
    cost: float | None
    ended_at: datetime | None


def record_call_report(session: Session, *, org_id: str, report: CallReport) -> Call | None:
    """Record how a call ended on its row (found by our key, else Vapi's id); ``None`` if unknown.

    The call's workflow is the one stored on its row, never one named by the webhook, so a
    report can only reach a workflow of the org it was posted for.
    """
    # Locked: two copies of one report (a webhook and the lost-report lookup) record it once.
    query = locking(select(Call).where(Call.org_id == org_id))
    call = None
    if report.call_key:
        call = session.exec(query.where(Call.idempotency_key == report.call_key)).first()
    if call is None:
        call = session.exec(query.where(Call.provider_call_id == report.provider_call_id)).first()
    if call is None:
        return None
    if call.status == CallStatus.ENDED:
        return call  # reported already
    if call.provider_call_id is None:
        call.provider_call_id = report.provider_call_id
        call_placed(session, call=call, at=utcnow())
    outcome = outcome_of(report.ended_reason)
    call.status = CallStatus.ENDED
    call.outcome = outcome.value
    call.ended_reason = report.ended_reason[:100]
    call.summary = report.summary
    call.duration_s = report.duration_s
    call.cost = report.cost
    call.ended_at = report.ended_at or utcnow()
    session.add(call)
    agent_days.call_ended(session, call=call)
    if outcome == CallOutcome.INVALID_NUMBER and call.to_address:
        mark_invalid(
            session,
            org_id=org_id,
            number=call.to_address,
            reason=f"call {call.id}: {report.ended_reason}",
            at=call.ended_at,
        )
    if call.lead_id:
        seconds = f", {report.duration_s:.0f} s" if report.duration_s is not None else ""
        reason = f" ({report.ended_reason})" if report.ended_reason != outcome.value else ""
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=call.lead_id,
            kind=TimelineKind.CALL,
            summary=f"Call attempt {call.attempt} ended: {outcome.value}{reason}{seconds}",
            data={
                "call_id": call.id,
                "attempt": call.attempt,
                "outcome": outcome.value,
                "ended_reason": report.ended_reason,
                "duration_s": report.duration_s,
                "cost": report.cost,
            },
        )
    session.flush()
    return call


#: Gate checks a moment may take to settle (quiet hours, then the budget, then the call cap...).
_GATE_ROUNDS = 6


def _first_allowed(
    session: Session, *, settings: OrgSettings, lead: Lead, contact: Contact, moment: datetime
) -> tuple[datetime, list[str], bool]:
    """The first moment at or after ``moment`` the gate lets a call through, why later if it
    is, and whether the gate settled on it (``False``: still held after ``_GATE_ROUNDS``)."""
    reasons: list[str] = []
    for _ in range(_GATE_ROUNDS):
        verdict = check_gate(
            session,
            settings=settings,
            lead=lead,
            contact=contact,
            channel=Channel.VOICE,
            now=moment,
            holds=False,
        )
        if verdict.allowed:
            return moment, reasons, True
        assert verdict.until is not None and verdict.reason is not None
        moment = verdict.until
        reasons.append(verdict.reason.split(": until", 1)[0])
    return moment, reasons, False


def next_slot(
    session: Session,
    *,
    settings: OrgSettings,
    lead: Lead,
    contact: Contact,
    earliest: datetime,
    attempt: int,
) -> CallSlot:
    """The first moment at or after ``earliest`` the gate lets attempt ``attempt`` through.

    A first attempt goes then. A retry may instead go at the first allowed moment of a part of
    the day (weekday or weekend) that the org's answered calls make clearly better
    (``models.rules.calls.retry_timing``), within ``PREFERENCE_HORIZON`` of ``earliest``.
    """
    who = recipient_of(session, lead=lead, contact=contact, settings=settings)
    zone = ZoneInfo(who.timezone)
    moment, reasons, settled = _first_allowed(
        session, settings=settings, lead=lead, contact=contact, moment=earliest
    )
    learned = None
    if attempt >= 2 and settled:
        counts = answer_counts(session, org_id=lead.org_id)
        limit = earliest + PREFERENCE_HORIZON
        options = []
        # Only a part of the day with calls of its own can win: none, no need to look.
        for start in part_starts(moment, zone=zone, limit=limit) if counts.cells else []:
            allowed, _, ok = _first_allowed(
                session, settings=settings, lead=lead, contact=contact, moment=start
            )
            if ok and allowed <= limit:
                options.append(allowed)
        timing = retry_timing(
            counts,
            default=moment,
            options=options,
            zone=zone,
            lead_id=lead.id,
            attempt=attempt,
        )
        if timing.moved:
            # The gate's reasons were about the default moment, not this one.
            moment, reasons = timing.at, []
        if timing.reason:
            reasons.append(timing.reason)
            learned = timing.reason
    local = f"{moment.astimezone(zone):%a %d %b %H:%M} {who.timezone}"
    reason = " and ".join(dict.fromkeys(reasons)) or None
    return CallSlot(at=moment, timezone=who.timezone, local=local, reason=reason, learned=learned)


def _note_learned_slot(session: Session, *, lead: Lead, attempt: int, slot: CallSlot) -> None:
    """Say on the lead's timeline why a retry goes when it does, once per attempt and time
    (a plan made again for the same moment adds nothing)."""
    add_to_timeline_once(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.CALL,
        summary=f"Call attempt {attempt} planned for {slot.local}: {slot.learned}",
        data={"reason": slot.learned},
        key={"planned_attempt": attempt, "at": slot.at.isoformat()},
    )


def plan_call(
    session: Session, *, org_id: str, lead_id: str, attempt: int, earliest: datetime
) -> CallPlan:
    """The org's call policy now, and the first moment from ``earliest`` attempt ``attempt``
    may go (calling window, budget and call cap in the recipient's local time; for a retry, a
    part of the day the org's calls are clearly answered more in); ``stop`` says why no call
    can go at all."""
    settings = settings_for(session, org_id=org_id)
    policy = settings.call_policy
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    spacing = tuple(int(wait.total_seconds()) for wait in policy.spacing)
    stop = None
    if dialable_phone(session, org_id=org_id, contact_id=contact.id) is None:
        stop = "no phone number that can be called"
    elif current_consent(session, org_id=org_id, contact_id=contact.id)[Channel.VOICE] is False:
        stop = "the person opted out of calls"
    if stop is None and attempt > policy.max_attempts:
        # Asked only for the policy (the loop is over): no attempt to plan or explain.
        return CallPlan(
            max_attempts=policy.max_attempts, spacing_s=spacing, at=earliest, local="", reason=None
        )
    if stop is not None:
        return CallPlan(
            max_attempts=policy.max_attempts,
            spacing_s=spacing,
            at=earliest,
            local="",
            reason=None,
            stop=stop,
        )
    slot = next_slot(
        session,
        settings=settings,
        lead=lead,
        contact=contact,
        earliest=earliest,
        attempt=attempt,
    )
    if slot.learned is not None:
        _note_learned_slot(session, lead=lead, attempt=attempt, slot=slot)
    return CallPlan(
        max_attempts=policy.max_attempts,
        spacing_s=spacing,
        at=slot.at,
        local=slot.local,
        reason=slot.reason,
    )


def escalate_unanswered_calls(
    session: Session, *, org_id: str, lead_id: str, call_loop_workflow_id: str, attempts: int
) -> str:
    """Every attempt of a call loop went unanswered: open one escalation (per loop) with the
    lead's call history in the recipient's local time, note it on the timeline; its id."""
    settings = settings_for(session, org_id=org_id)
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    zone = recipient_of(session, lead=lead, contact=contact, settings=settings).timezone
    history = call_history(session, org_id=org_id, lead_id=lead.id)
    summary = f"{attempts} call attempts, none answered.\n" + history_summary(
        history, timezone=zone
    )
    escalation = open_escalation(
        session,
        org_id=org_id,
        reason=EscalationReason.CALL_ATTEMPTS_EXHAUSTED,
        priority=Priority.MEDIUM,
        summary=summary,
        lead_id=lead.id,
        thread_id=thread_of_contact(session, contact_id=contact.id),
        contact_id=contact.id,
        dedupe_key=calls_exhausted_key(call_loop_workflow_id),
        data={"call_ids": [call.id for call in history], "attempts": attempts},
    )
    add_to_timeline(
        session,
        org_id=org_id,
        lead_id=lead.id,
        kind=TimelineKind.CALL,
        summary=f"Call attempts exhausted ({attempts}); escalated to a person",
        data={"escalation_id": escalation.id},
    )
    return escalation.id
