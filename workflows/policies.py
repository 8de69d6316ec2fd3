"""Timeouts and retry policies shared by the workflows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
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

#: Patch id: database writes became local activities (histories before it use regular ones).
LOCAL_RECORDS_PATCH = "local-record-activities"


async def run_record(activity: Callable[[Any, Any], Any], arg: Any, *, summary: str) -> Any:
    """Run a database-write activity: a local activity in new runs, a regular one in old ones.

    These writes take milliseconds, so running them in the worker (no task-queue round trip
    through the server) halves the server work per lead. Runs that started before this change
    scheduled them as regular activities, and keep doing so on replay.
    """
    if workflow.patched(LOCAL_RECORDS_PATCH):
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=summary,
        )
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
        summary=summary,
    )
