"""The Call workflow: one AI voice call to a lead, placed once, waiting for Vapi's report.

The call-retry loop (attempt caps, calling windows, escalation) builds on this.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities, PlaceCallInput, PlaceCallResult
    from models.values import CallStatus
    from workflows.payloads import CallEnded, CallInput, CallResult
    from workflows.policies import SEND_DEADLINE, SEND_RETRY, SEND_TIMEOUT

__all__ = ["CallEnded", "CallInput", "CallResult", "CallWorkflow"]

#: How long to wait for the end-of-call report before giving up on hearing how it went.
REPORT_TIMEOUT = timedelta(hours=1)


@workflow.defn(name="Call")
class CallWorkflow:
    """Place the call (``place_call``, keyed ``{workflow_id}/call-{attempt}``), then wait for
    the end-of-call report that the Vapi webhook signals here."""

    def __init__(self) -> None:
        """Nothing has ended yet."""
        self._ended: CallEnded | None = None

    @workflow.run
    async def run(self, input: CallInput) -> CallResult:
        """Place the call and wait for its report."""
        placed: PlaceCallResult = await workflow.execute_activity_method(
            CallActivities.place_call,
            PlaceCallInput(
                org_id=input.org_id,
                lead_id=input.lead_id,
                attempt=input.attempt,
                idempotency_key=f"{workflow.info().workflow_id}/call-{input.attempt}",
            ),
            start_to_close_timeout=SEND_TIMEOUT,
            schedule_to_close_timeout=SEND_DEADLINE,
            retry_policy=SEND_RETRY,
            summary=f"place call (attempt {input.attempt})",
        )
        if placed.status == CallStatus.SIMULATED:
            return CallResult(call_id=placed.call_id, ended_reason=None, status=placed.status)
        workflow.set_current_details("**Waiting:** for Vapi's end-of-call report")
        try:
            await workflow.wait_condition(
                lambda: self._ended is not None,
                timeout=REPORT_TIMEOUT,
                timeout_summary="end-of-call report",
            )
        except TimeoutError:
            return CallResult(call_id=placed.call_id, ended_reason=None, status=placed.status)
        assert self._ended is not None
        return CallResult(
            call_id=placed.call_id, ended_reason=self._ended.ended_reason, status=CallStatus.ENDED
        )

    @workflow.signal(name="call_ended")
    def call_ended(self, report: CallEnded) -> None:
        """The end-of-call report (the first one counts)."""
        if self._ended is None:
            self._ended = report
