"""The Confirmation workflow: one answer to a STOP, START or HELP text, sent once."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.messages import MessageActivities
    from models.payloads import ConfirmationInput
    from workflows.policies import SEND_DEADLINE, SEND_RETRY, SEND_TIMEOUT

__all__ = ["ConfirmationInput", "ConfirmationWorkflow"]


@workflow.defn(name="Confirmation")
class ConfirmationWorkflow:
    """Started by the webhook with id ``confirm-{org}-{message}``: a redelivered keyword
    finds the same workflow, and the message row's key makes the send happen once."""

    @workflow.run
    async def run(self, input: ConfirmationInput) -> None:
        """Send the confirmation, retrying provider blips for up to an hour."""
        await workflow.execute_activity_method(
            MessageActivities.send_confirmation,
            input,
            start_to_close_timeout=SEND_TIMEOUT,
            schedule_to_close_timeout=SEND_DEADLINE,
            retry_policy=SEND_RETRY,
            summary=f"{input.kind.upper()} confirmation",
        )
