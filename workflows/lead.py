"""The Lead workflow: one per open lead, keyed by the org and the person's contact key."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from models.payloads import NextStep, RecordedLead

with workflow.unsafe.imports_passed_through():
    from activities.messages import SendMessageInput
    from activities.records import (
        AttachIntakeInput,
        LeadRecordActivities,
        RecordLeadInput,
        RecordStageInput,
    )
    from models.values import Channel, Stage
    from workflows import search_attributes as sa
    from workflows.payloads import (
        CALLS_EXHAUSTED_SIGNAL,
        NUDGE_STOP_SIGNAL,
        NUDGE_WORKFLOW,
        PAUSE_SIGNAL,
        RELEASED_SIGNAL,
        RESUME_SIGNAL,
        TAKEN_OVER_SIGNAL,
        TAKEOVER_REASON,
        AutomationPaused,
        BookingReceived,
        CallsExhausted,
        ConsentChanged,
        ContactMerged,
        IntakeAnswer,
        IntakeReceived,
        LeadCarry,
        LeadInput,
        LeadResult,
        LeadStatus,
        NudgeInput,
        NudgeResult,
        NudgeStop,
        PaymentReceived,
        ReplyReceived,
        ThreadReleased,
        ThreadTakenOver,
        step_words,
        stops_sequence,
    )
    from workflows.policies import run_record, send_touch

import asyncio
import contextlib
import dataclasses

__all__ = [
    "BookingReceived",
    "ConsentChanged",
    "ContactMerged",
    "IntakeAnswer",
    "IntakeReceived",
    "LeadCarry",
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
#: Patch id: long-running leads continue as new with their compact state (``LeadCarry``).
CONTINUE_PATCH = "lead-continue-as-new"
#: Repeat submissions remembered, so a replayed webhook is not noted twice.
SEEN_RECEIPTS_WINDOW = 200
#: Touches the Lead run itself sends (the first touch; the sequence's steps are its own).
TOUCH_CAP = 1
#: History events after which a run continues as new (well under Temporal's 51,200 limit,
#: and sooner if the server suggests it).
HISTORY_LIMIT = 5_000
#: The wait a run is in, as carried across continue-as-new.
GHOSTING_WAIT, SEQUENCE_WAIT, LOST_WAIT = "ghosting", "sequence", "lost"
#: Stop reason for a sequence paused so the Lead run can continue as new.
CONTINUING = "continue-as-new"
#: Patch id: the sequence's workflow starts shortly before its first step is due, not with
#: the first touch (a lead that replies or converts first never needs one, and a burst of
#: leads gets its first touches without the sequences' bookkeeping in the way).
NUDGE_WHEN_DUE_PATCH = "nudge-start-when-due"
#: How long before its first step a sequence's workflow starts.
NUDGE_HEAD_START = timedelta(minutes=1)


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
           A payment (signal ``payment_received``) or a booking (signal ``booking_received``)
           converts the lead at once; the run ends when its sequence has stopped.
        4. A run whose history grows past ``HISTORY_LIMIT`` events continues as new with its
           compact state (``LeadCarry``); a running sequence is paused and restarted, in the
           new run, at the step it reached.

    Once the lead is closing, ``submit_intake`` is rejected, so the API opens a new lead for
    the person instead of handing a submission to a run that would drop it.
    """

    @workflow.init
    def __init__(self, input: LeadInput) -> None:
        """Set up state before the first signal can arrive."""
        self._input = input
        self._stage = Stage.NEW
        carry = input.carry  # a run that continued as new already knows these
        self._pending: list[str] = list(carry.pending) if carry else []
        self._seen: list[str] = list(carry.seen) if carry else [input.receipt_id]
        self._touches = 0
        self._next_action: str | None = "record the lead and send the first touch"
        self._next_action_at: datetime | None = None
        self._waiting_reason: str | None = None
        self._no_touch_reason: str | None = None
        self._closing = False
        self._replies: list[ReplyReceived] = list(carry.replies) if carry else []
        self._conversion: str | None = None
        self._opted_out = False
        self._nudge: workflow.ChildWorkflowHandle[Any, Any] | None = None
        self._nudge_runs = 0
        self._sequence: str | None = None
        self._score = 0
        self._threshold = timedelta(0)
        #: A sequence not started yet: its first step, when to start it and its anchor.
        self._first_step: NextStep | None = None
        self._nudge_start_at: datetime | None = None
        self._nudge_anchor: datetime | None = None
        #: A call-retry loop of the sequence used all its attempts unanswered.
        self._calls_exhausted: CallsExhausted | None = None
        #: An operator holds the contact's thread (signals ``taken_over``/``released``);
        #: releases are counted so a touch the takeover held back is tried again at once.
        self._held_since: datetime | None = carry.held_since if carry else None
        self._resumes = 0
        #: One pause or resume at a time reaches the sequence, each delivered before the
        #: next is sent, so they can't arrive out of order.
        self._hold_lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: LeadInput) -> LeadResult:
        """Run the lead's lifecycle (see the class docstring)."""
        if input.carry is None:
            phase, deadline = await self._start(input)
        else:
            phase, deadline = await self._resume(input.carry)
        if phase == GHOSTING_WAIT:
            await self._wait_for_news(then=Stage.GHOSTING, deadline=deadline)
            phase, deadline = SEQUENCE_WAIT, None
        if phase == SEQUENCE_WAIT and not (self._conversion or self._closing):
            await self._wait_for_sequence()
            phase = LOST_WAIT
        if phase == LOST_WAIT and not (self._conversion or self._closing):
            await self._wait_for_news(then=Stage.LOST, deadline=deadline, closing=True)
        self._next_action = None
        self._next_action_at = None
        self._waiting_reason = (
            f"closed: {self._conversion}"
            if self._conversion
            else "closed: opted out"
            if self._stage == Stage.OPTED_OUT
            else "closed: no response after two inactivity periods"
        )
        self._publish()
        await self._attach_pending()
        if self._nudging():  # a sequence that does not stop on this conversion runs its course
            await workflow.wait_condition(lambda: not self._nudging())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return LeadResult(stage=self._stage)

    async def _start(self, input: LeadInput) -> tuple[str, datetime | None]:
        """Record the lead, send the first touch and start its sequence."""
        recorded: RecordedLead = await run_record(
            LeadRecordActivities.record_lead,
            RecordLeadInput(
                org_id=input.org_id,
                lead_id=input.lead_id,
                workflow_id=workflow.info().workflow_id,
                receipt_id=input.receipt_id,
                now=workflow.now(),
            ),
            summary="record contact and lead",
        )
        self._score = recorded.score
        self._threshold = timedelta(seconds=recorded.inactivity_threshold_s)
        if workflow.patched(SCORE_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([sa.LEAD_SCORE.value_set(recorded.score)])
        await self._first_touch(recorded)
        if recorded.sequence and recorded.first_touch is not None and workflow.patched(NUDGE_PATCH):
            self._sequence = recorded.sequence
            first = recorded.first_step
            if first and first.due_at and workflow.patched(NUDGE_WHEN_DUE_PATCH):
                anchor = recorded.sequence_anchor or workflow.now()
                late = workflow.now() - anchor
                if late > NUDGE_HEAD_START:
                    # The first touch was held back (quiet hours): the sequence counts from
                    # when it went, not from intake.
                    anchor += late
                    first = dataclasses.replace(first, due_at=first.due_at + late, due_local=None)
                self._first_step = first
                self._nudge_anchor = anchor
                assert first.due_at is not None
                self._nudge_start_at = first.due_at - NUDGE_HEAD_START
                await self._start_nudge_if_due()
            else:
                await self._start_nudge()
        return GHOSTING_WAIT, None

    async def _resume(self, carry: LeadCarry) -> tuple[str, datetime | None]:
        """Take up where the previous run continued as new."""
        self._stage = carry.stage
        self._score = carry.score
        self._touches = carry.touches
        self._threshold = timedelta(seconds=carry.threshold_s)
        self._no_touch_reason = carry.no_touch_reason
        self._sequence = carry.sequence
        self._nudge_runs = carry.nudge_runs
        self._first_step = carry.first_step
        self._nudge_start_at = carry.nudge_start_at
        self._nudge_anchor = carry.nudge_anchor if carry.nudge_start_at else None
        workflow.upsert_search_attributes(
            [sa.LEAD_STAGE.value_set(self._stage.value), sa.LEAD_SCORE.value_set(self._score)]
        )
        if carry.nudge_active:
            await self._start_nudge(start_index=carry.nudge_index, anchor=carry.nudge_anchor)
        return carry.phase, carry.deadline

    async def _start_nudge_if_due(self) -> None:
        """Start the sequence's workflow once its first step is near (not while an operator
        holds the thread: its start moves on by as long as the hold lasts)."""
        if (
            self._nudge_start_at is not None
            and self._held_since is None
            and workflow.now() >= self._nudge_start_at
        ):
            await self._start_nudge(anchor=self._nudge_anchor)

    async def _start_nudge(self, *, start_index: int = 0, anchor: datetime | None = None) -> None:
        assert self._sequence is not None
        self._nudge_start_at = None
        self._nudge_runs += 1
        self._nudge = await workflow.start_child_workflow(
            NUDGE_WORKFLOW,
            NudgeInput(
                org_id=self._input.org_id,
                lead_id=self._input.lead_id,
                sequence=self._sequence,
                # The workflow id outlives continue-as-new: a restarted sequence keeps its keys.
                key_prefix=f"{workflow.info().workflow_id}/{self._input.lead_id}/{self._sequence}",
                start_index=start_index,
                anchor=anchor,
            ),
            id=f"{self._input.lead_id}/nudge-{self._nudge_runs}",
            result_type=NudgeResult,
            static_summary=f"Nudge sequence {self._sequence}",
        )
        if self._held_since is not None:
            await self._tell_nudge()

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
        if payment.status == "paid" and not self._closing and not self._conversion:
            self._conversion = "paid"

    @workflow.signal(name="consent_changed")
    def consent_changed(self, change: ConsentChanged) -> None:
        """Consent changed; a person reachable on no channel any more ends the lead."""
        if not self._closing and not self._conversion:
            self._opted_out = change.opted_out_everywhere

    @workflow.signal(name="booking_received")
    def booking_received(self, booking: BookingReceived) -> None:
        """The person booked: the lead converts."""
        if not self._closing and not self._conversion:
            self._conversion = "booked"

    @workflow.signal(name=TAKEN_OVER_SIGNAL)
    async def taken_over(self, event: ThreadTakenOver) -> None:
        """An operator holds the contact's thread: the sequence and its calls pause, and no
        touch of this run goes out (the compliance gate holds it back) until ``released``."""
        if self._held_since is not None:
            return
        self._held_since = workflow.now()
        self._publish()
        await self._tell_nudge()

    @workflow.signal(name=RELEASED_SIGNAL)
    async def released(self, event: ThreadReleased) -> None:
        """The thread is the AI's again: the sequence goes on where it was (one not started
        yet starts as much later as the hold lasted), and a touch the takeover held back is
        tried again now (also by a run that started during the hold and was never told of
        it: the gate held its touch back all the same)."""
        self._resumes += 1
        if self._held_since is None:
            await self._tell_nudge()  # it may wait on a touch the gate held back
            return
        held_for = workflow.now() - self._held_since
        self._held_since = None
        if self._nudge_start_at is not None:
            self._nudge_start_at += held_for
            if self._nudge_anchor is not None:
                self._nudge_anchor += held_for
            first = self._first_step
            if first is not None and first.due_at is not None:
                self._first_step = dataclasses.replace(
                    first, due_at=first.due_at + held_for, due_local=None
                )
        self._publish()
        await self._tell_nudge()

    async def _tell_nudge(self) -> None:
        """Tell the running sequence whether it is paused, as things stand when it is its
        turn (a takeover and a release in quick succession leave it resumed)."""
        async with self._hold_lock:
            nudge = self._nudge
            if nudge is not None and not nudge.done():
                signal = PAUSE_SIGNAL if self._held_since is not None else RESUME_SIGNAL
                with contextlib.suppress(FailureError):  # it ended meanwhile
                    await nudge.signal(signal, AutomationPaused(reason=TAKEOVER_REASON))

    @workflow.signal(name=CALLS_EXHAUSTED_SIGNAL)
    def calls_exhausted(self, news: CallsExhausted) -> None:
        """The sequence's call-retry loop used its attempts unanswered (escalation opened)."""
        if not self._closing and not self._conversion:
            self._calls_exhausted = news

    @workflow.query(name="status")
    def status(self) -> LeadStatus:
        """Where the lead stands, what happens next and why it is waiting."""
        return LeadStatus(
            stage=self._stage,
            next_action=self._next_action,
            next_action_at=self._next_action_at,
            attempts_used=self._touches,
            # A sequence still waiting to start counts its steps here (a running one reports
            # its own progress).
            attempts_cap=TOUCH_CAP
            + (self._first_step.total if self._first_step and self._nudge_start_at else 0),
            waiting_reason=self._waiting(),
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
            sent = await self._send(channel, step="touch-1", template="first_touch", held=recorded)
        except ActivityError as error:
            # Already on the timeline (touch_skipped); the lead waits for the person instead.
            cause = (
                error.cause.message
                if isinstance(error.cause, ApplicationError)
                else "retries exhausted"
            )
            self._no_touch_reason = f"first {channel.value} failed: {cause}"
            return
        if not sent:
            self._no_touch_reason = f"first {channel.value} not sent: held back by the gate"
            return
        await self._move(Stage.CONTACTED, f"first touch sent by {channel.value}")

    async def _send(
        self,
        channel: Channel,
        *,
        step: str,
        template: str,
        held: RecordedLead | None = None,
    ) -> bool:
        """Send through the compliance gate; ``False`` if it never went (held back, then the
        lead converted, or held back too often)."""
        workflow_id = workflow.info().workflow_id

        def on_hold(until: datetime, reason: str) -> None:
            self._next_action_at = until
            self._waiting_reason = f"{channel.value} held back: {reason}"
            self._publish()

        sent = await send_touch(
            SendMessageInput(
                org_id=self._input.org_id,
                lead_id=self._input.lead_id,
                channel=channel,
                template=template,
                # The workflow id is reused by the person's next lead, so the step names the lead.
                idempotency_key=f"{workflow_id}/{self._input.lead_id}/{step}",
            ),
            summary=f"send {channel.value} ({step})",
            cancelled=lambda: bool(self._conversion),
            on_hold=on_hold,
            hold_until=held.hold_until if held else None,
            hold_reason=held.hold_reason if held else None,
            woken=lambda: self._resumes,
        )
        if sent:
            self._touches += 1
        return sent

    async def _wait_for_news(
        self, *, then: Stage, deadline: datetime | None, closing: bool = False
    ) -> None:
        """Wait the inactivity threshold after the last news (or until ``deadline``, where a
        previous run left off); repeat submissions and replies restart the clock.

        With ``closing``, new submissions are refused from the moment the wait runs out, and
        those already accepted are noted before the lead moves on.
        """
        threshold = self._threshold
        deadline = deadline or workflow.now() + threshold
        reason: str | None = None
        while True:
            await self._continue_if_long(LOST_WAIT if closing else GHOSTING_WAIT, deadline)
            await self._start_nudge_if_due()
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            self._next_action = f"mark the lead {then.value}"
            self._next_action_at = deadline
            self._waiting_reason = (
                f"waiting for a reply until {deadline:%Y-%m-%d %H:%M} UTC, then {then.value}"
            )
            self._announce_first_step()
            if self._no_touch_reason:
                self._waiting_reason = f"{self._no_touch_reason}; {self._waiting_reason}"
            self._publish()
            resumes = self._resumes
            if not await self._wait(remaining, summary=f"inactivity: {then.value} if no news"):
                if self._resumes != resumes or (
                    self._nudge_start_at is not None and workflow.now() >= self._nudge_start_at
                ):
                    continue  # woken to start the sequence or by a release, not by the deadline
                break
            heard = bool(self._pending or self._replies)  # these restart the clock
            await self._attach_pending()
            await self._take_replies()
            if self._conversion:
                await self._convert()
                return
            if self._opted_out:
                await self._opt_out()
                return
            unanswered = self._unanswered_calls()
            if unanswered and then == Stage.GHOSTING:
                reason = unanswered
                break
            if heard:
                deadline = workflow.now() + threshold
        if closing:
            self._closing = True
            await self._attach_pending()
        await self._move(then, reason or f"no response for {_words(threshold)}")

    def _unanswered_calls(self) -> str | None:
        """Why the lead is ghosting, if a call-retry loop just ran out unanswered."""
        news, self._calls_exhausted = self._calls_exhausted, None
        if news is None or self._stage not in {Stage.NEW, Stage.CONTACTED}:
            return None
        return f"{news.attempts} calls unanswered (escalation {news.escalation_id})"

    def _has_news(self) -> bool:
        return bool(
            self._pending
            or self._replies
            or self._conversion
            or self._opted_out
            or self._calls_exhausted
        )

    async def _wait(self, longest: timedelta, *, summary: str) -> bool:
        """Wait up to ``longest`` for news (``True`` if some came; news that came with the
        timer still counts), or until the sequence is due to start, whichever is first; a
        takeover's release ends the wait too (the sequence's start may have moved)."""
        if self._nudge_start_at is not None and self._held_since is None:
            until_start = self._nudge_start_at - workflow.now()
            if until_start < longest:
                longest, summary = until_start, "start the nudge sequence"
        resumes = self._resumes
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._has_news() or self._resumes != resumes,
                timeout=longest,
                timeout_summary=summary,
            )
        return self._has_news()

    async def _wait_for_release(self) -> None:
        """Wait until an operator's hold ends, or news comes."""
        resumes = self._resumes
        await workflow.wait_condition(lambda: self._has_news() or self._resumes != resumes)

    def _announce_first_step(self) -> None:
        """While the sequence waits to start, say when its first step is due."""
        step = self._first_step
        if self._nudge_start_at is None or step is None or step.due_at is None:
            return
        when = step.due_local or f"{step.due_at:%a %d %b %H:%M} UTC"
        words = step_words(step.channel.value, when=when, number=1, total=step.total)
        self._next_action = words.next_action
        self._next_action_at = step.due_at
        waiting = words.waiting_reason
        self._waiting_reason = (
            f"{waiting}; {self._waiting_reason}" if self._waiting_reason else waiting
        )

    async def _opt_out(self) -> None:
        self._closing = True
        await self._stop_nudge("opt-out")
        await self._attach_pending()
        await self._move(Stage.OPTED_OUT, "consent withdrawn on every channel")

    async def _convert(self) -> None:
        self._closing = True
        await self._stop_nudge("payment" if self._conversion == "paid" else "booking")
        await self._attach_pending()
        await self._move(Stage.CONVERTED, self._conversion or "converted")

    def _nudging(self) -> bool:
        """A sequence is running or waiting to start."""
        running = self._nudge is not None and not self._nudge.done()
        return running or self._nudge_start_at is not None

    async def _stop_nudge(self, reason: str) -> None:
        if self._nudge_start_at is not None:
            stop_on = self._first_step.stop_on if self._first_step else None
            if stops_sequence(reason, stop_on):
                self._nudge_start_at = None  # never started
            return
        if self._nudge is not None and not self._nudge.done():
            await self._nudge.signal(NUDGE_STOP_SIGNAL, NudgeStop(reason=reason))

    async def _wait_for_sequence(self) -> None:
        """The lead is only lost once its sequence has run out; news is handled meanwhile."""
        while self._nudging():
            await self._continue_if_long(SEQUENCE_WAIT, None)
            await self._start_nudge_if_due()
            self._next_action = "the nudge sequence's next step"
            self._next_action_at = None
            self._waiting_reason = "nudge sequence running; lost only after it ends unanswered"
            self._announce_first_step()
            self._publish()
            if self._nudge_start_at is not None and self._held_since is not None:
                # Held: the sequence starts after the release, as much later as the hold lasted.
                await self._wait_for_release()
            elif self._nudge_start_at is not None:
                await self._wait(self._nudge_start_at - workflow.now(), summary="")
            else:
                await workflow.wait_condition(lambda: not self._nudging() or self._has_news())
            await self._attach_pending()
            await self._take_replies()
            if self._conversion:
                await self._convert()
                return
            if self._opted_out:
                await self._opt_out()
                return
            unanswered = self._unanswered_calls()
            if unanswered:
                await self._move(Stage.GHOSTING, unanswered)

    async def _continue_if_long(self, phase: str, deadline: datetime | None) -> None:
        """Continue as new once the history is long, carrying the compact state.

        A running sequence is stopped first and restarted by the next run at the step it
        reached (its message keys keep the first run's prefix, so nothing goes out twice).
        """
        info = workflow.info()
        limit = self._input.history_limit or HISTORY_LIMIT
        long = info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit
        if not long or self._has_news() or not workflow.patched(CONTINUE_PATCH):
            return
        nudge_active, nudge_index, nudge_anchor = False, 0, None
        if self._nudging():
            assert self._nudge is not None
            await self._nudge.signal(NUDGE_STOP_SIGNAL, NudgeStop(reason=CONTINUING))
            result: NudgeResult = await self._nudge
            nudge_active = result.stopped == CONTINUING
            nudge_index, nudge_anchor = result.steps_done, result.anchor
        await workflow.wait_condition(workflow.all_handlers_finished)
        carry = LeadCarry(
            phase=phase,
            stage=self._stage,
            score=self._score,
            touches=self._touches,
            threshold_s=int(self._threshold.total_seconds()),
            deadline=deadline,
            no_touch_reason=self._no_touch_reason,
            seen=self._seen[-SEEN_RECEIPTS_WINDOW:],
            pending=list(self._pending),
            replies=list(self._replies),
            sequence=self._sequence,
            nudge_runs=self._nudge_runs,
            nudge_active=nudge_active,
            nudge_index=nudge_index,
            nudge_anchor=nudge_anchor if nudge_active else self._nudge_anchor,
            nudge_start_at=self._nudge_start_at,
            first_step=self._first_step,
            held_since=self._held_since,
        )
        workflow.continue_as_new(dataclasses.replace(self._input, carry=carry))

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

    def _waiting(self) -> str | None:
        """Why the lead waits, a takeover first."""
        if self._held_since is None:
            return self._waiting_reason
        paused = "paused: an operator has the conversation"
        return f"{paused}; {self._waiting_reason}" if self._waiting_reason else paused

    def _publish(self) -> None:
        """Tell the Web UI what the lead is doing (current details; no personal data)."""
        lines = [f"**Stage:** {self._stage.value}", f"**Touches:** {self._touches}/{TOUCH_CAP}"]
        if self._next_action:
            when = f" at {self._next_action_at:%Y-%m-%d %H:%M} UTC" if self._next_action_at else ""
            lines.append(f"**Next:** {self._next_action}{when}")
        waiting = self._waiting()
        if waiting:
            lines.append(f"**Waiting:** {waiting}")
        workflow.set_current_details("\n\n".join(lines))


def _words(duration: timedelta) -> str:
    hours = int(duration.total_seconds() // 3600)
    if hours and hours % 24 == 0:
        return f"{hours // 24} day{'s' if hours != 24 else ''}"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(duration.total_seconds() // 60)} minutes"
