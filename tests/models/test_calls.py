"""The call-retry loop's rules: outcomes, the per-subject call cap, and the best hours."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.rules.calls import MIN_HISTORY, outcome_of
from models.rules.compliance import Deferred
from models.rules.orgs import org_settings
from models.schemas import OrgSettings, QuietHours
from models.services.calls import claim_call, next_slot
from models.services.intake import record_lead
from models.services.orgs import create_org
from models.store.calls import mark_call
from models.store.contacts import mark_invalid
from models.store.orgs import get_org
from models.store.receipts import record_intake_receipt
from models.tables import Call, Contact, Lead
from models.values import CallOutcome, CallStatus


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('calls')}/keepwarm.db"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def lead_of(engine: Engine, *, phone: str, per_subject: int = 3, zone: str | None = None) -> str:
    """A new org (calls 08:00-21:00, a large touch budget) and a lead with voice consent."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="Europe/London",
                quiet_hours=QuietHours(sms=None, whatsapp=None, email=None),
                touch_budget={"per_24h": 50, "calls_per_subject_per_24h": per_subject},
            ),
        )
        payload: dict[str, object] = {"phone": phone, "consent": {"voice": True}}
        if zone:
            payload["timezone"] = zone
        receipt, _ = record_intake_receipt(
            session, org_id=org.id, event_id=None, kind="lead", payload=payload
        )
        lead_id = f"lead_{uuid.uuid4().hex}"
        record_lead(
            session,
            org_id=org.id,
            lead_id=lead_id,
            workflow_id=f"wf-{lead_id}",
            receipt_id=receipt.id,
        )
        return lead_id


def claim(engine: Engine, lead_id: str, key: str, now: datetime) -> Call:
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return claim_call(
            session,
            org_id=lead.org_id,
            lead_id=lead_id,
            workflow_id="wf",
            attempt=1,
            idempotency_key=f"{lead_id}/{key}",
            now=now,
        ).call


def test_ended_reasons_map_to_outcomes_and_unknown_ones_count_as_failed() -> None:
    assert outcome_of("customer-did-not-answer") == CallOutcome.NO_ANSWER
    assert outcome_of("call.forwarding.no-answer") == CallOutcome.NO_ANSWER
    assert outcome_of("customer-busy") == CallOutcome.BUSY
    assert outcome_of("voicemail") == CallOutcome.VOICEMAIL
    assert outcome_of("twilio-reported-customer-misdialed") == CallOutcome.INVALID_NUMBER
    assert outcome_of("sip-outbound-unallocated-number") == CallOutcome.INVALID_NUMBER
    assert outcome_of("customer-ended-call") == CallOutcome.ANSWERED
    assert outcome_of("assistant-said-end-call-phrase") == CallOutcome.ANSWERED
    assert outcome_of("pipeline-error-openai-llm-failed") == CallOutcome.FAILED
    assert outcome_of("something-vapi-adds-next-year") == CallOutcome.FAILED


def test_a_florida_number_gets_three_calls_a_day_whatever_the_org_allows(engine: Engine) -> None:
    # +1 305: Miami. Florida's law caps calls at three per 24 h and 08:00-20:00 local.
    lead_id = lead_of(engine, phone="+13055550123", per_subject=10)
    noon = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 12:00 in Miami
    for n in range(3):
        claim(engine, lead_id, f"call-{n}", noon + timedelta(minutes=10 * n))

    with pytest.raises(Deferred) as held:
        claim(engine, lead_id, "call-3", noon + timedelta(minutes=30))

    verdict = held.value.verdict
    assert verdict.until == noon + timedelta(hours=24)  # when the first call ages out
    assert verdict.reason is not None
    assert "call cap (3 per 24 h, Florida Telephone Solicitation Act)" in verdict.reason


def test_the_orgs_call_cap_counts_calls_not_texts_and_failed_calls_dont_count(
    engine: Engine,
) -> None:
    lead_id = lead_of(engine, phone="+447911123456", per_subject=2)
    morning = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    first = claim(engine, lead_id, "a", morning)
    with session_scope(engine) as session:
        mark_call(session, call_id=first.id, status=CallStatus.FAILED, error="dial error")
    claim(engine, lead_id, "b", morning + timedelta(minutes=1))
    claim(engine, lead_id, "c", morning + timedelta(minutes=2))

    with pytest.raises(Deferred) as held:
        claim(engine, lead_id, "d", morning + timedelta(minutes=3))

    assert held.value.verdict.until == morning + timedelta(minutes=1, hours=24)


def test_calls_are_planned_in_the_hours_this_org_gets_answers(engine: Engine) -> None:
    lead_id = lead_of(engine, phone="+447911123456", zone="Europe/London")
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        contact = session.get(Contact, lead.contact_id)
        assert contact is not None
        settings = org_settings(get_org(session, org_id=lead.org_id))
        earliest = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)  # 09:15 in London (GMT)
        before = next_slot(
            session, settings=settings, lead=lead, contact=contact, earliest=earliest
        )
        # History: calls at 10:00 go unanswered, calls at 18:00 are answered.
        for n in range(MIN_HISTORY):
            evening = n % 2 == 0
            session.add(
                Call(
                    id=f"call_{uuid.uuid4().hex}",
                    org_id=lead.org_id,
                    lead_id=lead.id,
                    workflow_id="wf",
                    attempt=1,
                    idempotency_key=f"history/{uuid.uuid4()}",
                    mode="dry_run",
                    status=CallStatus.ENDED,
                    outcome=(CallOutcome.ANSWERED if evening else CallOutcome.NO_ANSWER).value,
                    local_hour=18 if evening else 10,
                    touched_at=earliest - timedelta(days=30),
                )
            )
        session.flush()
        after = next_slot(session, settings=settings, lead=lead, contact=contact, earliest=earliest)

    assert before.at == earliest and before.reason is None  # no history: as soon as allowed
    assert after.at.astimezone(ZoneInfo("Europe/London")).hour == 18
    assert after.at == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert after.reason == "the hours this business's calls are answered most"


def test_no_call_goes_to_a_number_a_provider_called_invalid(engine: Engine) -> None:
    lead_id = lead_of(engine, phone="+447911123457")
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        mark_invalid(
            session,
            org_id=lead.org_id,
            number="+447911123457",
            reason="twilio-reported-customer-misdialed",
            at=datetime(2026, 12, 1, tzinfo=UTC),
        )
    call = claim(engine, lead_id, "after", datetime(2026, 12, 2, 10, tzinfo=UTC))
    assert call.to_address is None
