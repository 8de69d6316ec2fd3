"""A payment request: its Stripe payment link, sent, reminded and followed up until paid."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import MessageActivities, PaymentMessageInput
    from activities.payment_requests import (
        GiveUpInput,
        PaymentRequestActivities,
        PaymentRequestInput,
    )
    from models.payloads import PaymentRequestState
    from models.rules.payment_requests import FollowUpStep, follow_up, gives_up_at
    from workflows import search_attributes as sa
    from workflows.policies import (
        RECORD_RETRY,
        RECORD_TIMEOUT,
        SEND_DEADLINE,
        SEND_RETRY,
        SEND_TIMEOUT,
    )
    from workflows.transactional import StepLog

__all__ = [
    "PAYMENT_CHANGED_SIGNAL",
    "PAYMENT_FOLLOWUP_WORKFLOW",
    "PAYMENT_LINK_UPDATE",
    "PaymentFollowupInput",
    "PaymentFollowupResult",
    "PaymentFollowupWorkflow",
    "PaymentNews",
]

PAYMENT_FOLLOWUP_WORKFLOW = "PaymentFollowup"
PAYMENT_CHANGED_SIGNAL = "payment_changed"
PAYMENT_LINK_UPDATE = "payment_link"


@dataclass(frozen=True, kw_only=True)
class PaymentFollowupInput:
    """Follow one payment request (its row holds everything else)."""

    org_id: str
    request_id: str
    lead_id: str


@dataclass(frozen=True, kw_only=True)
class PaymentNews:
    """The request's row changed (signal ``payment_changed``): Stripe said paid or failed."""

    what: str


@dataclass(frozen=True, kw_only=True)
class PaymentFollowupResult:
    """``paid``, ``unpaid`` (given up after every reminder) or ``no_link`` (the link could
    not be created: live payments without Stripe credentials); the messages sent."""

    outcome: str
    sent: list[str] = field(default_factory=list)


@workflow.defn(name=PAYMENT_FOLLOWUP_WORKFLOW)
class PaymentFollowupWorkflow:
    """One payment request, from its link to the payment.

    1. Create the payment link (Stripe, keyed by the request; in dry run a simulated one).
    2. Send it, then remind a day before the due date, a day after it and a final notice
       (``models.rules.payment_requests.follow_up``), each a transactional message keyed
       ``{workflow_id}/{step}``.
    3. A failed payment (``invoice.payment_failed``) adds a notice at once and a reminder
       two days later (the dunning steps), per failure.
    4. Paid (``checkout.session.completed``, ``invoice.paid``): the thanks, and it ends; the
       webhook has already recorded the payment on the lead (it converts, the revenue counts).
       Unpaid a week after the due date (and the last failure's steps): closed ``unpaid``.

    The row is the truth: the webhook writes Stripe's news there and signals
    ``payment_changed``; every message is claimed against the row, so none goes once paid.
    """

    def __init__(self) -> None:
        self._news = 0
        self._seen = 0
        self._url: str | None = None
        self._no_link: str | None = None
        self._log = StepLog()

    @workflow.run
    async def run(self, input: PaymentFollowupInput) -> PaymentFollowupResult:
        """Link, send, remind and wait for Stripe's word, until paid or given up."""
        sa.mark_org(input.org_id)
        ids = PaymentRequestInput(org_id=input.org_id, request_id=input.request_id)
        try:
            self._url = await workflow.execute_activity_method(
                PaymentRequestActivities.create_payment_link,
                ids,
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_DEADLINE,
                retry_policy=SEND_RETRY,
                summary="create the payment link",
            )
        except ActivityError as error:
            self._no_link = str(error.cause or error)
            workflow.logger.warning("no payment link for %s: %s", input.request_id, error)
            return PaymentFollowupResult(outcome="no_link")
        while True:
            self._seen = self._news
            state: PaymentRequestState = await workflow.execute_local_activity_method(
                PaymentRequestActivities.payment_request_state,
                ids,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary="read the payment request",
            )
            steps = [
                step
                for step in follow_up(
                    created_at=state.created_at,
                    due_at=state.due_at,
                    failures=state.failures,
                    failed_at=state.failed_at,
                    paid_at=state.paid_at,
                )
                if step.step not in self._log.done
            ]
            if state.status != "open" and not steps:
                return self._finish(state.status)
            now = workflow.now()
            due = min(steps, key=self._due_at, default=None)
            if due is not None and self._due_at(due) <= now:
                await self._send(input, due)
                continue
            if state.status == "open":
                give_up = gives_up_at(due_at=state.due_at, failed_at=state.failed_at)
                wake = min(self._due_at(due), give_up) if due is not None else give_up
                if due is None and wake <= now:
                    await workflow.execute_local_activity_method(
                        PaymentRequestActivities.give_up_payment_request,
                        GiveUpInput(org_id=input.org_id, request_id=input.request_id, now=now),
                        start_to_close_timeout=RECORD_TIMEOUT,
                        retry_policy=RECORD_RETRY,
                        summary="close the request unpaid",
                    )
                    continue
            else:  # paid or closed, with steps still held back by the quiet hours
                assert due is not None
                wake = self._due_at(due)
            workflow.set_current_details(
                f"**Next:** {due.step} at {wake:%Y-%m-%d %H:%M} UTC"
                if due is not None
                else f"**Waiting:** for the payment until {wake:%Y-%m-%d %H:%M} UTC"
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._news != self._seen,
                    timeout=wake - now,
                    timeout_summary=due.step if due is not None else "give up",
                )

    @workflow.signal(name=PAYMENT_CHANGED_SIGNAL)
    def payment_changed(self, news: PaymentNews) -> None:
        """Stripe said paid or failed (already on the row)."""
        self._news += 1

    @workflow.update(name=PAYMENT_LINK_UPDATE)
    async def payment_link(self) -> str:
        """The payment link, once created (the API answers the request with it)."""
        await workflow.wait_condition(lambda: self._url is not None or self._no_link is not None)
        if self._url is None:
            raise ApplicationError(f"no payment link: {self._no_link}", non_retryable=True)
        return self._url

    def _due_at(self, step: FollowUpStep) -> datetime:
        return self._log.due_at(step.step, step.due)

    async def _send(self, input: PaymentFollowupInput, step: FollowUpStep) -> None:
        await self._log.send(
            MessageActivities.send_payment_message,
            PaymentMessageInput(
                org_id=input.org_id,
                request_id=input.request_id,
                kind=step.kind.value,
                idempotency_key=f"{workflow.info().workflow_id}/{step.step}",
            ),
            step=step.step,
        )

    def _finish(self, outcome: str) -> PaymentFollowupResult:
        workflow.set_current_details(f"**Done:** {outcome}")
        return PaymentFollowupResult(outcome=outcome, sent=list(self._log.sent))
