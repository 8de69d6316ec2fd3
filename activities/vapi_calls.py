"""AI voice calls through Vapi's SDK (``calls.create``), behind the ``CallPlacer`` Protocol.

Its own module because the Vapi SDK takes seconds to import: only live workers load it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError
from vapi import AssistantOverrides, CreateCustomerDto, Vapi
from vapi.core.api_error import ApiError as VapiApiError

from activities.errors import InvalidRecipient, ProviderNotConfigured, provider_unavailable
from activities.voice import (
    CALL_KEY,
    RECONCILE_LOOKBACK,
    RECONCILE_SLACK,
    REQUEST_TIMEOUT_S,
    CallRequest,
    EndedCall,
    PlacedCall,
)


class VapiCalls:
    """Places calls through one Vapi account. Vapi takes no idempotency key: the caller
    reconciles a crashed attempt by looking the call up (metadata) before placing another."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """A client for the account; ``base_url`` points the SDK at another host."""
        # Well inside the activity's 30 s start-to-close, so no attempt outlives its retry.
        if base_url:
            self._client = Vapi(token=api_key, base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        else:
            self._client = Vapi(token=api_key, timeout=REQUEST_TIMEOUT_S)

    def place(self, call: CallRequest) -> PlacedCall:
        """``calls.create`` with the org's assistant and number, SDK retries off."""
        if not call.assistant_id or not call.phone_number_id:
            raise ProviderNotConfigured(
                "set vapi_assistant_id and vapi_phone_number_id with PATCH /v1/orgs/me"
            )
        metadata = dict(call.metadata)
        try:
            created = self._client.calls.create(
                assistant_id=call.assistant_id,
                phone_number_id=call.phone_number_id,
                customer=CreateCustomerDto(number=call.to, name=call.customer_name),
                assistant_overrides=AssistantOverrides(metadata=metadata),
                # Temporal owns retries; the metadata also rides at the top level, where
                # Vapi's server messages echo it.
                request_options={
                    "max_retries": 0,
                    "additional_body_parameters": {"metadata": metadata},
                },
            )
        except VapiApiError as error:
            raise classify_vapi(error) from None
        return PlacedCall(call_id=created.id, status=str(created.status or "queued"))

    def reconcile(self, call: CallRequest, *, attempted_at: datetime) -> PlacedCall | None:
        """Find a call an earlier attempt placed: Vapi takes no idempotency key, but it keeps
        the metadata, which names the call's key."""
        key = dict(call.metadata).get(CALL_KEY)
        if key is None:
            return None
        try:
            recent = self._client.calls.list(
                assistant_id=call.assistant_id,
                created_at_gt=attempted_at - RECONCILE_SLACK,
                limit=RECONCILE_LOOKBACK,
                request_options={"max_retries": 0},
            )
        except VapiApiError as error:
            raise classify_vapi(error) from None
        for found in recent:
            if _metadata(found).get(CALL_KEY) == key:
                return PlacedCall(call_id=found.id, status=str(found.status or "queued"))
        return None

    def lookup(self, provider_call_id: str) -> EndedCall | None:
        """``calls.get``: the call's ending once Vapi says it has ``ended``."""
        try:
            found = self._client.calls.get(provider_call_id, request_options={"max_retries": 0})
        except VapiApiError as error:
            if error.status_code == 404:
                return None
            raise classify_vapi(error) from None
        if found.status != "ended":
            return None
        duration = (
            (found.ended_at - found.started_at).total_seconds()
            if found.ended_at and found.started_at
            else None
        )
        analysis = found.analysis
        return EndedCall(
            ended_reason=str(found.ended_reason or "unknown"),
            summary=analysis.summary if analysis is not None else None,
            duration_s=duration,
            cost=found.cost,
            ended_at=found.ended_at,
        )


def _metadata(call: Any) -> dict[str, Any]:
    """The call's metadata: top level where Vapi echoes it, else the assistant overrides'."""
    top = getattr(call, "metadata", None)
    if isinstance(top, dict) and top:
        return top
    overrides = getattr(call, "assistant_overrides", None)
    nested = getattr(overrides, "metadata", None) if overrides is not None else None
    return nested if isinstance(nested, dict) else {}


def classify_vapi(error: VapiApiError) -> ApplicationError:
    """A Vapi failure as a named error: bad requests final, rate limits and outages retried."""
    status = error.status_code or 0
    if status == 429 or status >= 500 or status == 0:
        return provider_unavailable("Vapi", status, error.headers)
    if status in {400, 422}:
        return InvalidRecipient(f"Vapi refused the call ({status})")
    return ApplicationError(
        f"Vapi refused the call ({status})", type="ProviderRejected", non_retryable=True
    )
