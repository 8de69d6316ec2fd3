"""The call activity: an AI voice call is placed once per key, like a message is sent once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import OptedOut, ProviderNotConfigured, SendFailed
from activities.records import held_back, recording
from activities.voice import CALL_KEY, CallPlacer, CallRequest, PlacedCall
from models.errors import NotFound
from models.ids import calls_exhausted_key
from models.rules.calls import history_summary
from models.rules.compliance import Deferred
from models.rules.orgs import org_settings
from models.services.calls import CallReport, claim_call, next_slot, record_call_report
from models.store.calls import call_history, mark_call
from models.store.consent import current_consent
from models.store.contacts import dialable_phone, recipient_of
from models.store.escalations import ladder_of, open_escalation
from models.store.orgs import get_org
from models.store.threads import thread_of_contact
from models.store.timeline import add_to_timeline
from models.tables import Call, Contact, Lead, utcnow
from models.values import CallOutcome, CallStatus, Channel, ProviderMode, TimelineKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PlaceCallInput:
    """Call a lead, at most once per key."""

    org_id: str
    lead_id: str
    attempt: int
    #: ``{workflow_id}/{step}``: the call's identity across retries and crashes.
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class PlanCallInput:
    """When may attempt ``attempt`` of a lead's call-retry loop be placed, at the earliest
    ``earliest``?"""

    org_id: str
    lead_id: str
    attempt: int
    earliest: datetime


@dataclass(frozen=True, kw_only=True)
class CallPlan:
    """The org's call policy as it stands, and the next attempt's slot.

    ``stop`` says why no call can be placed at all (no dialable number, no voice consent, the
    lead is closed); ``at`` is then meaningless.
    """

    max_attempts: int
    #: Waits after attempts 1, 2, ... (the last repeats), in seconds.
    spacing_s: tuple[int, ...]
    at: datetime
    local: str
    reason: str | None
    stop: str | None = None


@dataclass(frozen=True, kw_only=True)
class LookUpCallInput:
    """Ask the provider how a call ended (its report did not come)."""

    org_id: str
    call_id: str


@dataclass(frozen=True, kw_only=True)
class CallsExhaustedInput:
    """The loop used all its attempts unanswered: open an escalation with the call history."""

    org_id: str
    lead_id: str
    #: The loop's workflow id: one escalation per loop, however often this is retried.
    workflow_id: str
    attempts: int


@dataclass(frozen=True, kw_only=True)
class LadderInput:
    """Which Escalation workflow climbs the ladder for item ``escalation_id``?"""

    org_id: str
    escalation_id: str


@dataclass(frozen=True, kw_only=True)
class PlaceCallResult:
    """The call's row id and status; ``repeated`` when an earlier attempt already placed it."""

    call_id: str
    status: CallStatus
    provider_call_id: str | None
    repeated: bool


class CallActivities:
    """Places calls through the voice adapter, recording each before the provider call."""

    def __init__(self, *, engine: Engine, placers: Mapping[ProviderMode, CallPlacer]) -> None:
        """Place calls through ``placers`` and record them in ``engine``'s database."""
        self._engine = engine
        self._placers = placers

    @activity.defn(name="place_call")
    def place_call(self, input: PlaceCallInput) -> PlaceCallResult:
        """Write the call row (unique key), then dial unless a previous attempt did.

        A new call passes the compliance gate first (at the workflow's scheduled time): held
        back, it raises ``SendDeferred`` with until when; without voice consent, ``OptedOut``.

        Vapi has no idempotency key: an attempt that may have reached Vapi is reconciled by
        listing recent calls and matching the key carried in their metadata.
        """
        info = activity.info()
        # The workflow's time (not the worker's clock) is when the gate is asked.
        now = info.current_attempt_scheduled_time or utcnow()
        try:
            with recording(self._engine) as session:
                claim = claim_call(
                    session,
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    workflow_id=info.workflow_id or "",
                    attempt=input.attempt,
                    idempotency_key=input.idempotency_key,
                    now=now,
                )
        except Deferred as deferred:
            raise held_back(
                self._engine,
                deferred,
                org_id=input.org_id,
                lead_id=input.lead_id,
                channel=Channel.VOICE,
            ) from None
        call = claim.call
        if call.status == CallStatus.FAILED:
            raise SendFailed(call.error or "an earlier attempt failed")
        if call.status != CallStatus.PENDING:
            return _result(call, repeated=True)
        if claim.consent is False:
            self._mark(call, status=CallStatus.FAILED, error="the person opted out of calls")
            raise OptedOut("the person opted out of calls")
        placer = self._placers.get(ProviderMode(call.mode))
        if placer is None:
            reason = (
                "this worker has no live voice adapter: set KEEPWARM_PROVIDER_MODE=live and "
                "VAPI_API_KEY"
            )
            self._mark(call, status=CallStatus.FAILED, error=reason)
            raise ProviderNotConfigured(reason)
        if not call.to_address:
            self._mark(call, status=CallStatus.FAILED, error="the contact has no phone number")
            raise SendFailed("the contact has no phone number")
        request = CallRequest(
            to=call.to_address,
            customer_name=claim.customer_name,
            assistant_id=claim.assistant_id,
            phone_number_id=claim.phone_number_id,
            metadata=(
                ("workflow_id", call.workflow_id),
                ("attempt", str(call.attempt)),
                (CALL_KEY, call.idempotency_key),
                ("org_id", call.org_id),
            ),
        )
        if call.attempted_at is not None:
            found = placer.reconcile(request, attempted_at=call.attempted_at)
            if found is not None:
                log.info("call %s was placed by an earlier attempt; recording it", call.id)
                return _result(self._placed(call, found), repeated=True)
        else:
            call = self._mark(call, attempted=True)
        try:
            placed = placer.place(request)
        except ApplicationError as error:
            if error.non_retryable:
                self._mark(call, status=CallStatus.FAILED, error=error.message)
            raise
        return _result(self._placed(call, placed), repeated=False)

    @activity.defn(name="look_up_call")
    def look_up_call(self, input: LookUpCallInput) -> CallOutcome | None:
        """How a call ended, from its row, else from the provider (recorded as if its report
        had come); ``None`` while the provider says it is still going."""
        with recording(self._engine) as session:
            call = session.get(Call, input.call_id)
            if call is None or call.org_id != input.org_id:
                raise NotFound(input.call_id)
        if call.outcome is not None:
            return CallOutcome(call.outcome)
        placer = self._placers.get(ProviderMode(call.mode))
        if placer is None or call.provider_call_id is None:
            return None
        ended = placer.lookup(call.provider_call_id)
        if ended is None:
            return None
        report = CallReport(
            provider_call_id=call.provider_call_id,
            call_key=call.idempotency_key,
            ended_reason=ended.ended_reason,
            summary=ended.summary,
            duration_s=ended.duration_s,
            cost=ended.cost,
            ended_at=ended.ended_at,
        )
        with recording(self._engine) as session:
            recorded = record_call_report(session, org_id=input.org_id, report=report)
            assert recorded is not None and recorded.outcome is not None
            return CallOutcome(recorded.outcome)

    @activity.defn(name="plan_call")
    def plan_call(self, input: PlanCallInput) -> CallPlan:
        """The org's call policy now, and when attempt ``attempt`` may go (calling window,
        budget and call cap in the recipient's local time, the org's best hours)."""
        with recording(self._engine) as session:
            org = get_org(session, org_id=input.org_id)
            settings = org_settings(org)
            policy = settings.call_policy
            lead = session.get(Lead, input.lead_id)
            if lead is None or lead.org_id != input.org_id:
                raise NotFound(input.lead_id)
            contact = session.get(Contact, lead.contact_id)
            assert contact is not None
            spacing = tuple(int(wait.total_seconds()) for wait in policy.spacing)
            stop = None
            if dialable_phone(session, org_id=input.org_id, contact_id=contact.id) is None:
                stop = "no phone number that can be called"
            elif (
                current_consent(session, org_id=input.org_id, contact_id=contact.id)[Channel.VOICE]
                is False
            ):
                stop = "the person opted out of calls"
            if stop is not None:
                return CallPlan(
                    max_attempts=policy.max_attempts,
                    spacing_s=spacing,
                    at=input.earliest,
                    local="",
                    reason=None,
                    stop=stop,
                )
            slot = next_slot(
                session, settings=settings, lead=lead, contact=contact, earliest=input.earliest
            )
            return CallPlan(
                max_attempts=policy.max_attempts,
                spacing_s=spacing,
                at=slot.at,
                local=slot.local,
                reason=slot.reason,
            )

    @activity.defn(name="calls_exhausted")
    def calls_exhausted(self, input: CallsExhaustedInput) -> str:
        """Open an escalation (the needs-attention queue) with the lead's call history, once
        per loop; its id."""
        with recording(self._engine) as session:
            org = get_org(session, org_id=input.org_id)
            settings = org_settings(org)
            lead = session.get(Lead, input.lead_id)
            if lead is None or lead.org_id != input.org_id:
                raise NotFound(input.lead_id)
            contact = session.get(Contact, lead.contact_id)
            assert contact is not None
            zone = recipient_of(session, lead=lead, contact=contact, settings=settings).timezone
            history = call_history(session, org_id=input.org_id, lead_id=lead.id)
            summary = f"{input.attempts} call attempts, none answered.\n" + history_summary(
                history, timezone=zone
            )
            escalation = open_escalation(
                session,
                org_id=input.org_id,
                reason="call_attempts_exhausted",
                priority="medium",
                summary=summary,
                lead_id=lead.id,
                thread_id=thread_of_contact(session, contact_id=contact.id),
                contact_id=contact.id,
                dedupe_key=calls_exhausted_key(input.workflow_id),
                data={"call_ids": [call.id for call in history], "attempts": input.attempts},
            )
            add_to_timeline(
                session,
                org_id=input.org_id,
                lead_id=lead.id,
                kind=TimelineKind.CALL,
                summary=f"Call attempts exhausted ({input.attempts}); escalated to a person",
                data={"escalation_id": escalation.id},
            )
            return escalation.id

    @activity.defn(name="escalation_ladder")
    def escalation_ladder(self, input: LadderInput) -> str:
        """The id of the item's Escalation workflow (one per thread)."""
        with recording(self._engine) as session:
            return ladder_of(session, org_id=input.org_id, escalation_id=input.escalation_id)

    def _placed(self, call: Call, placed: PlacedCall) -> Call:
        status = CallStatus.SIMULATED if placed.status == "simulated" else CallStatus.QUEUED
        return self._mark(call, status=status, provider_call_id=placed.call_id)

    def _mark(
        self,
        call: Call,
        *,
        status: CallStatus | None = None,
        provider_call_id: str | None = None,
        error: str | None = None,
        attempted: bool = False,
    ) -> Call:
        with recording(self._engine) as session:
            return mark_call(
                session,
                call_id=call.id,
                status=status,
                provider_call_id=provider_call_id,
                error=error,
                attempted=attempted,
            )


def _result(call: Call, *, repeated: bool) -> PlaceCallResult:
    return PlaceCallResult(
        call_id=call.id,
        status=CallStatus(call.status),
        provider_call_id=call.provider_call_id,
        repeated=repeated,
    )
