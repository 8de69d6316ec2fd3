"""The channel adapters' common shape: a Protocol per channel and the dry-run adapter.

Live adapters on the provider SDKs implement the same Protocols.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from models.values import MessageStatus


@dataclass(frozen=True, kw_only=True)
class Outbound:
    """One message to hand to a provider."""

    to: str
    sender: str | None
    body: str
    subject: str | None
    idempotency_key: str
    #: Where the provider reports delivery (Twilio), built from ``KEEPWARM_PUBLIC_URL``.
    status_callback: str | None = None
    #: Extra headers (email: ``List-Unsubscribe``, ``List-Unsubscribe-Post``).
    headers: tuple[tuple[str, str], ...] = ()
    #: Provider tags naming the lead and message (email).
    tags: tuple[tuple[str, str], ...] = ()
    #: WhatsApp outside the 24-hour session: the Content API template (``HX...``) sent
    #: instead of ``body``, and its variables as a JSON object (``{"1": "Ada"}``).
    content_sid: str | None = None
    content_variables: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProviderReceipt:
    """What the provider said when it took the message."""

    status: MessageStatus
    provider_message_id: str | None


class Sender(Protocol):
    """Sends one message on one channel."""

    def send(self, message: Outbound) -> ProviderReceipt:
        """Hand ``message`` to the provider; raise on failure."""
        ...

    def reconcile(self, message: Outbound, *, attempted_at: datetime) -> ProviderReceipt | None:
        """Did an earlier attempt (made at ``attempted_at``) get ``message`` to the provider?

        Asked before a retry sends again. ``None`` means "send": nothing was found, or the
        provider dedupes by ``Idempotency-Key`` itself so sending again is safe.
        """
        ...


class DryRunSender:
    """Sends nothing: the message row written before the call is the record (``simulated``).

    ``latency`` makes each send take that long, like a provider call would (demos, crash tests).
    """

    def __init__(self, *, latency: timedelta = timedelta(0)) -> None:
        """Answer after ``latency``."""
        self._latency = latency.total_seconds()

    def send(self, message: Outbound) -> ProviderReceipt:
        """Accept ``message`` without it leaving the machine."""
        if self._latency:
            time.sleep(self._latency)
        return ProviderReceipt(status=MessageStatus.SIMULATED, provider_message_id=None)

    def reconcile(self, message: Outbound, *, attempted_at: datetime) -> ProviderReceipt | None:
        """Nothing left the machine, so simulating again is harmless."""
        return None
