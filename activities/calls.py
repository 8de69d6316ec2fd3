"""The call activity: an AI voice call is placed once per key, like a message is sent once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import ProviderNotConfigured, SendFailed
from activities.records import recording
from activities.voice import CALL_KEY, CallPlacer, CallRequest, PlacedCall
from models import channels
from models.tables import Call
from models.values import CallStatus, ProviderMode

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

        Vapi has no idempotency key: an attempt that may have reached Vapi is reconciled by
        listing recent calls and matching the key carried in their metadata.
        """
        workflow_id = activity.info().workflow_id or ""
        with recording(self._engine) as session:
            claim = channels.claim_call(
                session,
                org_id=input.org_id,
                lead_id=input.lead_id,
                workflow_id=workflow_id,
                attempt=input.attempt,
                idempotency_key=input.idempotency_key,
            )
        call = claim.call
        if call.status == CallStatus.FAILED:
            raise SendFailed(call.error or "an earlier attempt failed")
        if call.status != CallStatus.PENDING:
            return _result(call, repeated=True)
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
            return channels.mark_call(
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
