"""WhatsApp's 24-hour session, decided when the send claims its message (SQLite and
PostgreSQL): free text inside it, the org's template outside, and a failed touch without one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from models.database import session_scope
from models.rules.whatsapp import WHATSAPP_NO_TEMPLATE, WhatsAppTemplate, whatsapp_template
from models.schemas import OrgSettings
from models.services.inbound import record_inbound_message
from models.services.intake import record_lead
from models.services.orgs import create_org
from models.services.outbound import claim_outbound_message
from models.store.receipts import record_intake_receipt
from models.tables import Message, TimelineEvent, utcnow
from models.values import Channel, MessageStatus, TimelineKind, new_id
from tests.workflows.conftest import ANY_HOUR

TEMPLATE_SID = "HX" + "0123456789abcdef" * 2
PHONE = "+447911123456"
FREE_TEXT = (
    "Hi Ada, thanks for getting in touch with Shine! We'll help with your request shortly. "
    "Reply here with any questions."
)


def new_lead(engine: Engine, *, template_sid: str | None = TEMPLATE_SID) -> tuple[str, str]:
    """An org that sends WhatsApp (with the template, unless told) and a lead of Ada's."""
    lead_id = new_id("lead")
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="UTC",
                quiet_hours=ANY_HOUR,
                whatsapp_from="+447400123456",
                whatsapp_template_sid=template_sid,
            ),
        )
        receipt, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={"name": "Ada Lovelace", "phone": PHONE, "consent": {"sms": True}},
        )
        record_lead(
            session,
            org_id=org.id,
            lead_id=lead_id,
            workflow_id=f"wf-{lead_id}",
            receipt_id=receipt.id,
        )
        return org.id, lead_id


def wrote(engine: Engine, org_id: str, at: datetime, channel: Channel = Channel.WHATSAPP) -> None:
    """Ada writes to the business at ``at``, recorded as the Twilio webhook records it."""
    with session_scope(engine) as session:
        recorded = record_inbound_message(
            session,
            org_id=org_id,
            channel=channel,
            from_phone=PHONE,
            to_address="+447400123456",
            body="Is Friday free?",
            provider_message_id="SM" + new_id("x")[-32:],
            consent=None,
            source="twilio",
        )
        row = session.get(Message, recorded.message_id)
        assert row is not None
        row.created_at = at


def claim(engine: Engine, org_id: str, lead_id: str, step: str, now: datetime) -> Message:
    """Claim the lead's WhatsApp first-touch message for ``step`` at ``now``."""
    with session_scope(engine) as session:
        return claim_outbound_message(
            session,
            org_id=org_id,
            lead_id=lead_id,
            channel=Channel.WHATSAPP,
            idempotency_key=f"wf-{lead_id}/{step}",
            template="first_touch",
            now=now,
        ).message


def test_the_session_lasts_24_hours_from_the_customers_last_whatsapp_message(
    engine: Engine,
) -> None:
    org_id, lead_id = new_lead(engine)
    start = utcnow().replace(microsecond=0)
    wrote(engine, org_id, start)
    wrote(engine, org_id, start + timedelta(hours=23), channel=Channel.SMS)  # not WhatsApp

    inside = claim(engine, org_id, lead_id, "1", start + timedelta(hours=24))
    outside = claim(engine, org_id, lead_id, "2", start + timedelta(hours=24, seconds=1))

    assert (inside.body, inside.subject, inside.status) == (FREE_TEXT, None, MessageStatus.PENDING)
    assert whatsapp_template(inside) is None
    assert outside.body == f"[WhatsApp template {TEMPLATE_SID}] {FREE_TEXT}"
    assert whatsapp_template(outside) == WhatsAppTemplate(
        content_sid=TEMPLATE_SID, content_variables='{"1": "Ada"}'
    )
    assert outside.status == MessageStatus.PENDING


def test_a_retry_sends_the_form_the_first_attempt_chose(engine: Engine) -> None:
    org_id, lead_id = new_lead(engine)
    now = utcnow()
    first = claim(engine, org_id, lead_id, "1", now)  # she never wrote: the template
    wrote(engine, org_id, now)

    retry = claim(engine, org_id, lead_id, "1", now + timedelta(minutes=1))
    fresh = claim(engine, org_id, lead_id, "2", now + timedelta(minutes=1))

    assert retry.id == first.id
    assert (retry.subject, retry.body) == (first.subject, first.body)
    assert whatsapp_template(retry) is not None
    assert whatsapp_template(fresh) is None  # a new touch sees the session she opened


def test_outside_the_session_without_a_template_the_touch_fails_and_says_why(
    engine: Engine,
) -> None:
    org_id, lead_id = new_lead(engine, template_sid=None)
    now = utcnow()
    wrote(engine, org_id, now - timedelta(hours=25))

    message = claim(engine, org_id, lead_id, "1", now)

    assert message.status == MessageStatus.FAILED
    assert message.error == WHATSAPP_NO_TEMPLATE
    with session_scope(engine) as session:
        skipped = session.exec(
            select(TimelineEvent.summary).where(
                TimelineEvent.lead_id == lead_id, TimelineEvent.kind == TimelineKind.TOUCH_SKIPPED
            )
        ).all()
    assert skipped == [
        "WHATSAPP not sent: WhatsApp: more than 24 h since the customer's last message and no "
        "whatsapp_template_sid is set"
    ]
