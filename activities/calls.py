"""The call activity: an AI voice call is placed once per key, like a message is sent once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import OptedOut, ProviderNotConfigured, SendFailed
from activities.provider_errors import GAVE_UP, final_attempt
from activities.records import held_back, record
from activities.voice import CALL_KEY, CallPlacer, CallRequest, PlacedCall
from models.payloads import CallPlan
from models.rules.compliance import Deferred
from models.services.calls import (
    CallClaim,
    CallReport,
    claim_call,
    escalate_unanswered_calls,
    plan_call,
    record_call_report,
)
from models.store.calls import call_of, mark_call
from models.store.escalations import ladder_of
from models.tables import Call, utcnow
from models.values import CallOutcome, CallStatus, Channel, ProviderMode

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        claim = self._claim_call(input)
        call = claim.call
        if call.status == CallStatus.FAILED:
            raise SendFailed(call.error or "an earlier attempt failed")
        if call.status != CallStatus.PENDING:
            return _result(call, repeated=True)
        placer = self._placer_for(call, consent=claim.consent)
        request = self._call_request(call, claim=claim)
        if call.attempted_at is not None:
            attempted_at = call.attempted_at
            found = self._ask(call, lambda: placer.reconcile(request, attempted_at=attempted_at))
            if found is not None:
                log.info("call %s was placed by an earlier attempt; recording it", call.id)
                return _result(self._placed(call, found), repeated=True)
        else:
            call = self._mark(call, attempted=True)
        placed = self._ask(call, lambda: placer.place(request))
        return _result(self._placed(call, placed), repeated=False)

    def _ask(self, call: Call, ask: Callable[[], T]) -> T:
        """Make a provider call for ``call``; a failure that won't be retried (final, or
        retryable with no attempt left before the deadline) is recorded on the row with its
        class. A provider that is down, rejects the key or has suspended the account is
        retried (``ProviderUnavailable``) and leaves the row pending meanwhile."""
        try:
            return ask()
        except ApplicationError as error:
            if error.non_retryable:
                self._mark(call, status=CallStatus.FAILED, error=error.message)
            elif final_attempt(error, info=activity.info(), now=utcnow()):
                self._mark(call, status=CallStatus.FAILED, error=error.message + GAVE_UP)
            raise

    def _claim_call(self, input: PlaceCallInput) -> CallClaim:
        """The call's row, claimed in a transaction of its own (``SendDeferred``, noted on the
        lead's timeline, while the gate holds it back)."""
        info = activity.info()
        # The workflow's time (not the worker's clock) is when the gate is asked.
        now = info.current_attempt_scheduled_time or utcnow()
        try:
            claim = record(
                self._engine,
                claim_call,
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
                key=input.idempotency_key,
            ) from None
        return claim

    def _placer_for(self, call: Call, *, consent: bool | None) -> CallPlacer:
        """The adapter that places the pending call; the row marked failed and the error raised
        if the person opted out or this worker has no adapter for the call's mode."""
        if consent is False:
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
        return placer

    def _call_request(self, call: Call, *, claim: CallClaim) -> CallRequest:
        """What the adapter dials, the call's key in its metadata; the row marked failed and
        ``SendFailed`` raised if the contact has no phone number."""
        if not call.to_address:
            self._mark(call, status=CallStatus.FAILED, error="the contact has no phone number")
            raise SendFailed("the contact has no phone number")
        return CallRequest(
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

    @activity.defn(name="look_up_call")
    def look_up_call(self, input: LookUpCallInput) -> CallOutcome | None:
        """How a call ended, from its row, else from the provider (recorded as if its report
        had come); ``None`` while the provider says it is still going."""
        call = record(self._engine, call_of, org_id=input.org_id, call_id=input.call_id)
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
        recorded = record(self._engine, record_call_report, org_id=input.org_id, report=report)
        assert recorded is not None and recorded.outcome is not None
        return CallOutcome(recorded.outcome)

    @activity.defn(name="plan_call")
    def plan_call(self, input: PlanCallInput) -> CallPlan:
        """The org's call policy now, and when attempt ``attempt`` may go (calling window,
        budget and call cap in the recipient's local time; a retry may move to a part of the
        day the org's calls are clearly answered more in)."""
        return record(
            self._engine,
            plan_call,
            org_id=input.org_id,
            lead_id=input.lead_id,
            attempt=input.attempt,
            earliest=input.earliest,
        )

    @activity.defn(name="calls_exhausted")
    def calls_exhausted(self, input: CallsExhaustedInput) -> str:
        """Open an escalation (the needs-attention queue) with the lead's call history, once
        per loop; its id."""
        return record(
            self._engine,
            escalate_unanswered_calls,
            org_id=input.org_id,
            lead_id=input.lead_id,
            call_loop_workflow_id=input.workflow_id,
            attempts=input.attempts,
        )

    @activity.defn(name="escalation_ladder")
    def escalation_ladder(self, input: LadderInput) -> str:
        """The id of the item's Escalation workflow (one per thread)."""
        return record(
            self._engine, ladder_of, org_id=input.org_id, escalation_id=input.escalation_id
        )

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
        return record(
            self._engine,
            mark_call,
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
