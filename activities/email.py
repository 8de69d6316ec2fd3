"""Email through Resend's SDK (``Emails.send``), behind the ``Sender`` Protocol."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime

import resend
from resend.exceptions import ResendError
from resend.http_client_requests import RequestsClient
from temporalio.exceptions import ApplicationError

from activities.errors import (
    InvalidRecipient,
    ProviderNotConfigured,
    ProviderRejected,
    labelled,
    provider_unavailable,
)
from activities.provider_errors import RETRIED, classify
from activities.senders import Outbound, ProviderReceipt
from models.values import MessageStatus, ProviderHealth, WebhookProvider

#: Seconds a call may take: inside the activity's 30 s start-to-close, so an attempt never
#: outlives the retry that follows it.
REQUEST_TIMEOUT_S = 10
#: A shorter timeout for the calls made in this context (a probe), else ``REQUEST_TIMEOUT_S``.
_TIMEOUT_S: ContextVar[float | None] = ContextVar("resend_timeout_s", default=None)


class _BoundedClient(RequestsClient):
    """Resend's requests client with keepwarm's timeout (shorter inside ``resend_timeout``).

    The SDK keeps one client for the whole process, so the timeout is read per call rather
    than set on the shared client, where a probe would shorten a concurrent send's.
    """

    @property  # type: ignore[override]
    def _timeout(self) -> float:
        override = _TIMEOUT_S.get()
        return override if override is not None else self._default_timeout

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._default_timeout = value


@contextlib.contextmanager
def resend_timeout(seconds: float) -> Iterator[None]:
    """Resend calls made inside give up after ``seconds`` (this thread only)."""
    token = _TIMEOUT_S.set(seconds)
    try:
        yield
    finally:
        _TIMEOUT_S.reset(token)


def use_resend(*, api_key: str, api_url: str) -> None:
    """Point the SDK's module-wide settings at the account (set again before each call, so
    nothing else in the process can have moved them)."""
    resend.api_key = api_key
    resend.api_url = api_url
    if not isinstance(resend.default_http_client, _BoundedClient):
        resend.default_http_client = _BoundedClient(timeout=REQUEST_TIMEOUT_S)


class ResendEmail:
    """Sends email through one Resend account, with the message's key as ``Idempotency-Key``."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """Configure the SDK (it keeps its settings module-wide, so one account per process)."""
        self._api_key = api_key
        self._api_url = base_url.rstrip("/") if base_url else resend.api_url
        self._configure()

    def _configure(self) -> None:
        use_resend(api_key=self._api_key, api_url=self._api_url)

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


def resend_status(error: ResendError) -> int | None:
    """The HTTP status of a Resend failure; ``None`` when no answer came (the SDK reports its
    own transport failures as a 500 ``HttpClientError``)."""
    if error.error_type == "HttpClientError":
        return None
    try:
        return int(error.code) or None
    except (TypeError, ValueError):
        return None


def classify_resend(error: ResendError) -> ApplicationError:
    """A Resend failure as a named error: validation final; rate limits, outages, rejected
    credentials and a suspended account retried (``activities.provider_errors.classify``)."""
    status = resend_status(error)
    headers = getattr(error, "headers", None)
    if status == 409 and error.error_type == "concurrent_idempotent_requests":
        # The first attempt with this key is still being processed: ask again shortly.
        return provider_unavailable(WebhookProvider.RESEND, status, headers)
    health = classify(
        WebhookProvider.RESEND,
        status_code=status,
        error_code=error.error_type,
        message=str(error.message),
    )
    if health in RETRIED:
        return provider_unavailable(
            WebhookProvider.RESEND, status, headers, code=error.error_type, health=health
        )
    refusal = ProviderHealth.BUSINESS_REFUSAL
    if status == 422 or error.error_type in {"validation_error", "invalid_to_address"}:
        return InvalidRecipient(labelled(refusal, f"Resend refused the email: {error.error_type}"))
    return ProviderRejected(
        labelled(refusal, f"Resend refused the email ({status} {error.error_type})"),
        provider=WebhookProvider.RESEND,
    )
