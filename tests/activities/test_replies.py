"""Sending an operator's reply: checked again at send time, failed for good when consent
went meanwhile (and the row says so)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messages import MessageActivities
from models.database import session_scope
from models.payloads import StoredMessageInput
from models.services.replies import claim_reply
from models.store.consent import record_consent_change
from models.tables import Lead, Message
from models.values import Channel
from tests.models.test_takeover import NOON, lead_of, operator
from workers.registry import dry_run_adapters


def test_a_reply_whose_consent_went_before_it_was_sent_is_failed_not_sent(
    pg_engine: Engine,
) -> None:
    org_id, lead_id, thread_id = lead_of(pg_engine)
    ada = operator(pg_engine, org_id)
    with session_scope(pg_engine) as session:
        claim = claim_reply(
            session,
            org_id=org_id,
            thread_id=thread_id,
            operator_id=ada,
            body="Still keen on Tuesday?",
            channel=None,
            key=f"reply/{uuid.uuid4().hex}",
            now=NOON,
        )
        lead = session.get(Lead, lead_id)
        assert lead is not None
        # The person texts STOP before the reply goes out.
        record_consent_change(
            session,
            org_id=org_id,
            contact_id=lead.contact_id,
            channel=Channel.SMS,
            granted=False,
            source="twilio",
            evidence="STOP",
        )
    adapters = dry_run_adapters()
    sending = MessageActivities(engine=pg_engine, senders=adapters.senders, public_url="http://x")

    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(
            sending.send_reply, StoredMessageInput(org_id=org_id, message_id=claim.message.id)
        )

    assert refused.value.type == "OptedOut" and refused.value.non_retryable
    with session_scope(pg_engine) as session:
        row = session.get(Message, claim.message.id)
        assert row is not None
        assert (row.status, row.error) == ("failed", "the person opted out of sms")
