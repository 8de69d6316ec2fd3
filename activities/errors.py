"""Business failures, raised as non-retryable application errors.

A provider blip is retried by Temporal with backoff; these are not, so a bad phone number
or a missing sender doesn't retry forever.
"""

from __future__ import annotations

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
