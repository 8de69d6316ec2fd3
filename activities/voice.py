"""AI voice calls behind a small Protocol; the Vapi adapter is in ``activities.vapi_calls``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class CallRequest:
    """One outbound call for the org's assistant to place."""

    to: str
    customer_name: str | None
    assistant_id: str | None
    phone_number_id: str | None
    #: Comes back in Vapi's end-of-call report: the workflow id, the attempt, the call key.
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class PlacedCall:
    """Vapi's id and status for a call it accepted."""

    call_id: str
    status: str


@dataclass(frozen=True, kw_only=True)
class EndedCall:
    """How a call ended, as the provider tells it when asked (no report came)."""

    ended_reason: str
    summary: str | None
    duration_s: float | None
    cost: float | None
    ended_at: datetime | None


#: Seconds a provider call may take: well inside the activity's 30 s start-to-close, so an
#: attempt never outlives the retry that follows it.
REQUEST_TIMEOUT_S = 10.0
#: The metadata entry that names the call (its idempotency key) in Vapi.
CALL_KEY = "call_key"
#: Reconciliation lists calls created no earlier than this before the crashed attempt.
RECONCILE_SLACK = timedelta(minutes=2)
RECONCILE_LOOKBACK = 100


class CallPlacer(Protocol):
    """Places one outbound call."""

    def place(self, call: CallRequest) -> PlacedCall:
        """Ask the provider to call; raise on failure."""
        ...

    def reconcile(self, call: CallRequest, *, attempted_at: datetime) -> PlacedCall | None:
        """The call an earlier attempt (begun at ``attempted_at``) placed, if any."""
        ...

    def lookup(self, provider_call_id: str) -> EndedCall | None:
        """How the call ended, if it has; ``None`` while it is still going (or unknown)."""
        ...


class DryRunCalls:
    """Dials nothing: the call row is the record (``simulated``)."""

    def __init__(self, *, latency: timedelta = timedelta(0)) -> None:
        """Answer after ``latency``."""
        self._latency = latency.total_seconds()

    def place(self, call: CallRequest) -> PlacedCall:
        """Accept the call without dialling."""
        if self._latency:
            time.sleep(self._latency)
        return PlacedCall(call_id=f"simulated-{uuid.uuid4()}", status="simulated")

    def reconcile(self, call: CallRequest, *, attempted_at: datetime) -> PlacedCall | None:
        """Nothing was dialled, so simulating again is harmless."""
        return None

    def lookup(self, provider_call_id: str) -> EndedCall | None:
        """A simulated call has no ending to report."""
        return None
