"""The Lead workflow: one per open lead, keyed by the org and the person's contact key."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import MessageActivities, SendMessageInput
    from activities.records import (
        AttachIntakeInput,
        LeadRecordActivities,
        RecordLeadInput,
        RecordStageInput,
    )
    from models.store import RecordedLead
    from models.values import Channel, Stage
    from workflows import search_attributes as sa
    from workflows.payloads import (
        ContactMerged,
        IntakeAnswer,
        IntakeReceived,
        LeadInput,
        LeadResult,
        LeadStatus,
        NudgeInput,
        NudgeStop,
        PaymentReceived,
        ReplyReceived,
    )
    from workflows.policies import SEND_DEADLINE, SEND_RETRY, SEND_TIMEOUT, run_record

from workflows.nudge import NudgeSequenceWorkflow

__all__ = [
    "ContactMerged",
    "IntakeAnswer",
    "IntakeReceived",
    "LeadInput",
    "LeadResult",
    "LeadStatus",
    "LeadWorkflow",
    "PaymentReceived",
    "ReplyReceived",
]

#: Patch id: leads with a sequence for their intent run it as a child NudgeSequence.
NUDGE_PATCH = "nudge-sequence"
#: Patch id: the lead's score became a search attribute (``LeadScore``) after recording.
SCORE_ATTRIBUTE_PATCH = "lead-score-search-attribute"
#: Repeat submissions remembered, so a replayed webhook is not noted twice.
SEEN_RECEIPTS_WINDOW = 200
#: Touches a lead may get in this version: the first touch only (sequences come later).
TOUCH_CAP = 1


@workflow.defn(name="Lead")
class LeadWorkflow:
    """Works one lead from intake until it converts, is lost or opts out.

    Steps:
        1. ``record_lead``: resolve the contact, create the lead, pick the first-touch channel.
        2. First touch: SMS with SMS consent, else email; ``send_message`` keyed
           ``{workflow_id}/{lead_id}/touch-1`` so it goes out once. Stage ``contacted``.
        3. Wait. Repeat submissions (update ``submit_intake``) are noted on the timeline and
           restart the inactivity clock; a reply (signal ``message_received``) makes the lead
           ``engaged`` and restarts it too. After the org's inactivity threshold without news
           the lead is ``ghosting``; after another threshold, ``lost``, and the workflow ends.
           A payment (signal ``payment_received``) converts the lead and ends it at once.

    Once the lead is closing, ``submit_intake`` is rejected, so the API opens a new lead for
    the person instead of handing a submission to a run that would drop it.
    """

    @workflow.init
    def __init__(self, input: LeadInput) -> None:
        """Set up state before the first signal can arrive."""
        self._input = input
        self._stage = Stage.NEW
        self._pending: list[str] = []
        self._seen: list[str] = [input.receipt_id]
        self._touches = 0
        self._next_action: str | None = "record the lead and send the first touch"
        self._next_action_at: datetime | None = None
        self._waiting_reason: str | None = None
        self._no_touch_reason: str | None = None
        self._closing = False
        self._replies: list[ReplyReceived] = []
        self._paid = False
        self._nudge: workflow.ChildWorkflowHandle[Any, Any] | None = None

    @workflow.run
    async def run(self, input: LeadInput) -> LeadResult:
        """Run the lead's lifecycle (see the class docstring)."""
        recorded: RecordedLead = await run_record(
            LeadRecordActivities.record_lead,
            RecordLeadInput(
                org_id=input.org_id,
                lead_id=input.lead_id,
                workflow_id=workflow.info().workflow_id,
                receipt_id=input.receipt_id,
            ),
            summary="record contact and lead",
        )
        if workflow.patched(SCORE_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([sa.LEAD_SCORE.value_set(recorded.score)])
        await self._first_touch(recorded)
        if recorded.sequence and recorded.first_touch is not None and workflow.patched(NUDGE_PATCH):
            self._nudge = await workflow.start_child_workflow(
                NudgeSequenceWorkflow.run,
                NudgeInput(
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    sequence=recorded.sequence,
                    key_prefix=f"{workflow.info().workflow_id}/{input.lead_id}/{recorded.sequence}",
                ),
                id=f"{input.lead_id}/nudge-1",
                static_summary=f"Nudge sequence {recorded.sequence}",
            )
        threshold = timedelta(seconds=recorded.inactivity_threshold_s)
        await self._wait_for_news(threshold, then=Stage.GHOSTING)
        if not self._paid:
            await self._wait_for_sequence()
        if not self._paid:
            await self._wait_for_news(threshold, then=Stage.LOST, closing=True)
        self._next_action = None
        self._next_action_at = None
        self._waiting_reason = (
            "closed: paid" if self._paid else "closed: no response after two inactivity periods"
        )
        self._publish()
        await self._attach_pending()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return LeadResult(stage=self._stage)

    @workflow.update(name="submit_intake")
    def submit_intake(self, event: IntakeReceived) -> IntakeAnswer:
        """The same person submitted again: note it (once per receipt) and name this lead."""
        self.intake_received(event)
        return IntakeAnswer(
            lead_id=self._input.lead_id,
            started_this_lead=event.receipt_id == self._input.receipt_id,
        )

    @submit_intake.validator
    def _accepting_intake(self, event: IntakeReceived) -> None:
        if self._closing:
            raise ValueError("this lead is closing; start a new one")

    @workflow.signal(name="intake_received")
    def intake_received(self, event: IntakeReceived) -> None:
        """Signal form of ``submit_intake`` (kept for runs started before the update existed)."""
        if event.receipt_id in self._seen or event.receipt_id in self._pending:
            return
        self._pending.append(event.receipt_id)

    @workflow.signal(name="message_received")
    def message_received(self, reply: ReplyReceived) -> None:
        """The person replied (once per message: a replayed webhook is dropped)."""
        if reply.message_id in self._seen or any(
            r.message_id == reply.message_id for r in self._replies
        ):
            return
        self._replies.append(reply)

    @workflow.signal(name="contact_merged")
    def contact_merged(self, merge: ContactMerged) -> None:
        """The lead's contact absorbed another one (already recorded, timeline included).

        Sends look the contact up at send time, so the next touch uses the merged identities
        and consent; nothing else in this run depends on the contact.
        """
        workflow.logger.info("contact %s merged into %s", merge.merged_contact_id, merge.contact_id)

    @workflow.signal(name="payment_received")
    def payment_received(self, payment: PaymentReceived) -> None:
        """Stripe reported a payment for this lead; a paid one converts it."""
        if payment.status == "paid" and not self._closing:
            self._paid = True

    @workflow.query(name="status")
    def status(self) -> LeadStatus:
        """Where the lead stands, what happens next and why it is waiting."""
        return LeadStatus(
            stage=self._stage,
            next_action=self._next_action,
            next_action_at=self._next_action_at,
            attempts_used=self._touches,
            attempts_cap=TOUCH_CAP,
            waiting_reason=self._waiting_reason,
            nudge_workflow_id=self._nudge.id if self._nudge and self._nudging() else None,
        )

    async def _first_touch(self, recorded: RecordedLead) -> None:
        channel = recorded.first_touch
        if channel is None:
            self._no_touch_reason = f"no first touch: {recorded.no_touch_reason}"
            return
        self._next_action = f"send the first {channel.value.upper()}"
        self._next_action_at = workflow.now()
        self._publish()
        try:
            await self._send(channel, step="touch-1", template="first_touch")
        except ActivityError as error:
            # Already on the timeline (touch_skipped); the lead waits for the person instead.
            cause = (
                error.cause.message
                if isinstance(error.cause, ApplicationError)
                else "retries exhausted"
            )
            self._no_touch_reason = f"first {channel.value} failed: {cause}"
            return
        await self._move(Stage.CONTACTED, f"first touch sent by {channel.value}")

    async def _send(self, channel: Channel, *, step: str, template: str) -> None:
        workflow_id = workflow.info().workflow_id
        await workflow.execute_activity_method(
            MessageActivities.send_message,
            SendMessageInput(
                org_id=self._input.org_id,
                lead_id=self._input.lead_id,
                channel=channel,
                template=template,
                # The workflow id is reused by the person's next lead, so the step names the lead.
                idempotency_key=f"{workflow_id}/{self._input.lead_id}/{step}",
            ),
            start_to_close_timeout=SEND_TIMEOUT,
            schedule_to_close_timeout=SEND_DEADLINE,
            retry_policy=SEND_RETRY,
            summary=f"send {channel.value} ({step})",
        )
        self._touches += 1

    async def _wait_for_news(
        self, threshold: timedelta, *, then: Stage, closing: bool = False
    ) -> None:
        """Wait ``threshold`` after the last news; repeat submissions restart the clock.

        With ``closing``, new submissions are refused from the moment the wait runs out, and
        those already accepted are noted before the lead moves on.
        """
        deadline = workflow.now() + threshold
        while True:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            self._next_action = f"mark the lead {then.value}"
            self._next_action_at = deadline
            self._waiting_reason = (
                f"waiting for a reply until {deadline:%Y-%m-%d %H:%M} UTC, then {then.value}"
            )
            if self._no_touch_reason:
                self._waiting_reason = f"{self._no_touch_reason}; {self._waiting_reason}"
            self._publish()
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending or self._replies) or self._paid,
                    timeout=remaining,
                    timeout_summary=f"inactivity: {then.value} if no news",
                )
            except TimeoutError:
                if not (self._pending or self._replies or self._paid):
                    break  # news that came with the timer still counts
            await self._attach_pending()
            await self._take_replies()
            if self._paid:
                await self._convert()
                return
            deadline = workflow.now() + threshold
        if closing:
            self._closing = True
            await self._attach_pending()
        reason = f"no response for {_words(threshold)}"
        await self._move(then, reason)

    async def _convert(self) -> None:
        self._closing = True
        await self._stop_nudge("payment")
        await self._attach_pending()
        await self._move(Stage.CONVERTED, "paid (Stripe)")

    def _nudging(self) -> bool:
        return self._nudge is not None and not self._nudge.done()

    async def _stop_nudge(self, reason: str) -> None:
        if self._nudge is not None and not self._nudge.done():
            await self._nudge.signal(NudgeSequenceWorkflow.stop, NudgeStop(reason=reason))

    async def _wait_for_sequence(self) -> None:
        """The lead is only lost once its sequence has run out; news is handled meanwhile."""
        while self._nudging():
            self._next_action = "the nudge sequence's next step"
            self._next_action_at = None
            self._waiting_reason = "nudge sequence running; lost only after it ends unanswered"
            self._publish()
            await workflow.wait_condition(
                lambda: not self._nudging() or bool(self._pending or self._replies) or self._paid
            )
            await self._attach_pending()
            await self._take_replies()
            if self._paid:
                await self._convert()
                return

    async def _take_replies(self) -> None:
        if self._replies:
            await self._stop_nudge("reply")
        while self._replies:
            reply = self._replies[0]
            if self._stage in {Stage.NEW, Stage.CONTACTED, Stage.GHOSTING}:
                await self._move(Stage.ENGAGED, f"replied by {reply.channel.value}")
            self._replies.pop(0)
            self._seen = [*self._seen, reply.message_id][-SEEN_RECEIPTS_WINDOW:]

    async def _attach_pending(self) -> None:
        while self._pending:
            receipt_id = self._pending[0]
            await run_record(
                LeadRecordActivities.attach_intake,
                AttachIntakeInput(
                    org_id=self._input.org_id, lead_id=self._input.lead_id, receipt_id=receipt_id
                ),
                summary="note repeat submission",
            )
            self._pending.pop(0)
            self._seen = [*self._seen, receipt_id][-SEEN_RECEIPTS_WINDOW:]

    async def _move(self, stage: Stage, reason: str) -> None:
        await run_record(
            LeadRecordActivities.record_stage,
            RecordStageInput(
                org_id=self._input.org_id, lead_id=self._input.lead_id, stage=stage, reason=reason
            ),
            summary=f"stage → {stage.value}",
        )
        self._stage = stage
        workflow.upsert_search_attributes([sa.LEAD_STAGE.value_set(stage.value)])
        self._publish()

    def _publish(self) -> None:
        """Tell the Web UI what the lead is doing (current details; no personal data)."""
        lines = [f"**Stage:** {self._stage.value}", f"**Touches:** {self._touches}/{TOUCH_CAP}"]
        if self._next_action:
            when = f" at {self._next_action_at:%Y-%m-%d %H:%M} UTC" if self._next_action_at else ""
            lines.append(f"**Next:** {self._next_action}{when}")
        if self._waiting_reason:
            lines.append(f"**Waiting:** {self._waiting_reason}")
        workflow.set_current_details("\n\n".join(lines))


def _words(duration: timedelta) -> str:
    hours = int(duration.total_seconds() // 3600)
    if hours and hours % 24 == 0:
        return f"{hours // 24} day{'s' if hours != 24 else ''}"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(duration.total_seconds() // 60)} minutes"
