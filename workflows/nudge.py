"""The NudgeSequence workflow: a lead's follow-up touches, each at its time, until told to stop.

A child of the Lead workflow. It reads the sequence before each step, so an edit reaches the
steps this lead has not reached; each step is keyed by its position, so no step is ever sent
twice and the sequence never goes back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.messages import SendMessageInput
    from activities.records import LeadRecordActivities, NextStepInput
    from models.ids import call_loop_workflow_id, step_key, voicemail_text_back_key
    from models.payloads import NextStep
    from models.values import Channel
    from workflows import search_attributes as sa
    from workflows.hold_clock import HoldClock
    from workflows.payloads import (
        CALL_RETRY_WORKFLOW,
        CALL_STOP_SIGNAL,
        NUDGE_STOP_SIGNAL,
        NUDGE_WORKFLOW,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
        TAKEOVER_REASON,
        AutomationPaused,
        CallRetryInput,
        CallRetryResult,
        CallRetryStop,
        NudgeInput,
        NudgeProgress,
        NudgeResult,
        NudgeStop,
        stops_sequence,
    )
    from workflows.policies import run_record, send_touch

__all__ = ["NudgeInput", "NudgeProgress", "NudgeResult", "NudgeSequenceWorkflow", "NudgeStop"]


#: Patch id: a voice step runs the call-retry loop (earlier runs sent it as a message,
#: which failed: there is no voice message adapter).
VOICE_STEP_PATCH = "nudge-voice-calls"
#: Patch id: steps fall due in the contact's local time (whole days on the local calendar),
#: counted from when the previous step was due; earlier runs wait ``after`` from the last send.
LOCAL_TIME_PATCH = "nudge-local-time"


@workflow.defn(name=NUDGE_WORKFLOW)
class NudgeSequenceWorkflow:
    """For each step: wait until it is due (a durable timer the Web UI names), then send it."""

    def __init__(self) -> None:
        """Nothing done yet."""
        self._stopped: str | None = None
        self._done = 0
        self._sent = 0
        self._next: NextStep | None = None
        self._next_at: datetime | None = None
        self._stop_on: tuple[str, ...] | None = None
        #: The running call-retry loop of a voice step, and why it must stop.
        self._calling = False
        self._call_stop: str | None = None
        self._call_handle: workflow.ChildWorkflowHandle[Any, CallRetryResult] | None = None
        #: An operator holds the contact's thread (signals ``pause``/``resume``): the
        #: step's clock stops, and the call loop hears of it.
        self._hold = HoldClock()

    @workflow.run
    async def run(self, input: NudgeInput) -> NudgeResult:
        """Take the sequence's steps until it ends, its cap is reached or it is stopped."""
        local_time = workflow.patched(LOCAL_TIME_PATCH)
        sa.mark_org(input.org_id)
        self._done = input.start_index
        anchor: datetime | None = input.anchor or workflow.now()
        while self._stopped is None:
            step: NextStep | None = await run_record(
                LeadRecordActivities.next_sequence_step,
                NextStepInput(
                    org_id=input.org_id,
                    sequence=input.sequence,
                    index=self._done,
                    # The lead picks its variant of an experiment's step (runs from before
                    # local time too: only this read's input changes, not the commands).
                    lead_id=input.lead_id,
                    anchor=anchor if local_time else None,
                ),
                summary=f"read step {self._done + 1} of {input.sequence}",
            )
            if step is None:
                break
            label = self._expect(step, local_time=local_time)
            if not await self._wait_for_step(label):
                break
            # Read again: an edit made during the wait applies to this step too.
            latest: NextStep | None = await run_record(
                LeadRecordActivities.next_sequence_step,
                NextStepInput(
                    org_id=input.org_id,
                    sequence=input.sequence,
                    index=self._done,
                    lead_id=input.lead_id,
                    now=workflow.now() if local_time else None,
                ),
                summary=f"read step {self._done + 1} of {input.sequence} again",
            )
            if latest is None or not await self._take(input, latest, label):
                break
            self._done += 1
            anchor = self._next_at
        self._next = None
        return NudgeResult(
            steps_done=self._done,
            sent=self._sent,
            stopped=self._stopped,
            anchor=anchor + self._hold.held_when_stopped if anchor is not None else None,
        )

    def _expect(self, step: NextStep, *, local_time: bool) -> str:
        """Make ``step`` the next one, due at its time (``self._next_at``); its label."""
        self._next = step
        self._stop_on = step.stop_on
        if local_time and step.due_at is not None:
            self._next_at = max(step.due_at, workflow.now())
        else:
            self._next_at = workflow.now() + timedelta(seconds=step.after_s)
        label = f"step {step.index + 1}/{step.total}: {step.channel.value}"
        if step.variant:
            label += f" (variant {step.variant})"
        if step.due_local:
            label += f" due {step.due_local}"
        workflow.set_current_details(f"**Next:** {label}")
        return label

    async def _wait_for_step(self, label: str) -> bool:
        """Wait until the step is due (``self._next_at``); ``False`` if stopped first.

        While an operator holds the thread the clock stops (``HoldClock.wait_until``): the
        sequence goes on where it was, not with a burst of overdue steps.
        """
        assert self._next_at is not None

        def moved(at: datetime | None) -> None:
            self._next_at = at
            if at is not None:
                workflow.set_current_details(f"**Next:** {label}")

        return await self._hold.wait_until(
            self._next_at, summary=label, stopped=lambda: self._stopped is not None, moved=moved
        )

    async def _take(self, input: NudgeInput, step: NextStep, label: str) -> bool:
        """Take the step: a voice step's call-retry loop, else a message through the gate.

        ``False`` if the sequence was stopped before the step was taken (while the gate held
        it back, or with its call loop): a restart takes it again. A send that failed counts
        as taken (on the timeline as ``touch_skipped``; the sequence goes on).
        """
        if step.channel == Channel.VOICE and workflow.patched(VOICE_STEP_PATCH):
            called = await self._call(input, step)
            self._sent += int(called.attempts > 0)
            return not (called.outcome == "stopped" and self._stopped is not None)
        try:
            sent = await send_touch(
                SendMessageInput(
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    channel=step.channel,
                    template="sequence",
                    text=step.template,
                    idempotency_key=step_key(input.key_prefix, step.index + 1),
                    sequence=input.sequence,
                    step=step.index + 1,
                    variant=step.variant,
                    fallback=step.fallback,
                    experiment=step.experiment,
                ),
                summary=f"send {label}",
                cancelled=lambda: self._stopped is not None,
                on_hold=self._on_hold,
                hold_until=step.hold_until,
                hold_reason=step.hold_reason,
                woken=lambda: self._hold.releases,
            )
        except ActivityError:
            return True
        self._sent += int(sent)
        return sent or self._stopped is None

    async def _call(self, input: NudgeInput, step: NextStep) -> CallRetryResult:
        """A voice step: the call-retry loop, as a child; the sequence goes on when it ends.

        Any stop reaches the loop, even one the sequence itself goes on after (a reply
        cancels pending call attempts, whatever ``stop_on`` says).
        """
        parent = workflow.info().parent
        self._calling = True
        handle = await workflow.start_child_workflow(
            CALL_RETRY_WORKFLOW,
            CallRetryInput(
                org_id=input.org_id,
                lead_id=input.lead_id,
                lead_workflow_id=parent.workflow_id if parent else "",
                key_prefix=step_key(input.key_prefix, step.index + 1),
                text_back_key=voicemail_text_back_key(input.key_prefix),
            ),
            id=call_loop_workflow_id(input.lead_id, step.index + 1),
            result_type=CallRetryResult,
            static_summary=f"Call-retry loop (step {step.index + 1} of {input.sequence})",
        )
        self._call_handle = handle
        if self._hold.held:
            await self._tell_call(AutomationPaused(reason=TAKEOVER_REASON))
        await workflow.wait_condition(lambda: handle.done() or self._call_stop is not None)
        if not handle.done():
            assert self._call_stop is not None
            await handle.signal(CALL_STOP_SIGNAL, CallRetryStop(reason=self._call_stop))
        result: CallRetryResult = await handle
        self._calling = False
        self._call_stop = None
        self._call_handle = None
        return result

    def _on_hold(self, until: datetime, reason: str) -> None:
        self._next_at = until
        workflow.set_current_details(f"**Held back:** {reason}")

    @workflow.signal(name=NUDGE_STOP_SIGNAL)
    def stop(self, stop: NudgeStop) -> None:
        """Stop before the next step (the first reason counts).

        A reply, booking or payment the sequence's ``stop_on`` leaves out is ignored.
        """
        if self._calling and self._call_stop is None:
            self._call_stop = stop.reason
        if not stops_sequence(stop.reason, self._stop_on):
            workflow.logger.info("sequence goes on: it does not stop on %s", stop.reason)
            return
        if self._stopped is None:
            self._stopped = stop.reason

    @workflow.signal(name=PAUSE_SIGNAL)
    async def pause(self, why: AutomationPaused) -> None:
        """An operator holds the thread: no step until ``resume`` (nor a call attempt)."""
        if self._hold.hold():
            await self._tell_call(why)

    @workflow.signal(name=RESUME_SIGNAL)
    async def resume(self, why: AutomationPaused) -> None:
        """The thread is the AI's again: the sequence goes on where it was, and a touch the
        takeover held back (paused or not) is tried again now."""
        self._hold.release()
        await self._tell_call(why)

    async def _tell_call(self, why: AutomationPaused) -> None:
        """Tell the running call loop whether it is paused, as things stand when it is its
        turn (each signal delivered before the next is sent)."""
        await self._hold.tell(lambda: self._call_handle, why)

    @workflow.query(name="progress")
    def progress(self) -> NudgeProgress:
        """Steps taken and what comes next."""
        step = self._next
        return NudgeProgress(
            steps_done=self._done,
            steps_total=step.total if step else None,
            sent=self._sent,
            next_channel=step.channel.value if step else None,
            next_at=self._next_at if step else None,
            stopped=self._stopped,
            timezone=step.timezone if step else None,
            paused=self._hold.held,
            next_variant=step.variant if step else None,
        )
