"""What a workflow that sends transactional messages (a visit's, a payment's) keeps: which
steps are done, which the quiet hours hold back and until when, and one send that records
the outcome. Used inside workflow code only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.messages import AppointmentMessageResult
    from workflows.policies import SEND_DEADLINE, SEND_RETRY, SEND_TIMEOUT, deferred_until


class StepLog:
    """Steps sent, skipped (and why) and held back, by their key step (``confirmation``,
    ``reminder-v2-86400``, ``overdue``...)."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.sent: list[str] = []
        self.skipped: list[str] = []
        #: Steps the quiet hours held back, and until when.
        self.held: dict[str, datetime] = {}

    def due_at(self, step: str, due: datetime) -> datetime:
        """When ``step`` (due ``due``) may go: later if the quiet hours held it back."""
        return max(due, self.held.get(step, due))

    async def send(self, activity: Callable[[Any, Any], Any], arg: Any, *, step: str) -> None:
        """Run the send activity for ``step``. Held back by quiet hours: due again then. A
        send that failed for good is on the lead's timeline; the workflow goes on."""
        try:
            result: AppointmentMessageResult = await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_DEADLINE,
                retry_policy=SEND_RETRY,
                summary=step,
            )
        except ActivityError as error:
            hold = deferred_until(error)
            if hold is not None and hold[0] > workflow.now():
                self.held[step] = hold[0]
                return
            workflow.logger.warning("message %s failed: %s", step, error)
            result = AppointmentMessageResult(skipped=f"failed: {error.cause or error}")
        self.done.add(step)
        (self.sent if result.skipped is None else self.skipped).append(step)
