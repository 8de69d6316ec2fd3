"""What the health check reads from an org's data on PostgreSQL: send failures against the
org's own week (dry-run sends never counted), speed to lead, lead flow, opt-outs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from models.database import session_scope, transaction
from models.rules.health import Verdict
from models.services.health import assess_org
from models.tables import ConsentRecord, Lead, Message, Org, WebhookReceipt
from models.values import Channel, Direction, HealthStatus, MessageStatus, Sender
from tests.models.test_takeover import lead_of


def messages(
    engine: Engine, org_id: str, status: MessageStatus, count: int, *, at: datetime
) -> None:
    with session_scope(engine) as session:
        for n in range(count):
            session.add(
                Message(
                    id=f"msg_{uuid.uuid4().hex}",
                    org_id=org_id,
                    channel=Channel.SMS,
                    direction=Direction.OUTBOUND,
                    sender=Sender.AI,
                    to_address="+447911123456",
                    body="Hi",
                    status=status,
                    created_at=at - timedelta(seconds=n % 600),
                )
            )


def verdict(verdicts: list[Verdict], check: str, subject: str) -> Verdict:
    [found] = [v for v in verdicts if (v.check, v.subject) == (check, subject)]
    return found


def test_sms_failures_well_above_the_orgs_own_week_warn_and_dry_run_never_counts(
    pg_engine: Engine,
) -> None:
    org_id, _, _ = lead_of(pg_engine)
    now = datetime.now(UTC)
    # Last week: 2 % of 1,000 live texts failed; 5,000 dry-run texts on top.
    messages(pg_engine, org_id, MessageStatus.DELIVERED, 980, at=now - timedelta(days=2))
    messages(pg_engine, org_id, MessageStatus.FAILED, 20, at=now - timedelta(days=2))
    messages(pg_engine, org_id, MessageStatus.SIMULATED, 5000, at=now - timedelta(days=3))
    # The last hour: 36 of 1,000 failed, and 2,000 dry-run sends that must not dilute them.
    messages(pg_engine, org_id, MessageStatus.DELIVERED, 964, at=now - timedelta(minutes=20))
    messages(pg_engine, org_id, MessageStatus.FAILED, 36, at=now - timedelta(minutes=20))
    messages(pg_engine, org_id, MessageStatus.SIMULATED, 2000, at=now - timedelta(minutes=20))

    sms = verdict(
        transaction(pg_engine, assess_org, org_id=org_id, now=now), "send_failures", "sms"
    )

    assert sms.status == HealthStatus.WARNING
    assert "36 of 1,000 SMS failed" in sms.summary


def test_a_few_failures_among_few_sends_do_not_warn(pg_engine: Engine) -> None:
    org_id, _, _ = lead_of(pg_engine)
    now = datetime.now(UTC)
    messages(pg_engine, org_id, MessageStatus.DELIVERED, 9, at=now - timedelta(minutes=5))
    messages(pg_engine, org_id, MessageStatus.FAILED, 1, at=now - timedelta(minutes=5))

    verdicts = transaction(pg_engine, assess_org, org_id=org_id, now=now)

    assert verdict(verdicts, "send_failures", "sms").status == HealthStatus.OK
    assert verdict(verdicts, "send_failures", "email").status == HealthStatus.OK


def test_speed_to_lead_is_the_p90_of_intake_to_first_touch(pg_engine: Engine) -> None:
    org_id, first_lead, _ = lead_of(pg_engine)
    now = datetime.now(UTC)
    with session_scope(pg_engine) as session:
        contact_id = session.get(Lead, first_lead).contact_id  # type: ignore[union-attr]
        for n in range(10):
            lead_id = f"lead_{uuid.uuid4().hex}"
            created = now - timedelta(hours=2, minutes=n)
            session.add(
                Lead(
                    id=lead_id,
                    org_id=org_id,
                    contact_id=contact_id,
                    workflow_id=f"lead-test-{lead_id}",
                    stage="contacted",
                    created_at=created,
                )
            )
            session.flush()
            session.add(
                Message(
                    id=f"msg_{uuid.uuid4().hex}",
                    org_id=org_id,
                    lead_id=lead_id,
                    channel=Channel.SMS,
                    direction=Direction.OUTBOUND,
                    sender=Sender.AI,
                    body="Hi",
                    status=MessageStatus.DELIVERED,
                    # 9 leads touched within a minute, one after 20 minutes
                    created_at=created + timedelta(minutes=20 if n == 0 else 1),
                )
            )

    speed = verdict(
        transaction(pg_engine, assess_org, org_id=org_id, now=now), "speed_to_lead", "leads"
    )

    assert speed.status == HealthStatus.WARNING  # p90 is the slow one: 20 min > 5 min
    assert speed.value == 1200


def test_an_opt_out_spike_on_sms_warns(pg_engine: Engine) -> None:
    org_id, lead_id, _ = lead_of(pg_engine)
    now = datetime.now(UTC)
    messages(pg_engine, org_id, MessageStatus.DELIVERED, 1000, at=now - timedelta(days=3))
    messages(pg_engine, org_id, MessageStatus.DELIVERED, 200, at=now - timedelta(hours=3))
    with session_scope(pg_engine) as session:
        contact_id = session.get(Lead, lead_id).contact_id  # type: ignore[union-attr]
        for _ in range(30):
            session.add(
                ConsentRecord(
                    id=f"cr_{uuid.uuid4().hex}",
                    org_id=org_id,
                    contact_id=contact_id,
                    channel=Channel.SMS,
                    granted=False,
                    source="twilio",
                    evidence="STOP",
                    recorded_at=now - timedelta(hours=1),
                )
            )

    sms = verdict(
        transaction(pg_engine, assess_org, org_id=org_id, now=now), "deliverability", "sms"
    )

    assert sms.status == HealthStatus.WARNING


def test_inbound_texts_are_not_status_callbacks(pg_engine: Engine) -> None:
    org_id, _, _ = lead_of(pg_engine)
    now = datetime.now(UTC)
    with session_scope(pg_engine) as session:
        org = session.get(Org, org_id)
        assert org is not None
        org.settings = {**org.settings, "provider_mode": "live"}
        session.add(org)
    messages(pg_engine, org_id, MessageStatus.SENT, 10, at=now - timedelta(minutes=30))
    with session_scope(pg_engine) as session:
        for n in range(10):  # customers texting in: no word on the texts sent
            session.add(
                WebhookReceipt(
                    id=f"wh_{uuid.uuid4().hex}",
                    org_id=org_id,
                    provider="twilio",
                    event_id=f"SM{uuid.uuid4().hex}",
                    event_type="inbound_message",
                    payload={},
                    received_at=now - timedelta(minutes=n + 1),
                    routed_at=now,
                )
            )

    twilio = verdict(
        transaction(pg_engine, assess_org, org_id=org_id, now=now), "webhooks", "twilio"
    )

    assert twilio.status == HealthStatus.WARNING
