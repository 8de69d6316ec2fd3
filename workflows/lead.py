"""The Lead workflow: one per open lead, keyed by the org and the person's contact key.

Its state lives in small deterministic helpers beside it: ``lead_news`` (what came by signal
or update), ``lead_sequence`` (the NudgeSequence child, or its pending start),
``lead_status`` (what the ``status`` query and the Web UI say) and ``hold_clock`` (an
operator's takeover).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import SendMessageInput
    from activities.records import (
        AttachIntakeInput,
        LeadRecordActivities,
        RecordLeadInput,
        RecordStageInput,
    )
    from models.ids import lead_message_key

    # Imported here, not only by the helpers: the sandbox lists a passed-through module
    # only when the workflow's own module imports it, and pydantic resolves the payloads'
    # annotations (``LeadCarry.first_step``, ``RecordedLead.first_step``) through that list.
    from models.payloads import NextStep, RecordedLead  # noqa: F401
    from models.values import Channel, Stage
    from workflows import search_attributes as sa
    from workflows.hold_clock import HoldClock
    from workflows.lead_news import SEEN_RECEIPTS_WINDOW, LeadNews
    from workflows.lead_sequence import LeadSequence, SequenceState
    from workflows.lead_status import LiveStatus, duration_words
    from workflows.payloads import (
        CALLS_EXHAUSTED_SIGNAL,
        RELEASED_SIGNAL,
        TAKEN_OVER_SIGNAL,
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
        PaymentReceived,
        ReplyReceived,
        ThreadReleased,
        ThreadTakenOver,
    )
    from workflows.policies import run_record, send_touch

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

#: Patch id: the lead's score became a search attribute (``LeadScore``) after recording.
SCORE_ATTRIBUTE_PATCH = "lead-score-search-attribute"
#: Patch id: long-running leads continue as new with their compact state (``LeadCarry``).
CONTINUE_PATCH = "lead-continue-as-new"
#: Patch id: the first touch's send moves the lead to ``contacted`` in its own transaction
#: (runs before it moved it with a ``record_stage`` local activity after the send).
STAGE_WITH_SEND_PATCH = "first-touch-stage-with-send"
#: History events after which a run continues as new (well under Temporal's 51,200 limit,
#: and sooner if the server suggests it).
HISTORY_LIMIT = 5_000
#: The wait a run is in, as carried across continue-as-new.
GHOSTING_WAIT, SEQUENCE_WAIT, LOST_WAIT = "ghosting", "sequence", "lost"


@workflow.defn(name="Lead")
class LeadWorkflow:
    """Works one lead from intake until it converts, is lost or opts out.

    Steps:
        1. ``record_lead``: resolve the contact, create the lead, pick the first-touch channel.
        2. First touch: SMS with SMS consent, else email; ``send_message`` keyed
           ``{workflow_id}/{lead_id}/touch-1`` so it goes out once. Stage ``contacted``.
           The lead's nudge sequence, if its intent has one, starts shortly before its
           first step is due.
        3. Wait. Repeat submissions (update ``submit_intake``) are noted on the timeline and
           restart the inactivity clock; a reply (signal ``message_received``) makes the lead
           ``engaged`` and restarts it too. After the org's inactivity threshold without news
           the lead is ``ghosting``; after another threshold, ``lost``, and the workflow ends.
           A payment (signal ``payment_received``) or a booking (signal ``booking_received``)
           converts the lead at once; the run ends when its sequence has stopped.
        4. A run whose history grows past ``HISTORY_LIMIT`` events continues as new with its
           compact state (``LeadCarry``); a running sequence is paused and restarted, in the
           new run, at the step it reached.

    While an operator holds the contact's thread (signals ``taken_over``/``released``) the
    sequence and its calls pause, and no touch of this run goes out.

    Once the lead is closing, ``submit_intake`` is rejected, so the API opens a new lead for
    the person instead of handing a submission to a run that would drop it.
    """

    @workflow.init
    def __init__(self, input: LeadInput) -> None:
        """Set up state before the first signal can arrive."""
        self._input = input
        carry = input.carry  # a run that continued as new already knows some of it
        self._news = LeadNews(receipt_id=input.receipt_id, carry=carry)
        #: An operator holds the contact's thread; releases are counted so a touch the
        #: takeover held back is tried again at once.
        self._hold = HoldClock(carry.held_since if carry else None)
        self._live = LiveStatus(self._hold)
        self._sequence = LeadSequence(org_id=input.org_id, lead_id=input.lead_id, hold=self._hold)
        self._score = 0
        self._threshold = timedelta(0)

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
        if phase == SEQUENCE_WAIT and not (self._news.conversion or self._news.closing):
            await self._wait_for_sequence()
            phase = LOST_WAIT
        if phase == LOST_WAIT and not (self._news.conversion or self._news.closing):
            await self._wait_for_news(then=Stage.LOST, deadline=deadline, closing=True)
        self._live.closed(self._news.conversion)
        await self._attach_pending()
        if self._sequence.active():  # one that does not stop on this conversion runs its course
            await workflow.wait_condition(lambda: not self._sequence.active())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return LeadResult(stage=self._live.stage)

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
        await self._sequence.begin(
            recorded.sequence,
            has_first_touch=recorded.first_touch is not None,
            first=recorded.first_step,
            anchor=recorded.sequence_anchor,
        )
        return GHOSTING_WAIT, None

    async def _resume(self, carry: LeadCarry) -> tuple[str, datetime | None]:
        """Take up where the previous run continued as new."""
        self._live.stage = carry.stage
        self._score = carry.score
        self._live.touches = carry.touches
        self._threshold = timedelta(seconds=carry.threshold_s)
        self._live.no_touch_reason = carry.no_touch_reason
        self._sequence.take_up(carry)
        workflow.upsert_search_attributes(
            [sa.LEAD_STAGE.value_set(self._live.stage.value), sa.LEAD_SCORE.value_set(self._score)]
        )
        if carry.nudge_active:
            await self._sequence.start(start_index=carry.nudge_index, anchor=carry.nudge_anchor)
        return carry.phase, carry.deadline

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
        if self._news.closing:
            raise ValueError("this lead is closing; start a new one")

    @workflow.signal(name="intake_received")
    def intake_received(self, event: IntakeReceived) -> None:
        """Signal form of ``submit_intake`` (kept for runs started before the update existed)."""
        self._news.intake(event.receipt_id)

    @workflow.signal(name="message_received")
    def message_received(self, reply: ReplyReceived) -> None:
        """The person replied (once per message: a replayed webhook is dropped)."""
        self._news.reply(reply)

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
        self._news.payment(payment)

    @workflow.signal(name="consent_changed")
    def consent_changed(self, change: ConsentChanged) -> None:
        """Consent changed; a person reachable on no channel any more ends the lead."""
        self._news.consent(change)

    @workflow.signal(name="booking_received")
    def booking_received(self, booking: BookingReceived) -> None:
        """The person booked: the lead converts."""
        self._news.booking()

    @workflow.signal(name=TAKEN_OVER_SIGNAL)
    async def taken_over(self, event: ThreadTakenOver) -> None:
        """An operator holds the contact's thread: the sequence and its calls pause, and no
        touch of this run goes out (the compliance gate holds it back) until ``released``."""
        if not self._hold.hold():
            return
        self._live.publish()
        await self._sequence.tell()

    @workflow.signal(name=RELEASED_SIGNAL)
    async def released(self, event: ThreadReleased) -> None:
        """The thread is the AI's again: the sequence goes on where it was (one not started
        yet starts as much later as the hold lasted), and a touch the takeover held back is
        tried again now (also by a run that started during the hold and was never told of
        it: the gate held its touch back all the same)."""
        held_for = self._hold.release()
        if held_for is None:
            await self._sequence.tell()  # it may wait on a touch the gate held back
            return
        self._sequence.postpone(held_for)
        self._live.publish()
        await self._sequence.tell()

    @workflow.signal(name=CALLS_EXHAUSTED_SIGNAL)
    def calls_exhausted(self, news: CallsExhausted) -> None:
        """The sequence's call-retry loop used its attempts unanswered (escalation opened)."""
        self._news.calls_unanswered(news)

    @workflow.query(name="status")
    def status(self) -> LeadStatus:
        """Where the lead stands, what happens next and why it is waiting."""
        return self._live.status(
            pending_steps=self._sequence.pending_steps(),
            nudge_workflow_id=self._sequence.workflow_id(),
        )

    async def _first_touch(self, recorded: RecordedLead) -> None:
        channel = recorded.first_touch
        if channel is None:
            self._live.no_touch_reason = f"no first touch: {recorded.no_touch_reason}"
            return
        self._live.sending_first_touch(channel)
        reason = f"first touch sent by {channel.value}"
        with_send = workflow.patched(STAGE_WITH_SEND_PATCH)
        try:
            sent = await self._send(
                channel,
                step="touch-1",
                template="first_touch",
                held=recorded,
                then=(Stage.CONTACTED, reason) if with_send else None,
            )
        except ActivityError as error:
            # Already on the timeline (touch_skipped); the lead waits for the person instead.
            cause = (
                error.cause.message
                if isinstance(error.cause, ApplicationError)
                else "retries exhausted"
            )
            self._live.no_touch_reason = f"first {channel.value} failed: {cause}"
            return
        if not sent:
            self._live.no_touch_reason = f"first {channel.value} not sent: held back by the gate"
            return
        if with_send:
            self._moved(Stage.CONTACTED)  # recorded with the send
        else:
            await self._move(Stage.CONTACTED, reason)

    async def _send(
        self,
        channel: Channel,
        *,
        step: str,
        template: str,
        held: RecordedLead | None = None,
        then: tuple[Stage, str] | None = None,
    ) -> bool:
        """Send through the compliance gate; ``False`` if it never went (held back, then the
        lead converted, or held back too often). ``then``: the stage (and why) the send
        moves the lead to once it has gone."""
        workflow_id = workflow.info().workflow_id
        sent = await send_touch(
            SendMessageInput(
                org_id=self._input.org_id,
                lead_id=self._input.lead_id,
                channel=channel,
                template=template,
                # The workflow id is reused by the person's next lead, so the step names the lead.
                idempotency_key=lead_message_key(workflow_id, self._input.lead_id, step),
                stage_when_sent=then[0] if then else None,
                stage_reason=then[1] if then else "",
            ),
            summary=f"send {channel.value} ({step})",
            cancelled=lambda: bool(self._news.conversion),
            on_hold=lambda until, reason: self._live.held_back(channel, until, reason),
            hold_until=held.hold_until if held else None,
            hold_reason=held.hold_reason if held else None,
            woken=lambda: self._hold.releases,
        )
        if sent:
            self._live.touches += 1
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
            await self._sequence.start_if_due()
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            self._live.waiting_for_news(then, deadline, self._sequence.pending_step())
            releases = self._hold.releases
            if not await self._wait(remaining, summary=f"inactivity: {then.value} if no news"):
                if self._hold.releases != releases or self._sequence.due():
                    continue  # woken to start the sequence or by a release, not by the deadline
                break
            heard = bool(self._news.pending or self._news.replies)  # these restart the clock
            if await self._take_news():
                return
            unanswered = self._news.unanswered_calls(self._live.stage)
            if unanswered and then == Stage.GHOSTING:
                reason = unanswered
                break
            if heard:
                deadline = workflow.now() + threshold
        if closing:
            self._news.closing = True
            await self._attach_pending()
        await self._move(then, reason or f"no response for {duration_words(threshold)}")

    async def _wait(self, longest: timedelta, *, summary: str) -> bool:
        """Wait up to ``longest`` for news (``True`` if some came; news that came with the
        timer still counts), or until the sequence is due to start, whichever is first; a
        takeover's release ends the wait too (the sequence's start may have moved)."""
        until_start = self._sequence.until_start()
        if until_start is not None and until_start < longest:
            longest, summary = until_start, "start the nudge sequence"
        releases = self._hold.releases
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._news.any() or self._hold.releases != releases,
                timeout=longest,
                timeout_summary=summary,
            )
        return self._news.any()

    async def _wait_for_release(self) -> None:
        """Wait until an operator's hold ends, or news comes."""
        releases = self._hold.releases
        await workflow.wait_condition(lambda: self._news.any() or self._hold.releases != releases)

    async def _wait_for_sequence(self) -> None:
        """The lead is only lost once its sequence has run out; news is handled meanwhile."""
        while self._sequence.active():
            await self._continue_if_long(SEQUENCE_WAIT, None)
            await self._sequence.start_if_due()
            self._live.waiting_for_sequence(self._sequence.pending_step())
            start_at = self._sequence.start_at
            if start_at is not None and self._hold.held:
                # Held: the sequence starts after the release, as much later as the hold lasted.
                await self._wait_for_release()
            elif start_at is not None:
                await self._wait(start_at - workflow.now(), summary="")
            else:
                await workflow.wait_condition(
                    lambda: not self._sequence.active() or self._news.any()
                )
            if await self._take_news():
                return
            unanswered = self._news.unanswered_calls(self._live.stage)
            if unanswered:
                await self._move(Stage.GHOSTING, unanswered)

    async def _take_news(self) -> bool:
        """Note repeat submissions and take replies; ``True`` if the lead converted or
        opted out meanwhile (it is closing now)."""
        await self._attach_pending()
        await self._take_replies()
        if self._news.conversion:
            await self._close(
                Stage.CONVERTED,
                stop="payment" if self._news.conversion == "paid" else "booking",
                reason=self._news.conversion or "converted",
            )
            return True
        if self._news.opted_out:
            await self._close(
                Stage.OPTED_OUT, stop="opt-out", reason="consent withdrawn on every channel"
            )
            return True
        return False

    async def _close(self, stage: Stage, *, stop: str, reason: str) -> None:
        """Converted or opted out: stop the sequence (unless its ``stop_on`` leaves ``stop``
        out), note what is pending and move to ``stage``."""
        self._news.closing = True
        await self._sequence.stop(stop)
        await self._attach_pending()
        await self._move(stage, reason)

    async def _continue_if_long(self, phase: str, deadline: datetime | None) -> None:
        """Continue as new once the history is long, carrying the compact state.

        A running sequence is stopped first and restarted by the next run at the step it
        reached (its message keys keep the first run's prefix, so nothing goes out twice).
        """
        info = workflow.info()
        limit = self._input.history_limit or HISTORY_LIMIT
        long = info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit
        if not long or self._news.any() or not workflow.patched(CONTINUE_PATCH):
            return
        stopped = await self._sequence.stop_to_continue()
        await workflow.wait_condition(workflow.all_handlers_finished)
        carry = self._carry(phase, deadline, stopped)
        workflow.continue_as_new(dataclasses.replace(self._input, carry=carry))

    def _carry(self, phase: str, deadline: datetime | None, stopped: SequenceState) -> LeadCarry:
        """The compact state the next run takes up (``stopped``: where the sequence stood)."""
        news, live, sequence = self._news, self._live, self._sequence
        return LeadCarry(
            phase=phase,
            stage=live.stage,
            score=self._score,
            touches=live.touches,
            threshold_s=int(self._threshold.total_seconds()),
            deadline=deadline,
            no_touch_reason=live.no_touch_reason,
            seen=news.seen[-SEEN_RECEIPTS_WINDOW:],
            pending=list(news.pending),
            replies=list(news.replies),
            sequence=sequence.name,
            nudge_runs=sequence.runs,
            nudge_active=stopped.active,
            nudge_index=stopped.index,
            nudge_anchor=stopped.anchor if stopped.active else sequence.anchor,
            nudge_start_at=sequence.start_at,
            first_step=sequence.first_step,
            held_since=self._hold.held_since,
        )

    async def _take_replies(self) -> None:
        if self._news.replies:
            await self._sequence.stop("reply")
        while self._news.replies:
            reply = self._news.replies[0]
            if self._live.stage in {Stage.NEW, Stage.CONTACTED, Stage.GHOSTING}:
                await self._move(Stage.ENGAGED, f"replied by {reply.channel.value}")
            self._news.replies.pop(0)
            self._news.handled(reply.message_id)

    async def _attach_pending(self) -> None:
        while self._news.pending:
            receipt_id = self._news.pending[0]
            await run_record(
                LeadRecordActivities.attach_intake,
                AttachIntakeInput(
                    org_id=self._input.org_id, lead_id=self._input.lead_id, receipt_id=receipt_id
                ),
                summary="note repeat submission",
            )
            self._news.pending.pop(0)
            self._news.handled(receipt_id)

    async def _move(self, stage: Stage, reason: str) -> None:
        await run_record(
            LeadRecordActivities.record_stage,
            RecordStageInput(
                org_id=self._input.org_id, lead_id=self._input.lead_id, stage=stage, reason=reason
            ),
            summary=f"stage → {stage.value}",
        )
        self._moved(stage)

    def _moved(self, stage: Stage) -> None:
        """The lead's stage was recorded: the status, the search attribute and the Web UI."""
        self._live.stage = stage
        workflow.upsert_search_attributes([sa.LEAD_STAGE.value_set(stage.value)])
        self._live.publish()
