"""The send activity: every outbound message goes through here, once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import OptedOut, ProviderNotConfigured, SendDeferred, SendFailed
from activities.provider_errors import GAVE_UP, final_attempt
from activities.records import held_back, record, record_stage_change
from activities.senders import Outbound, ProviderReceipt, Sender
from models.errors import ReplyRefused
from models.payloads import ConfirmationInput, StoredMessageInput
from models.rules.appointments import AppointmentText
from models.rules.compliance import Deferred
from models.rules.messages import MISSED_CALL
from models.rules.payment_requests import PaymentText
from models.rules.retry import RetryRefused
from models.rules.whatsapp import whatsapp_template
from models.services.answers import claim_confirmation, claim_text_back
from models.services.bookings import claim_appointment_message, note_held
from models.services.escalations import claim_notification
from models.services.outbound import (
    StepTag,
    TransactionalClaim,
    accept_touch,
    claim_outbound_message,
    claim_step_touch,
)
from models.services.payment_requests import claim_payment_message
from models.services.replies import ready_to_send
from models.services.retry import reopen_failed_send
from models.store.messages import (
    mark_message_attempted,
    mark_message_failed,
    mark_message_sent,
    message_of,
    provider_id_taken,
)
from models.tables import Message, utcnow
from models.values import SETTLED_STATUSES, Channel, MessageStatus, ProviderMode, Stage

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The adapters a worker has: dry-run always, live where the deployment has credentials.
Senders = Mapping[ProviderMode, Mapping[Channel, Sender]]


@dataclass(frozen=True, kw_only=True)
class SendMessageInput:
    """Send a templated message to a lead on a channel, at most once per key."""

    org_id: str
    lead_id: str
    channel: Channel
    template: str
    #: ``{workflow_id}/{step}``: the message's identity across retries and crashes.
    idempotency_key: str
    #: The template's text, when it is not a built-in one (a sequence step).
    text: str | None = None
    #: A sequence step's touch: its sequence, step (from 1) and variant, and the channels
    #: to fall back on. Such a touch is skipped (no row) when no channel can reach the person.
    sequence: str | None = None
    step: int | None = None
    variant: str | None = None
    fallback: tuple[Channel, ...] = ()
    experiment: str | None = None
    #: Once the message has gone, the lead moves to this stage, ``stage_reason`` on its
    #: timeline, in the same transaction as the message's status (a Lead's first touch:
    #: contacted). ``None``: the workflow moves it itself (runs before this existed).
    stage_when_sent: Stage | None = None
    stage_reason: str = ""


@dataclass(frozen=True, kw_only=True)
class StageWhenSent:
    """The lead's stage change once its message has gone (``SendMessageInput``)."""

    stage: Stage
    reason: str


@dataclass(frozen=True, kw_only=True)
class AppointmentMessageInput:
    """Send one of a booking's messages (``AppointmentText``), at most once per key, if it
    still fits the booking as it is when claimed."""

    org_id: str
    booking_id: str
    #: ``AppointmentText``: confirmation, reminder, moved, on_my_way, rating_request...
    kind: str
    #: The booking's version (its time) the message is about.
    version: int
    idempotency_key: str
    #: A reminder's offset before the visit, in seconds.
    offset_s: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentMessageInput:
    """Send one of a payment request's messages (``PaymentText``), at most once per key."""

    org_id: str
    request_id: str
    #: ``PaymentText``: link, due_soon, overdue, final, failed, retry, paid.
    kind: str
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class AppointmentMessageResult:
    """The message sent (``message_id``, ``status``), or why not (``skipped``)."""

    message_id: str | None = None
    status: MessageStatus | None = None
    skipped: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotificationInput:
    """Tell an operator about an escalation, once per level."""

    org_id: str
    escalation_id: str
    operator_id: str
    level: int


@dataclass(frozen=True, kw_only=True)
class RetrySendInput:
    """Send a failed message again, at a person's request (``POST .../retry``)."""

    org_id: str
    message_id: str
    #: Send although the provider refused the message itself (``business_refusal``).
    force: bool = False
    #: Who asked: an operator's id, or ``None`` for the org's API key.
    requested_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class SendMessageResult:
    """The message's id and status; ``repeated`` when an earlier attempt already sent it;
    ``skipped`` (and no message) when a sequence step could reach the person on no channel."""

    message_id: str | None
    status: MessageStatus | None
    repeated: bool
    skipped: str | None = None


class MessageActivities:
    """Sends messages through the channel adapters, recording each before the provider call."""

    def __init__(self, *, engine: Engine, senders: Senders, public_url: str) -> None:
        """Send through ``senders``, record in ``engine``, link back to ``public_url``."""
        self._engine = engine
        self._senders = senders
        self._public_url = public_url.rstrip("/")

    @activity.defn(name="send_message")
    def send_message(self, input: SendMessageInput) -> SendMessageResult:
        """Write the message row (unique key), then send it unless a previous attempt did.

        A previous attempt that may have reached the provider (it crashed or timed out after
        the call began) is reconciled first: the provider is asked whether it has the message,
        or, where the provider dedupes by ``Idempotency-Key``, the same key is sent again.
        """
        now = activity.info().current_attempt_scheduled_time or utcnow()
        try:
            if input.sequence is not None and input.step is not None:
                step = record(
                    self._engine,
                    claim_step_touch,
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    channel=input.channel,
                    fallback=tuple(input.fallback),
                    idempotency_key=input.idempotency_key,
                    text=input.text or "",
                    tag=StepTag(
                        sequence=input.sequence,
                        step=input.step,
                        variant=input.variant,
                        experiment=input.experiment,
                    ),
                    now=now,
                )
                if step.claim is None:
                    log.info("step %s skipped: %s", input.idempotency_key, step.skipped)
                    return SendMessageResult(
                        message_id=None, status=None, repeated=False, skipped=step.skipped
                    )
                claim = step.claim
            else:
                claim = record(
                    self._engine,
                    claim_outbound_message,
                    org_id=input.org_id,
                    lead_id=input.lead_id,
                    channel=input.channel,
                    idempotency_key=input.idempotency_key,
                    template=input.template,
                    text=input.text,
                    now=now,
                )
        except Deferred as deferred:
            raise held_back(
                self._engine,
                deferred,
                org_id=input.org_id,
                lead_id=input.lead_id,
                channel=deferred.channel or input.channel,
                key=input.idempotency_key,
            ) from None
        then = (
            StageWhenSent(stage=input.stage_when_sent, reason=input.stage_reason)
            if input.stage_when_sent is not None
            else None
        )
        return self._deliver(
            claim.message,
            Channel(claim.message.channel),
            opted_out=claim.consent is False,
            outbound=lambda message: self._outbound(
                message,
                org_id=input.org_id,
                key=input.idempotency_key,
                subject=claim.subject,
                unsubscribe_token=claim.unsubscribe_token,
            ),
            then=then,
        )

    @activity.defn(name="send_appointment_message")
    def send_appointment_message(self, input: AppointmentMessageInput) -> AppointmentMessageResult:
        """Claim a booking's message against the booking as it is now, then send it unless a
        previous attempt did. A reminder of a moved or cancelled time is skipped (``skipped``
        says why); quiet hours defer it (``SendDeferred``) like any touch."""
        return self._send_transactional(
            lambda now: record(
                self._engine,
                claim_appointment_message,
                org_id=input.org_id,
                booking_id=input.booking_id,
                kind=AppointmentText(input.kind),
                version=input.version,
                offset_s=input.offset_s,
                idempotency_key=input.idempotency_key,
                now=now,
            ),
            org_id=input.org_id,
            key=input.idempotency_key,
            on_hold=lambda reason: record(
                self._engine,
                note_held,
                org_id=input.org_id,
                booking_id=input.booking_id,
                kind=AppointmentText(input.kind),
                offset_s=input.offset_s,
                reason=reason,
            ),
        )

    @activity.defn(name="send_payment_message")
    def send_payment_message(self, input: PaymentMessageInput) -> AppointmentMessageResult:
        """Claim a payment request's message against the request as it is now (once paid,
        only the thanks), then send it unless a previous attempt did."""
        return self._send_transactional(
            lambda now: record(
                self._engine,
                claim_payment_message,
                org_id=input.org_id,
                request_id=input.request_id,
                kind=PaymentText(input.kind),
                idempotency_key=input.idempotency_key,
                now=now,
            ),
            org_id=input.org_id,
            key=input.idempotency_key,
        )

    def _send_transactional(
        self,
        claim_at: Callable[[datetime], TransactionalClaim],
        *,
        org_id: str,
        key: str,
        on_hold: Callable[[str], object] | None = None,
    ) -> AppointmentMessageResult:
        """Claim (``claim_at`` the attempt's scheduled time) and deliver a transactional
        message, or say why it is skipped; quiet hours raise ``SendDeferred``."""
        now = activity.info().current_attempt_scheduled_time or utcnow()
        try:
            claimed = claim_at(now)
        except Deferred as deferred:
            until, reason = deferred.verdict.until, deferred.verdict.reason or "quiet hours"
            assert until is not None
            if on_hold is not None:
                on_hold(reason)
            raise SendDeferred(reason, until) from None
        if claimed.claim is None or claimed.channel is None:
            return AppointmentMessageResult(skipped=claimed.skipped)
        claim = claimed.claim
        sent = self._deliver(
            claim.message,
            claimed.channel,
            opted_out=claim.consent is False,
            outbound=lambda message: self._outbound(
                message,
                org_id=org_id,
                key=key,
                subject=claim.subject,
                unsubscribe_token=claim.unsubscribe_token,
            ),
        )
        return AppointmentMessageResult(message_id=sent.message_id, status=sent.status)

    @activity.defn(name="send_confirmation")
    def send_confirmation(self, input: ConfirmationInput) -> SendMessageResult | None:
        """Answer a STOP, START or HELP message, or a missed call, once (keyed by the message
        it answers); ``None`` when a missed call's text-back is withheld and nothing is sent.

        Neither is an automated touch, so neither counts against the touch budget. A
        confirmation skips the compliance gate and the consent check (an opt-out is confirmed
        once, as carriers require). A text-back is a response to someone who just called: it
        skips quiet hours too, but not a withdrawn SMS consent, and goes at most once per
        number per 20 minutes (``services.outbound.claim_text_back``).
        """
        withheld: str | None = None
        if input.kind == MISSED_CALL:
            claim = record(
                self._engine,
                claim_text_back,
                org_id=input.org_id,
                inbound_message_id=input.inbound_message_id,
            )
            message, withheld = claim.message, claim.withheld
        else:
            message = record(
                self._engine,
                claim_confirmation,
                org_id=input.org_id,
                inbound_message_id=input.inbound_message_id,
                kind=input.kind,
            )
        if message is None:
            log.info(
                "text-back for call %s of org %s withheld: %s",
                input.inbound_message_id,
                input.org_id,
                withheld,
            )
            return None
        return self._deliver_system(message, org_id=input.org_id)

    @activity.defn(name="send_notification")
    def send_notification(self, input: NotificationInput) -> SendMessageResult:
        """Send an operator the escalation's handoff summary (SMS, else email), once per level.

        A message to a person of the business, not a touch: no consent, gate or budget.
        """
        message = record(
            self._engine,
            claim_notification,
            org_id=input.org_id,
            escalation_id=input.escalation_id,
            operator_id=input.operator_id,
            level=input.level,
        )
        return self._deliver_system(message, org_id=input.org_id)

    @activity.defn(name="send_reply")
    def send_reply(self, input: StoredMessageInput) -> SendMessageResult:
        """Send an operator's reply, once (keyed by its row).

        Checked again at send time: consent withdrawn meanwhile fails it for good
        (``OptedOut``); quiet hours raise ``SendDeferred`` with when they end. Not a touch:
        the touch budget doesn't apply.
        """
        now = activity.info().current_attempt_scheduled_time or utcnow()
        try:
            message = record(
                self._engine,
                ready_to_send,
                org_id=input.org_id,
                message_id=input.message_id,
                now=now,
            )
        except ReplyRefused as refused:
            # Its own transaction: the check's rolled back with the refusal.
            record(
                self._engine, mark_message_failed, message_id=input.message_id, error=str(refused)
            )
            raise OptedOut(str(refused)) from None
        except Deferred as deferred:
            verdict = deferred.verdict
            assert verdict.until is not None and verdict.reason is not None
            raise SendDeferred(verdict.reason, verdict.until) from None
        return self._deliver_system(message, org_id=input.org_id)

    @activity.defn(name="send_system_message")
    def send_system_message(self, input: StoredMessageInput) -> SendMessageResult:
        """Deliver keepwarm's own message to a person of the business (a takeover's
        notice), once, keyed by its row. No consent, gate or budget applies."""
        message = record(self._engine, message_of, org_id=input.org_id, message_id=input.message_id)
        return self._deliver_system(message, org_id=input.org_id)

    @activity.defn(name="retry_send")
    def retry_send(self, input: RetrySendInput) -> SendMessageResult:
        """Send a failed message again, once, through the same path as its first send.

        The row is put back to ``pending`` under its lock, after the retry rule is asked again
        (``services.retry``): an opt-out since fails it for good (``OptedOut``), another
        refusal too (``SendFailed``), and quiet hours or a takeover hold it back
        (``SendDeferred``). Then it is delivered as every send is: an earlier attempt that
        may have reached the provider (this retry's, cut off, or the failed send's) is
        reconciled before anything is sent, and the provider gets the row's own key.
        """
        now = activity.info().current_attempt_scheduled_time or utcnow()
        try:
            claim = record(
                self._engine,
                reopen_failed_send,
                org_id=input.org_id,
                message_id=input.message_id,
                force=input.force,
                now=now,
            )
        except RetryRefused as refused:
            if refused.code == "opted_out":
                raise OptedOut(str(refused)) from None
            raise SendFailed(str(refused)) from None
        except Deferred as deferred:
            verdict = deferred.verdict
            assert verdict.until is not None and verdict.reason is not None
            raise SendDeferred(verdict.reason, verdict.until) from None
        message = claim.message
        return self._deliver(
            message,
            Channel(message.channel),
            opted_out=claim.opted_out,
            outbound=lambda row: self._outbound(
                row,
                org_id=input.org_id,
                key=row.idempotency_key or row.id,
                subject=row.subject,
                unsubscribe_token=claim.unsubscribe_token,
            ),
        )

    def deliver_staff_message(self, message: Message, *, org_id: str) -> SendMessageResult:
        """Deliver keepwarm's own message to a person of the business that another activity
        claimed (an alert's notice): no consent, gate or budget; keyed by its row."""
        return self._deliver_system(message, org_id=org_id)

    def _deliver_system(self, message: Message, *, org_id: str) -> SendMessageResult:
        """Deliver a message whose row says all (a confirmation, a text-back, an operator's
        notification, an operator's reply, checked by its caller): no consent check here,
        keyed by its row."""
        return self._deliver(
            message,
            Channel(message.channel),
            opted_out=False,
            outbound=lambda row: self._outbound(
                row,
                org_id=org_id,
                key=row.idempotency_key or row.id,
                subject=row.subject,
                unsubscribe_token=None,
            ),
        )

    def _deliver(
        self,
        message: Message,
        channel: Channel,
        *,
        opted_out: bool,
        outbound: Callable[[Message], Outbound],
        then: StageWhenSent | None = None,
    ) -> SendMessageResult:
        """Send a claimed message unless a previous attempt settled it (reconciling first);
        ``then``: the lead's stage change once it has gone."""
        status = MessageStatus(message.status)
        if status in SETTLED_STATUSES:
            log.info("message %s already %s; not sending again", message.id, status)
            if then is not None and message.lead_id is not None:
                # Settled before the stage change: a delivery report got here first.
                record_stage_change(
                    self._engine,
                    org_id=message.org_id,
                    lead_id=message.lead_id,
                    stage=then.stage,
                    reason=then.reason,
                )
            return SendMessageResult(message_id=message.id, status=status, repeated=True)
        if status == MessageStatus.FAILED:
            # An earlier attempt failed for good; say so again rather than pretend it went.
            raise SendFailed(message.error or "an earlier attempt failed")
        if opted_out:
            self._fail(message, f"the person opted out of {channel.value}")
            raise OptedOut(f"the person opted out of {channel.value}")
        sender = self._sender(message, channel)
        if not message.to_address:
            self._fail(message, f"the contact has no address for {channel.value}")
            raise SendFailed(f"the contact has no address for {channel.value}")
        request = outbound(message)
        if message.attempted_at is not None:
            attempted_at = message.attempted_at
            found = self._ask(message, lambda: sender.reconcile(request, attempted_at=attempted_at))
            if (
                found is not None
                and found.provider_message_id
                and record(
                    self._engine,
                    provider_id_taken,
                    message=message,
                    provider_message_id=found.provider_message_id,
                )
            ):
                found = None  # another of our messages, identical to this one
            if found is not None:
                log.info("message %s was sent by an earlier attempt; recording it", message.id)
                return self._sent(message, found, repeated=True, then=then)
        else:
            record(self._engine, mark_message_attempted, message_id=message.id)
        receipt = self._ask(message, lambda: sender.send(request))
        return self._sent(message, receipt, repeated=False, then=then)

    def _ask(self, message: Message, call: Callable[[], T]) -> T:
        """Make a provider call for ``message``; a failure that won't be retried is recorded
        on the row with its class (``business_refusal: ...``, ``credentials_rejected: ...``).

        A provider that is down, rejects the credentials or has suspended the account raises
        ``ProviderUnavailable``, which Temporal retries: the row stays pending (nothing is
        burned while a key is being fixed) until the send's deadline leaves no next attempt.
        """
        try:
            return call()
        except ApplicationError as error:
            if error.non_retryable:
                self._fail(message, error.message, revoke=isinstance(error, OptedOut))
            elif final_attempt(error, info=activity.info(), now=utcnow()):
                self._fail(message, error.message + GAVE_UP)
            raise

    def _sender(self, message: Message, channel: Channel) -> Sender:
        mode = ProviderMode(message.mode or ProviderMode.DRY_RUN)
        sender = self._senders.get(mode, {}).get(channel)
        if sender is None:
            reason = (
                f"this worker has no live {channel.value} adapter: set KEEPWARM_PROVIDER_MODE=live "
                "and the provider's credentials"
                if mode == ProviderMode.LIVE
                else f"no adapter for channel {channel.value}"
            )
            self._fail(message, reason)
            raise ProviderNotConfigured(reason)
        return sender

    def _outbound(
        self,
        message: Message,
        *,
        org_id: str,
        key: str,
        subject: str | None,
        unsubscribe_token: str | None,
    ) -> Outbound:
        headers: tuple[tuple[str, str], ...] = ()
        status_callback = None
        if message.channel in {Channel.SMS, Channel.WHATSAPP}:
            # Twilio signs the whole URL, so the key in the query can't be forged.
            status_callback = (
                f"{self._public_url}/v1/webhooks/twilio/{org_id}?key={quote(key, safe='')}"
            )
        if unsubscribe_token:
            headers = (
                ("List-Unsubscribe", f"<{self._public_url}/u/{unsubscribe_token}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        # Fixed when the row was claimed, so a retry sends the form the first attempt chose.
        template = whatsapp_template(message)
        if template is not None:
            subject = None  # the row's subject holds the template, not a subject
        assert message.to_address is not None
        return Outbound(
            to=message.to_address,
            sender=message.from_address,
            body=message.body,
            subject=subject,
            idempotency_key=key,
            status_callback=status_callback,
            headers=headers,
            tags=(("lead_id", message.lead_id or ""), ("message_id", message.id)),
            content_sid=template.content_sid if template else None,
            content_variables=template.content_variables if template else None,
        )

    def _sent(
        self,
        message: Message,
        receipt: ProviderReceipt,
        *,
        repeated: bool,
        then: StageWhenSent | None = None,
    ) -> SendMessageResult:
        accepted = {
            "message_id": message.id,
            "status": receipt.status,
            "provider_message_id": receipt.provider_message_id,
        }
        if then is None:
            stored = record(self._engine, mark_message_sent, **accepted)
        else:
            stored = record(
                self._engine, accept_touch, **accepted, stage=then.stage, reason=then.reason
            )
        status = MessageStatus(stored.status)
        return SendMessageResult(message_id=message.id, status=status, repeated=repeated)

    def _fail(self, message: Message, error: str, *, revoke: bool = False) -> None:
        record(self._engine, mark_message_failed, message_id=message.id, error=error, revoke=revoke)
