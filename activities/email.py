"""Email through Resend's SDK (``Emails.send``), behind the ``Sender`` Protocol."""

from __future__ import annotations

from datetime import datetime

import resend
from resend.exceptions import ResendError
from resend.http_client_requests import RequestsClient
from temporalio.exceptions import ApplicationError

from activities.errors import InvalidRecipient, ProviderNotConfigured, provider_unavailable
from activities.senders import Outbound, ProviderReceipt
from models.values import MessageStatus

#: Seconds a call may take: inside the activity's 30 s start-to-close, so an attempt never
#: outlives the retry that follows it.
REQUEST_TIMEOUT_S = 10


class _BoundedClient(RequestsClient):
    """Resend's requests client with keepwarm's timeout."""


class ResendEmail:
    """Sends email through one Resend account, with the message's key as ``Idempotency-Key``."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """Configure the SDK (it keeps its settings module-wide, so one account per process)."""
        self._api_key = api_key
        self._api_url = base_url.rstrip("/") if base_url else resend.api_url
        self._configure()

    def _configure(self) -> None:
        # Set again before each call, so nothing else in the process can have moved them.
        resend.api_key = self._api_key
        resend.api_url = self._api_url
        if not isinstance(resend.default_http_client, _BoundedClient):
            resend.default_http_client = _BoundedClient(timeout=REQUEST_TIMEOUT_S)

    def send(self, message: Outbound) -> ProviderReceipt:
        """``Emails.send`` with one-click unsubscribe headers and tags naming the message."""
        if not message.sender:
            raise ProviderNotConfigured("no sender: set email_from with PATCH /v1/orgs/me")
        params: resend.Emails.SendParams = {
            "from": message.sender,
            "to": [message.to],
            "subject": message.subject or "",
            "text": message.body,
            "headers": dict(message.headers),
            "tags": [{"name": name, "value": value} for name, value in message.tags],
        }
        self._configure()
        try:
            sent = resend.Emails.send(params, options={"idempotency_key": message.idempotency_key})
        except ResendError as error:
            raise classify_resend(error) from None
        return ProviderReceipt(status=MessageStatus.SENT, provider_message_id=sent["id"])

    def reconcile(self, message: Outbound, *, attempted_at: datetime) -> ProviderReceipt | None:
        """Send again: Resend answers a repeated ``Idempotency-Key`` with the first email."""
        return None


def classify_resend(error: ResendError) -> ApplicationError:
    """A Resend failure as a named error: validation final, rate limits and outages retried."""
    try:
        status = int(error.code)
    except (TypeError, ValueError):
        status = 0
    if status == 409 and error.error_type == "concurrent_idempotent_requests":
        # The first attempt with this key is still being processed: ask again shortly.
        return provider_unavailable("Resend", status, getattr(error, "headers", None))
    if status == 422 or error.error_type in {"validation_error", "invalid_to_address"}:
        return InvalidRecipient(f"Resend refused the email: {error.error_type}")
    if status == 429 or status >= 500 or status == 0:
        return provider_unavailable("Resend", status, getattr(error, "headers", None))
    return ApplicationError(
        f"Resend refused the email ({status} {error.error_type})",
        type="ProviderRejected",
        non_retryable=True,
    )
