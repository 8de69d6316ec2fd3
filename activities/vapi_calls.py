"""AI voice calls through Vapi's SDK (``calls.create``), behind the ``CallPlacer`` Protocol,
and the probe of the Vapi key (``phone_numbers.list``).

Its own module because the Vapi SDK takes seconds to import: only workers with a Vapi key
load it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError
from vapi import AssistantOverrides, CreateCustomerDto, Vapi
from vapi.core.api_error import ApiError as VapiApiError

from activities.errors import (
    InvalidRecipient,
    ProviderNotConfigured,
    ProviderRejected,
    labelled,
    provider_unavailable,
)
from activities.probes import PROBE_TIMEOUT_S, ProbeResult, probe_failed, probe_result
from activities.provider_errors import RETRIED, classify
from activities.voice import (
    CALL_KEY,
    RECONCILE_LOOKBACK,
    RECONCILE_SLACK,
    REQUEST_TIMEOUT_S,
    CallRequest,
    EndedCall,
    PlacedCall,
)
from models.values import ProviderHealth, WebhookProvider


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
        except httpx.TransportError:
            # No answer (a timeout may hide a call Vapi placed: the retry reconciles).
            raise provider_unavailable(WebhookProvider.VAPI, None) from None
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
        except httpx.TransportError:
            raise provider_unavailable(WebhookProvider.VAPI, None) from None
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
        except httpx.TransportError:
            raise provider_unavailable(WebhookProvider.VAPI, None) from None
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
    """A Vapi failure as a named error: bad requests final; rate limits, outages, a rejected
    key and an account that can't pay retried (``activities.provider_errors.classify``)."""
    status = error.status_code or None
    health = classify(WebhookProvider.VAPI, status_code=status)
    if health in RETRIED:
        return provider_unavailable(WebhookProvider.VAPI, status, error.headers, health=health)
    refusal = ProviderHealth.BUSINESS_REFUSAL
    if status in {400, 422}:
        return InvalidRecipient(labelled(refusal, f"Vapi refused the call ({status})"))
    return ProviderRejected(
        labelled(refusal, f"Vapi refused the call ({status})"), provider=WebhookProvider.VAPI
    )


class VapiProbe:
    """Checks the Vapi key with one cheap authenticated read: ``phone_numbers.list``."""

    provider = WebhookProvider.VAPI

    def __init__(
        self, *, api_key: str, base_url: str | None = None, timeout: float = PROBE_TIMEOUT_S
    ) -> None:
        """A client for the account with the probe's short timeout."""
        if base_url:
            self._client = Vapi(token=api_key, base_url=base_url, timeout=timeout)
        else:
            self._client = Vapi(token=api_key, timeout=timeout)

    def probe(self) -> ProbeResult:
        """List one phone number: ``ok`` if Vapi answers, else what its error says."""
        started = time.monotonic()
        try:
            self._client.phone_numbers.list(limit=1, request_options={"max_retries": 0})
        except VapiApiError as error:
            return probe_failed(self.provider, started=started, status_code=error.status_code)
        except httpx.TransportError as error:
            return probe_failed(self.provider, started=started, status_code=None, error=error)
        return probe_result(
            self.provider,
            started=started,
            outcome=ProviderHealth.OK,
            status_code=200,
            detail="Vapi accepted the key (phone numbers listed)",
        )
