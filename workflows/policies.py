"""Timeouts and retry policies shared by the workflows."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

#: Database writes: quick, retried until the database is back.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["RecordMissing", "RecordInvalid"],
)
#: Provider calls: each attempt bounded by the provider's own timeouts; blips (5xx, 429,
#: timeouts) retried with backoff up to every 10 s (or as the provider's Retry-After says),
#: so a send goes out within seconds of an outage ending, and given up after SEND_DEADLINE.
SEND_TIMEOUT = timedelta(seconds=30)
SEND_DEADLINE = timedelta(hours=1)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[
        "InvalidRecipient",
        "OptedOut",
        "ProviderNotConfigured",
        "ProviderRejected",
        "SendFailed",
        "RecordMissing",
        "RecordInvalid",
    ],
)
