"""RetrySend: a failed message sent again at a person's request, once."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import MessageActivities, RetrySendInput
    from workflows.policies import (
        MAX_DEFERRALS,
        SEND_DEADLINE,
        SEND_RETRY,
        SEND_TIMEOUT,
        deferred_until,
        wait_out,
    )

__all__ = ["RETRY_SEND_WORKFLOW", "RetrySendInput", "RetrySendResult", "RetrySendWorkflow"]

RETRY_SEND_WORKFLOW = "RetrySend"


def retry_send_workflow_id(message_id: str) -> str:
    """``retry-{message}``: one retry of a message at a time; two clicks find the same run."""
    return f"retry-{message_id}"


@dataclass(frozen=True, kw_only=True)
class RetrySendResult:
    """The message's status when the retry ended (``queued``, ``sent``, ``failed``...), and
    why it didn't go, if it didn't."""

    status: str
    reason: str | None = None


@workflow.defn(name=RETRY_SEND_WORKFLOW)
class RetrySendWorkflow:
    """``retry-{message}``, started by ``POST /v1/messages/{id}/retry`` once the API found the
    message failed and allowed to go again:

    1. ``retry_send`` asks the retry rule again under the message's lock (consent withdrawn
       since fails it for good), puts the row back to ``pending`` and sends it through the
       same path as every send: the row's own key, and an earlier attempt that may have
       reached the provider reconciled before anything is sent. Provider blips are retried
       up to the send's deadline, as for a first send.
    2. Held back by quiet hours (or, for an automated touch, a takeover), it waits on a
       durable timer until the window opens and asks again.

    A failure is on the message's row (and timeline); the workflow itself completes.
    """

    @workflow.run
    async def run(self, input: RetrySendInput) -> RetrySendResult:
        """Send it again; the message's status when done."""
        for _ in range(MAX_DEFERRALS):
            try:
                result = await workflow.execute_activity_method(
                    MessageActivities.retry_send,
                    input,
                    start_to_close_timeout=SEND_TIMEOUT,
                    schedule_to_close_timeout=SEND_DEADLINE,
                    retry_policy=SEND_RETRY,
                    summary="send the failed message again",
                )
                return RetrySendResult(status=str(result.status))
            except ActivityError as error:
                hold = deferred_until(error)
                if hold is None:
                    cause = error.cause
                    reason = cause.message if isinstance(cause, ApplicationError) else str(error)
                    workflow.logger.warning("retry of %s not sent: %s", input.message_id, reason)
                    return RetrySendResult(status="failed", reason=reason)
            await wait_out(
                hold,
                cancelled=lambda: False,
                on_hold=lambda until, reason: workflow.set_current_details(
                    f"**Held back:** {reason}"
                ),
            )
        return RetrySendResult(status="failed", reason="held back too many times")
