"""Business failures, raised as non-retryable application errors, and the one retryable
provider failure.

A provider blip is retried by Temporal with backoff; business failures are not, so a bad phone
number or a missing sender doesn't retry forever. A provider that rejects keepwarm's
credentials or has suspended the account is retried too (``ProviderUnavailable``): every send
would fail the same way until a person fixes the key, so none is burned as a failure meanwhile.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ApplicationError

from models.values import ProviderHealth, WebhookProvider


class InvalidRecipient(ApplicationError):
    """The address or number can't receive messages on this channel."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="InvalidRecipient", non_retryable=True)


class SendFailed(ApplicationError):
    """An earlier attempt of this send failed for good; it is not tried again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SendFailed", non_retryable=True)


class OptedOut(ApplicationError):
    """The recipient has opted out at the provider (Twilio 21610)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="OptedOut", non_retryable=True)


class SendDeferred(ApplicationError):
    """The compliance gate holds the touch back (quiet hours, touch budget) until a time.

    ``details`` are the time (ISO 8601) and the reason; the workflow waits on a durable timer
    until then and sends again with the same key.
    """

    def __init__(self, reason: str, until: datetime) -> None:
        super().__init__(reason, until.isoformat(), reason, type="SendDeferred", non_retryable=True)


class ProviderNotConfigured(ApplicationError):
    """The org or deployment lacks what this channel needs (a sender, credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="ProviderNotConfigured", non_retryable=True)


class RecordInvalid(ApplicationError):
    """The database refused a value (retrying would not change that)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="RecordInvalid", non_retryable=True)


class RecordMissing(ApplicationError):
    """A row the activity was told about does not exist (in that org)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="RecordMissing", non_retryable=True)


class ProviderRejected(ApplicationError):
    """The provider refused this one request (a business refusal: the account is fine).

    ``details`` are ``business_refusal`` and the provider.
    """

    def __init__(self, message: str, *, provider: WebhookProvider) -> None:
        super().__init__(
            message,
            ProviderHealth.BUSINESS_REFUSAL.value,
            provider.value,
            type="ProviderRejected",
            non_retryable=True,
        )


class ProviderUnavailable(ApplicationError):
    """The provider can't take requests now, for a reason time or a person will fix: it is down
    (5xx, 429, no answer), it rejected the credentials, or it suspended the account.

    Retryable: Temporal tries again with backoff within the send's deadline, so the message goes
    out once the provider, or the key, is back. ``details`` are the
    :class:`~models.values.ProviderHealth` value (``down``, ``credentials_rejected``,
    ``suspended``) and the provider; the message starts with the same class.
    """

    def __init__(
        self,
        message: str,
        *,
        health: ProviderHealth,
        provider: WebhookProvider,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(
            message,
            health.value,
            provider.value,
            type="ProviderUnavailable",
            next_retry_delay=next_retry_delay,
        )
        self.health = health
        self.provider = provider


#: A provider asking for more than this is waited for this long and asked again.
MAX_RETRY_AFTER = timedelta(minutes=5)
#: Between attempts while a provider rejects the credentials or has suspended the account: a
#: person has to act, so once a minute finds the fix soon enough (the message goes within a
#: minute of it) without asking the provider every few seconds for every waiting message.
ACCOUNT_RETRY_DELAY = timedelta(minutes=1)


def labelled(health: ProviderHealth, text: str) -> str:
    """``text`` prefixed with its class (``credentials_rejected: ...``), as error texts are
    recorded on message and call rows."""
    return f"{health.value}: {text}"


def provider_unavailable(
    provider: WebhookProvider,
    status: int | None,
    headers: Mapping[str, str] | None = None,
    *,
    code: int | str | None = None,
    health: ProviderHealth = ProviderHealth.DOWN,
    default_delay: timedelta | None = None,
) -> ProviderUnavailable:
    """A retryable failure of class ``health`` (``down`` unless told), honouring the provider's
    ``Retry-After`` (else ``default_delay``, else ``ACCOUNT_RETRY_DELAY`` for rejected
    credentials and a suspended account, else Temporal's backoff)."""
    delay = _retry_after(headers or {}) or default_delay
    if delay is None and health != ProviderHealth.DOWN:
        delay = ACCOUNT_RETRY_DELAY
    answer = f"{status}" if status else "nothing"
    if code is not None and code != "":
        answer += f" (code {code})"
    return ProviderUnavailable(
        labelled(health, f"{provider.value.title()} answered {answer}"),
        health=health,
        provider=provider,
        next_retry_delay=delay,
    )


def _retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """``Retry-After`` in seconds or as an HTTP date, capped; ``None`` if absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    try:
        delay = timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = max(timedelta(0), when - datetime.now(UTC))
    return min(delay, MAX_RETRY_AFTER)
