"""Takeover: an operator holds a thread and the AI stays quiet; their replies go out.

The lock itself is the thread row (``models.store.holds``; its rules in
``models.rules.takeover``), which the compliance gate reads for every automated touch. The
Takeover workflow is the lock's timer and messenger, and the HumanReply workflow sends one
operator reply (waiting out quiet hours).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.escalations import CheckTakeoverInput, EscalationActivities, TakeoverCheck
    from activities.messages import MessageActivities
    from models.payloads import StoredMessageInput
    from workflows import search_attributes as sa
    from workflows.payloads import (
        RELEASED_SIGNAL,
        REPLY_WORKFLOW,
        TAKEN_OVER_SIGNAL,
        TAKEOVER_CHANGED_SIGNAL,
        TAKEOVER_WORKFLOW,
        HoldChanged,
        TakeoverInput,
        TakeoverState,
        ThreadReleased,
        ThreadTakenOver,
    )
    from workflows.policies import (
        MAX_DEFERRALS,
        SEND_DEADLINE,
        SEND_RETRY,
        SEND_TIMEOUT,
        deferred_until,
        run_record,
        wait_out,
    )

__all__ = [
    "HumanReplyWorkflow",
    "StoredMessageInput",
    "TakeoverInput",
    "TakeoverState",
    "TakeoverWorkflow",
]


@workflow.defn(name=TAKEOVER_WORKFLOW)
class TakeoverWorkflow:
    """``takeover-{org}-{thread}``, started (or signalled ``hold_changed``) by the API each
    time the thread is taken over or released. It reads the hold from the database after
    every wake (``check_takeover``), so it never disagrees with the gate:

    1. Held: each of the contact's leads is told ``taken_over`` (its sequence and call
       attempts pause); then it waits until the hold would run out, or the API says the hold
       changed.
    2. At that time, a hold whose operator has written nothing for the org's
       ``takeover_timeout`` is released by the check, which writes a notice to the operator;
       the workflow delivers it. An operator who wrote meanwhile keeps it: wait again.
    3. Not held any more (released, or timed out): every lead of the contact is told
       ``released`` and the workflow ends, unless the thread was taken over again meanwhile.
    """

    def __init__(self) -> None:
        """No hold seen yet."""
        self._changes = 0
        self._held_by: str | None = None
        self._releases_at: datetime | None = None
        self._holds = 0
        self._timed_out = 0

    @workflow.run
    async def run(self, input: TakeoverInput) -> TakeoverState:
        """Pause, time, release, resume (see the class docstring)."""
        workflow.upsert_search_attributes([sa.ORG_ID.value_set(input.org_id)])
        told: set[str] = set()
        while True:
            changes = self._changes
            check: TakeoverCheck = await run_record(
                EscalationActivities.check_takeover,
                CheckTakeoverInput(
                    org_id=input.org_id, thread_id=input.thread_id, now=workflow.now()
                ),
                summary="check the takeover",
            )
            if check.notice_id is not None:
                self._timed_out += 1
                with contextlib.suppress(ActivityError):  # on the row; the release stands
                    await workflow.execute_activity_method(
                        MessageActivities.send_system_message,
                        StoredMessageInput(org_id=input.org_id, message_id=check.notice_id),
                        start_to_close_timeout=SEND_TIMEOUT,
                        schedule_to_close_timeout=SEND_DEADLINE,
                        retry_policy=SEND_RETRY,
                        summary="tell the operator the hold ran out",
                    )
            if check.held_by != self._held_by and check.held_by is not None:
                self._holds += 1
            self._held_by, self._releases_at = check.held_by, check.releases_at
            if check.held_by is not None and check.releases_at is not None:
                for lead in check.lead_workflows:
                    if lead not in told:
                        told.add(lead)
                        await self._tell(lead, TAKEN_OVER_SIGNAL, input.thread_id)
                workflow.set_current_details(
                    f"**Held** by {check.held_by} until {check.releases_at:%Y-%m-%d %H:%M} UTC "
                    "unless they write again"
                )
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda changes=changes: self._changes != changes,  # type: ignore[misc]
                        timeout=max(check.releases_at - workflow.now(), timedelta(seconds=1)),
                        timeout_summary="released unless the operator wrote meanwhile",
                    )
                continue
            # Every lead the contact has, not only those told: one may have opened during
            # the hold with its first touch held back by the gate.
            for lead in sorted(told | set(check.lead_workflows)):
                await self._tell(lead, RELEASED_SIGNAL, input.thread_id)
            told.clear()
            workflow.set_current_details("**Released:** the AI has the conversation")
            if self._changes == changes:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self.state()

    @staticmethod
    async def _tell(workflow_id: str, signal: str, thread_id: str) -> None:
        """Signal a lead (one that has ended meanwhile has nothing to pause)."""
        event = (
            ThreadTakenOver(thread_id=thread_id)
            if signal == TAKEN_OVER_SIGNAL
            else ThreadReleased(thread_id=thread_id)
        )
        handle = workflow.get_external_workflow_handle(workflow_id)
        with contextlib.suppress(FailureError):
            await handle.signal(signal, event)

    @workflow.signal(name=TAKEOVER_CHANGED_SIGNAL)
    def hold_changed(self, change: HoldChanged) -> None:
        """The API took the thread over or released it: read the hold again now."""
        self._changes += 1

    @workflow.query(name="state")
    def state(self) -> TakeoverState:
        """Who holds the thread, until when unless they write, and how many holds ran out."""
        return TakeoverState(
            held_by=self._held_by,
            releases_at=self._releases_at,
            holds=self._holds,
            timed_out=self._timed_out,
        )


@workflow.defn(name=REPLY_WORKFLOW)
class HumanReplyWorkflow:
    """``reply-{org}-{message}``: send an operator's reply (its row is written), once.

    The send checks consent and quiet hours again; held back by quiet hours, the reply waits
    on a durable timer until the window opens and is sent then. Withdrawn consent fails it
    for good (the row says so)."""

    @workflow.run
    async def run(self, input: StoredMessageInput) -> str:
        """Send it; the message's final status (``sent``, ``simulated``, ``failed``...)."""
        for _ in range(MAX_DEFERRALS):
            try:
                result = await workflow.execute_activity_method(
                    MessageActivities.send_reply,
                    input,
                    start_to_close_timeout=SEND_TIMEOUT,
                    schedule_to_close_timeout=SEND_DEADLINE,
                    retry_policy=SEND_RETRY,
                    summary="send the operator's reply",
                )
                return str(result.status)
            except ActivityError as error:
                hold = deferred_until(error)
                if hold is None:
                    workflow.logger.warning("reply %s not sent: %s", input.message_id, error)
                    return "failed"
            await wait_out(
                hold,
                cancelled=lambda: False,
                on_hold=lambda until, reason: workflow.set_current_details(
                    f"**Held back:** {reason}"
                ),
            )
        return "pending"
