"""The send activity: every outbound message goes through here, once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity

from activities.errors import InvalidRecipient, ProviderNotConfigured, SendFailed
from activities.records import recording
from activities.senders import Outbound, Sender
from models import store
from models.values import SETTLED_STATUSES, Channel, MessageStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SendMessageInput:
    """Send a templated message to a lead on a channel, at most once per key."""

    org_id: str
    lead_id: str
    channel: Channel
    template: str
    #: ``{workflow_id}/{step}``: the message's identity across retries and crashes.
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class SendMessageResult:
    """The message's id and status; ``repeated`` when an earlier attempt already sent it."""

    message_id: str
    status: MessageStatus
    repeated: bool


class MessageActivities:
    """Sends messages through the channel adapters, recording each before the provider call."""

    def __init__(self, *, engine: Engine, senders: Mapping[Channel, Sender]) -> None:
        """Send through ``senders`` and record in ``engine``'s database."""
        self._engine = engine
        self._senders = senders

    @activity.defn(name="send_message")
    def send_message(self, input: SendMessageInput) -> SendMessageResult:
        """Write the message row (unique key), then send it unless a previous attempt did."""
        with recording(self._engine) as session:
            message = store.claim_outbound_message(
                session,
                org_id=input.org_id,
                lead_id=input.lead_id,
                channel=input.channel,
                idempotency_key=input.idempotency_key,
                template=input.template,
            )
        status = MessageStatus(message.status)
        if status in SETTLED_STATUSES:
            log.info("message %s already %s; not sending again", message.id, status)
            return SendMessageResult(message_id=message.id, status=status, repeated=True)
        if status == MessageStatus.FAILED:
            # An earlier attempt failed for good; say so again rather than pretend it went.
            raise SendFailed(message.error or "an earlier attempt failed")
        sender = self._senders.get(input.channel)
        if sender is None:
            self._fail(message.id, f"no adapter for channel {input.channel}")
            raise ProviderNotConfigured(f"no adapter for channel {input.channel}")
        if not message.to_address:
            self._fail(message.id, f"the contact has no address for {input.channel}")
            raise InvalidRecipient(f"the contact has no address for {input.channel}")
        receipt = sender.send(
            Outbound(
                to=message.to_address,
                sender=message.from_address,
                body=message.body,
                subject=None,
                idempotency_key=input.idempotency_key,
            )
        )
        with recording(self._engine) as session:
            store.mark_message_sent(
                session,
                message_id=message.id,
                status=receipt.status,
                provider_message_id=receipt.provider_message_id,
            )
        return SendMessageResult(message_id=message.id, status=receipt.status, repeated=False)

    def _fail(self, message_id: str, error: str) -> None:
        with recording(self._engine) as session:
            store.mark_message_failed(session, message_id=message_id, error=error)
