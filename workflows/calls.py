"""Voice calls: the CallRetry loop (attempt caps, calling windows, voicemail text-back,
escalation), and the single ``Call`` workflow of earlier releases, kept for runs in flight.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.calls import (
        CallActivities,
        CallsExhaustedInput,
        LadderInput,
        LookUpCallInput,
        PlaceCallInput,
        PlaceCallResult,
        PlanCallInput,
    )
    from activities.messages import SendMessageInput
    from models.ids import call_key
    from models.payloads import CallPlan
    from models.rules.calls import outcome_of
    from models.values import CallOutcome, CallStatus, Channel
    from workflows import search_attributes as sa
    from workflows.hold_clock import HoldClock
    from workflows.payloads import (
        CALL_RETRY_WORKFLOW,
        CALL_STOP_SIGNAL,
        CALLS_EXHAUSTED_SIGNAL,
        ESCALATION_WORKFLOW,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
        AutomationPaused,
        CallEnded,
        CallInput,
        CallResult,
        CallRetryInput,
        CallRetryProgress,
        CallRetryResult,
        CallRetryStop,
        CallsExhausted,
        EscalationInput,
    )
    from workflows.policies import (
        SEND_DEADLINE,
        SEND_RETRY,
        SEND_TIMEOUT,
        deferred_until,
        run_record,
        send_touch,
        wait_out,
    )

import contextlib

__all__ = [
    "CallEnded",
    "CallInput",
    "CallResult",
    "CallRetryInput",
    "CallRetryProgress",
    "CallRetryResult",
    "CallRetryStop",
    "CallRetryWorkflow",
    "CallWorkflow",
]

#: How long to wait for the end-of-call report before giving up on hearing how it went.
REPORT_TIMEOUT = timedelta(hours=1)


@workflow.defn(name="Call")
class CallWorkflow:
    """One call, no retries (superseded by ``CallRetry``; kept so runs in flight finish).

    Place the call (``place_call``, keyed ``{workflow_id}/call-{attempt}``), then wait for
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
                idempotency_key=call_key(workflow.info().workflow_id, input.attempt),
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


#: Patch id: an exhausted loop starts the escalation ladder (earlier runs only queued it).
ESCALATION_LADDER_PATCH = "calls-escalation-ladder"
#: How long to wait for an attempt's end-of-call report before asking Vapi how it went
#: (Vapi ends calls after ten minutes unless the assistant allows longer).
RETRY_REPORT_TIMEOUT = timedelta(minutes=30)
#: Times the loop asks Vapi about a call whose report never came before counting it failed.
REPORT_LOOKUPS = 3


@workflow.defn(name=CALL_RETRY_WORKFLOW)
class CallRetryWorkflow:
    """Call a lead until the call is answered, within the org's ``call_policy``.

    Each attempt is planned (``plan_call``: the calling window, touch budget and per-subject
    call cap in the recipient's local time; a retry, a part of the day the org's calls are
    clearly answered more in),
    waited for on a durable timer, placed through the compliance gate (``place_call``, keyed
    ``{key_prefix}/call-{n}``), then its end-of-call report is awaited (signal ``call_ended``;
    after ``RETRY_REPORT_TIMEOUT``, Vapi is asked). Answered ends the loop; an invalid number
    ends it without retry; voicemail sends one text-back SMS per sequence; ``max_attempts``
    unanswered opens an escalation and tells the Lead. A ``stop`` (a reply, a conversion, an
    opt-out) cancels pending attempts at once.
    """

    def __init__(self) -> None:
        """Nothing placed yet."""
        self._stopped: str | None = None
        self._ended: dict[str, CallEnded] = {}
        self._attempts = 0
        self._cap: int | None = None
        self._next_at: datetime | None = None
        self._next_local: str | None = None
        self._outcomes: list[str] = []
        #: An operator holds the thread (signals ``pause``/``resume``): the clock stops.
        self._hold = HoldClock()

    @workflow.run
    async def run(self, input: CallRetryInput) -> CallRetryResult:
        """Plan, wait, call and listen, attempt after attempt (see the class docstring)."""
        sa.mark_org(input.org_id)
        earliest = workflow.now()
        texted_back = False
        while self._stopped is None:
            plan: CallPlan = await run_record(
                CallActivities.plan_call,
                PlanCallInput(
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    attempt=self._attempts + 1,
                    earliest=earliest,
                ),
                summary=f"plan call attempt {self._attempts + 1}",
            )
            self._cap = plan.max_attempts
            if plan.stop is not None:
                return self._end("not_callable", plan.stop)
            if self._attempts >= plan.max_attempts:
                return await self._exhausted(input)
            self._next_at, self._next_local = plan.at, plan.local
            label = f"call attempt {self._attempts + 1}/{plan.max_attempts} at {plan.local}"
            why = f" ({plan.reason})" if plan.reason else ""
            workflow.set_current_details(f"**Next:** {label}{why}")
            if not await self._wait_until(plan.at, summary=label):
                break
            placed = await self._place(input, attempt=self._attempts + 1)
            if placed is None:
                # Held back past the plan (the gate is the authority): plan again from then.
                earliest = max(workflow.now(), earliest)
                continue
            self._attempts += 1
            self._next_at = self._next_local = None
            if placed.status == CallStatus.SIMULATED:
                self._outcomes.append("simulated")
                return self._end("simulated", "dry run: no call was dialled")
            outcome = await self._outcome(input, placed)
            self._outcomes.append(outcome.value)
            if outcome == CallOutcome.ANSWERED:
                return self._end("answered", f"answered on attempt {self._attempts}")
            if outcome == CallOutcome.INVALID_NUMBER:
                return self._end("invalid_number", "the number can't be called; not retried")
            if outcome == CallOutcome.VOICEMAIL and not texted_back and self._stopped is None:
                texted_back = True
                await self._text_back(input)
            wait = plan.spacing_s[min(self._attempts, len(plan.spacing_s)) - 1]
            earliest = workflow.now() + timedelta(seconds=wait)
        return self._end("stopped", self._stopped)

    async def _wait_until(self, moment: datetime, *, summary: str) -> bool:
        """Wait for ``moment`` unless stopped first; ``False`` if stopped.

        While an operator holds the thread the clock stops (``HoldClock.wait_until``): what
        was left of the wait is waited again from the release (the call then passes the gate
        again as usual).
        """
        return await self._hold.wait_until(
            moment,
            summary=summary,
            stopped=lambda: self._stopped is not None,
            moved=self._moved,
            skip_when_due=True,
        )

    def _moved(self, at: datetime | None) -> None:
        """The next attempt's time moved: paused (``None``) or released."""
        if at is None:
            self._next_at = self._next_local = None
        else:
            self._next_at = at

    async def _place(self, input: CallRetryInput, *, attempt: int) -> PlaceCallResult | None:
        """Place the attempt; ``None`` if the gate held it back (waited out) or it stopped."""
        try:
            placed: PlaceCallResult = await workflow.execute_activity_method(
                CallActivities.place_call,
                PlaceCallInput(
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    attempt=attempt,
                    idempotency_key=call_key(input.key_prefix, attempt),
                ),
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_DEADLINE,
                retry_policy=SEND_RETRY,
                summary=f"place call (attempt {attempt})",
            )
        except ActivityError as error:
            hold = deferred_until(error)
            if hold is not None:
                await wait_out(
                    hold,
                    cancelled=lambda: self._stopped is not None,
                    on_hold=self._held,
                    woken=lambda: self._hold.releases,
                )
                return None
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == "OptedOut":
                self._stopped = "opted out of calls"
                return None
            raise
        return placed

    def _held(self, until: datetime, reason: str) -> None:
        self._next_at, self._next_local = until, None
        workflow.set_current_details(f"**Held back:** {reason}")

    async def _outcome(self, input: CallRetryInput, placed: PlaceCallResult) -> CallOutcome:
        """The call's outcome: its report, else Vapi's answer when asked, else ``failed``."""
        workflow.set_current_details(
            f"**Waiting:** for the end-of-call report of attempt {self._attempts}"
        )
        call_id = placed.call_id
        for check in range(REPORT_LOOKUPS):
            if not (placed.repeated and check == 0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: call_id in self._ended,
                        timeout=RETRY_REPORT_TIMEOUT,
                        timeout_summary=f"end-of-call report (attempt {self._attempts})",
                    )
            ended = self._ended.get(call_id)
            if ended is not None:
                return ended.outcome or outcome_of(ended.ended_reason)
            found: CallOutcome | None = await workflow.execute_activity_method(
                CallActivities.look_up_call,
                LookUpCallInput(org_id=input.org_id, call_id=call_id),
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_DEADLINE,
                retry_policy=SEND_RETRY,
                summary=f"ask Vapi how attempt {self._attempts} ended",
            )
            if found is not None:
                return found
        workflow.logger.warning("no end-of-call report for call %s; counted as failed", call_id)
        return CallOutcome.FAILED

    async def _text_back(self, input: CallRetryInput) -> None:
        """One SMS after a voicemail, through the gate; a failure is on the timeline and
        doesn't end the loop."""
        with contextlib.suppress(ActivityError):
            await send_touch(
                SendMessageInput(
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    channel=Channel.SMS,
                    template="voicemail_text_back",
                    idempotency_key=input.text_back_key,
                ),
                summary="voicemail text-back SMS",
                cancelled=lambda: self._stopped is not None,
                on_hold=self._held,
                woken=lambda: self._hold.releases,
            )

    async def _exhausted(self, input: CallRetryInput) -> CallRetryResult:
        escalation_id: str = await run_record(
            CallActivities.calls_exhausted,
            CallsExhaustedInput(
                org_id=input.org_id,
                lead_id=input.lead_id,
                workflow_id=workflow.info().workflow_id,
                attempts=self._attempts,
            ),
            summary="escalate: call attempts exhausted",
        )
        if workflow.patched(ESCALATION_LADDER_PATCH):
            ladder: str = await run_record(
                CallActivities.escalation_ladder,
                LadderInput(org_id=input.org_id, escalation_id=escalation_id),
                summary="find the escalation's ladder",
            )
            # Its own life: the ladder goes on (SLA, operator, owner) after this loop ends.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    ESCALATION_WORKFLOW,
                    EscalationInput(org_id=input.org_id, escalation_id=escalation_id),
                    id=ladder,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary="Escalation: call attempts exhausted",
                )
        lead = workflow.get_external_workflow_handle(input.lead_workflow_id)
        with contextlib.suppress(ApplicationError):  # the lead may have closed meanwhile
            await lead.signal(
                CALLS_EXHAUSTED_SIGNAL,
                CallsExhausted(attempts=self._attempts, escalation_id=escalation_id),
            )
        return self._end(
            "cap_reached", f"{self._attempts} attempts unanswered", escalation_id=escalation_id
        )

    def _end(
        self, outcome: str, detail: str | None, *, escalation_id: str | None = None
    ) -> CallRetryResult:
        self._next_at = self._next_local = None
        workflow.set_current_details(f"**Done:** {outcome}" + (f" ({detail})" if detail else ""))
        return CallRetryResult(
            outcome=outcome,
            attempts=self._attempts,
            detail=detail,
            escalation_id=escalation_id,
        )

    @workflow.signal(name="call_ended")
    def call_ended(self, report: CallEnded) -> None:
        """An attempt's end-of-call report (the first per call counts)."""
        self._ended.setdefault(report.call_id, report)

    @workflow.signal(name=CALL_STOP_SIGNAL)
    def stop(self, stop: CallRetryStop) -> None:
        """Place no more calls (the first reason counts)."""
        if self._stopped is None:
            self._stopped = stop.reason

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self, why: AutomationPaused) -> None:
        """An operator holds the thread: no attempt until ``resume`` (a call under way
        goes on)."""
        self._hold.hold()

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self, why: AutomationPaused) -> None:
        """The thread is the AI's again: the wait for the next attempt goes on, and an
        attempt the takeover held back at the gate is tried again now."""
        self._hold.release()

    @workflow.query(name="progress")
    def progress(self) -> CallRetryProgress:
        """Attempts used, the cap, the next attempt and the outcomes so far."""
        return CallRetryProgress(
            attempts_used=self._attempts,
            attempts_cap=self._cap,
            next_at=self._next_at,
            next_local=self._next_local,
            outcomes=list(self._outcomes),
            stopped=self._stopped,
            paused=self._hold.held,
        )
