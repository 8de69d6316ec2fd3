"""Timeouts and retry policies shared by the workflows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.messages import MessageActivities, SendMessageInput
from models.rules.pacing import PACE_REASON
from models.rules.takeover import HOLD_REASON

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
        "SendDeferred",
    ],
)
#: Times one touch may be held back by the compliance gate before it is given up.
MAX_DEFERRALS = 20

#: The shortest wait for a sender's turn (``models.rules.pacing``).
PACE_MIN_WAIT = timedelta(milliseconds=50)

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


def deferred_until(error: ActivityError) -> tuple[datetime, str] | None:
    """When and why the compliance gate held a send back, if that is why it failed."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == "SendDeferred":
        until, reason = cause.details[:2]
        return datetime.fromisoformat(str(until)), str(reason)
    return None


async def send_touch(
    input: SendMessageInput,
    *,
    summary: str,
    cancelled: Callable[[], bool],
    on_hold: Callable[[datetime, str], None],
    hold_until: datetime | None = None,
    hold_reason: str | None = None,
    woken: Callable[[], int] | None = None,
) -> bool:
    """Send one automated touch through the compliance gate.

    A touch the gate holds back (quiet hours, touch budget, a takeover) waits on a durable
    timer named after the reason, then is tried again with the same key; ``on_hold`` hears
    of each wait, and a change of ``woken()`` (a takeover released) ends a wait early.
    ``False`` if ``cancelled`` became true while waiting, the gate held it back
    ``MAX_DEFERRALS`` times, or a sequence step could reach the person on no channel (skipped,
    with a note on the timeline); other failures raise ``ActivityError`` as usual.
    ``hold_until`` and ``hold_reason`` are the workflow's pre-check: waited out first.
    """
    if hold_until is not None and not await wait_out(
        (hold_until, hold_reason or "held back"),
        cancelled=cancelled,
        on_hold=on_hold,
        woken=woken,
    ):
        return False
    deferrals = 0
    while deferrals < MAX_DEFERRALS:
        try:
            result = await workflow.execute_activity_method(
                MessageActivities.send_message,
                input,
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_DEADLINE,
                retry_policy=SEND_RETRY,
                summary=summary,
            )
            return result.skipped is None
        except ActivityError as error:
            hold = deferred_until(error)
            if hold is None:
                raise
        # A takeover lasts as long as its operator keeps writing, and a sender's queue as
        # long as its backlog: neither's holds count.
        if not hold[1].startswith((HOLD_REASON, PACE_REASON)):
            deferrals += 1
        if not await wait_out(hold, cancelled=cancelled, on_hold=on_hold, woken=woken):
            return False
    workflow.logger.warning("touch %s held back %d times; given up", summary, MAX_DEFERRALS)
    return False


async def wait_out(
    hold: tuple[datetime, str],
    *,
    cancelled: Callable[[], bool],
    on_hold: Callable[[datetime, str], None],
    woken: Callable[[], int] | None = None,
) -> bool:
    """Wait on a durable timer until the gate lets the touch go, or ``woken()`` changes
    (the hold may be over sooner: ask the gate again); ``False`` if cancelled."""
    until, reason = hold
    on_hold(until, reason)
    wakes = woken() if woken is not None else 0
    # A sender's turn may be a fraction of a second away (a sender paced at 10 a second);
    # only pace holds, which no history before them has, wait less than a second.
    shortest = PACE_MIN_WAIT if reason.startswith(PACE_REASON) else timedelta(seconds=1)
    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(
            lambda: cancelled() or (woken is not None and woken() != wakes),
            timeout=max(until - workflow.now(), shortest),
            timeout_summary=f"held back: {reason}",
        )
    return not cancelled()
