"""Business failures, raised as non-retryable application errors.

A provider blip is retried by Temporal with backoff; these are not, so a bad phone number
or a missing sender doesn't retry forever.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ApplicationError


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


#: A provider asking for more than this is waited for this long and asked again.
MAX_RETRY_AFTER = timedelta(minutes=5)


def provider_unavailable(
    provider: str,
    status: int,
    headers: Mapping[str, str] | None = None,
    *,
    default_delay: timedelta | None = None,
) -> ApplicationError:
    """A retryable failure (5xx, 429, no answer), honouring the provider's ``Retry-After``
    (else ``default_delay``, else Temporal's backoff)."""
    delay = _retry_after(headers or {}) or default_delay
    return ApplicationError(
        f"{provider} answered {status or 'nothing'}; will retry",
        type="ProviderUnavailable",
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
