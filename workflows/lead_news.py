"""What reached a Lead run by signal or update and is not handled yet: its news.

A small deterministic helper of ``LeadWorkflow`` (no Temporal calls): the signal handlers
note news here, once per receipt or message; the run's waits take it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.values import Stage
    from workflows.payloads import (
        CallsExhausted,
        ConsentChanged,
        LeadCarry,
        PaymentReceived,
        ReplyReceived,
    )

__all__ = ["SEEN_RECEIPTS_WINDOW", "LeadNews"]

#: Repeat submissions remembered, so a replayed webhook is not noted twice.
SEEN_RECEIPTS_WINDOW = 200


class LeadNews:
    """Repeat submissions and replies to handle, a conversion, an opt-out, calls unanswered.

    Once the lead is ``closing`` (or converted), conversions, opt-outs and unanswered calls
    are no longer news.
    """

    def __init__(self, *, receipt_id: str, carry: LeadCarry | None) -> None:
        """Nothing new yet, except what a run that continued as new had not handled."""
        #: Repeat submissions to note on the timeline, by receipt id.
        self.pending: list[str] = list(carry.pending) if carry else []
        #: The last receipt and message ids handled (a bounded window).
        self.seen: list[str] = list(carry.seen) if carry else [receipt_id]
        self.replies: list[ReplyReceived] = list(carry.replies) if carry else []
        #: ``paid`` or ``booked``.
        self.conversion: str | None = None
        self.opted_out = False
        #: A call-retry loop of the sequence used all its attempts unanswered.
        self.calls_exhausted: CallsExhausted | None = None
        #: The lead is closing: new submissions are refused.
        self.closing = False

    def any(self) -> bool:
        """Something came that the run has to handle."""
        return bool(
            self.pending
            or self.replies
            or self.conversion
            or self.opted_out
            or self.calls_exhausted
        )

    def _open(self) -> bool:
        return not self.closing and not self.conversion

    def intake(self, receipt_id: str) -> None:
        """A repeat submission (once per receipt)."""
        if receipt_id in self.seen or receipt_id in self.pending:
            return
        self.pending.append(receipt_id)

    def reply(self, reply: ReplyReceived) -> None:
        """A reply (once per message: a replayed webhook is dropped)."""
        if reply.message_id in self.seen or any(
            r.message_id == reply.message_id for r in self.replies
        ):
            return
        self.replies.append(reply)

    def payment(self, payment: PaymentReceived) -> None:
        """A payment; a paid one converts the lead."""
        if payment.status == "paid" and self._open():
            self.conversion = "paid"

    def booking(self) -> None:
        """A booking converts the lead."""
        if self._open():
            self.conversion = "booked"

    def consent(self, change: ConsentChanged) -> None:
        """Consent changed: reachable on no channel any more is an opt-out."""
        if self._open():
            self.opted_out = change.opted_out_everywhere

    def calls_unanswered(self, news: CallsExhausted) -> None:
        """The sequence's call-retry loop used its attempts unanswered."""
        if self._open():
            self.calls_exhausted = news

    def unanswered_calls(self, stage: Stage) -> str | None:
        """Why the lead is ghosting, if a call-retry loop just ran out unanswered (taken:
        asked once)."""
        news, self.calls_exhausted = self.calls_exhausted, None
        if news is None or stage not in {Stage.NEW, Stage.CONTACTED}:
            return None
        return f"{news.attempts} calls unanswered (escalation {news.escalation_id})"

    def handled(self, receipt_or_message_id: str) -> None:
        """Remember a receipt or message handled (the window keeps the last ones)."""
        self.seen = [*self.seen, receipt_or_message_id][-SEEN_RECEIPTS_WINDOW:]
