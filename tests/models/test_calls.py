"""The call-retry loop's rules: outcomes, the per-subject call cap, and when a retry goes (a
part of the day the org's calls are clearly answered more in). On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.rules.calls import (
    CELLS,
    PREFERENCE_HORIZON,
    CallCell,
    PartOfDay,
    Tally,
    keeps_learning,
    outcome_of,
)
from models.rules.compliance import Deferred
from models.rules.orgs import org_settings
from models.schemas import OrgSettings, QuietHours
from models.services.calls import claim_call, next_slot, plan_call
from models.services.gate import check_gate
from models.services.intake import record_lead
from models.services.orgs import create_org, patch_org_settings
from models.store.calls import answer_counts, mark_call
from models.store.contacts import mark_invalid
from models.store.orgs import get_org
from models.store.receipts import record_intake_receipt
from models.tables import Call, Contact, Lead, TimelineEvent
from models.values import CallOutcome, CallStatus, Channel, TimelineKind


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('calls')}/keepwarm.db"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def lead_of(
    engine: Engine,
    *,
    phone: str,
    per_subject: int = 3,
    zone: str | None = None,
    weekdays_only: bool = False,
    org_id: str | None = None,
) -> str:
    """A new org (calls 08:00-21:00, a large touch budget; or the org ``org_id``) and a
    lead with voice consent."""
    with session_scope(engine) as session:
        if org_id is None:
            org, _ = create_org(
                session,
                name="Shine",
                settings=OrgSettings(
                    timezone="Europe/London",
                    quiet_hours=QuietHours(
                        sms=None, whatsapp=None, email=None, weekdays_only=weekdays_only
                    ),
                    touch_budget={"per_24h": 50, "calls_per_subject_per_24h": per_subject},
                ),
            )
            org_id = org.id
        payload: dict[str, object] = {"phone": phone, "consent": {"voice": True}}
        if zone:
            payload["timezone"] = zone
        receipt, _ = record_intake_receipt(
            session, org_id=org_id, event_id=None, kind="lead", payload=payload
        )
        lead_id = f"lead_{uuid.uuid4().hex}"
        record_lead(
            session,
            org_id=org_id,
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


def add_calls(
    session: Session,
    lead: Lead,
    *,
    hour: int | None,
    weekday: int | None,
    answered: int,
    calls: int,
    outcome: CallOutcome = CallOutcome.NO_ANSWER,
) -> None:
    """``calls`` ended calls a month ago at a local hour and weekday, ``answered`` of them
    answered, the others ending with ``outcome``."""
    for n in range(calls):
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
                outcome=(CallOutcome.ANSWERED if n < answered else outcome).value,
                local_hour=hour,
                local_weekday=weekday,
                touched_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
    session.flush()


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
        earliest = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)  # Tuesday 09:15 in London (GMT)

        def plan(attempt: int) -> tuple[datetime, str | None]:
            slot = next_slot(
                session,
                settings=settings,
                lead=lead,
                contact=contact,
                earliest=earliest,
                attempt=attempt,
            )
            return slot.at, slot.reason

        before = plan(2)
        # History: weekday mornings 15 answered in 125, weekday evenings 43 in 105; calls that
        # failed to start say nothing about the hour, calls without a weekday only the pool.
        add_calls(session, lead, hour=10, weekday=1, answered=15, calls=125)
        add_calls(session, lead, hour=18, weekday=3, answered=43, calls=105)
        add_calls(
            session, lead, hour=10, weekday=1, answered=0, calls=30, outcome=CallOutcome.FAILED
        )
        add_calls(session, lead, hour=18, weekday=None, answered=0, calls=20)
        moving = next(n for n in range(2, 50) if not keeps_learning(lead_id, n))
        staying = next(n for n in range(2, 50) if keeps_learning(lead_id, n))
        first, retry, kept = plan(1), plan(moving), plan(staying)

    evidence = "evenings answered 41 % vs 12 % mornings over 230 calls"
    assert before == (earliest, None)  # no history: as soon as allowed
    assert first == (earliest, None)  # a first call is never delayed
    assert retry == (datetime(2026, 12, 1, 17, 0, tzinfo=UTC), f"retry at 17:00: {evidence}")
    assert kept == (earliest, f"kept at 09:15 to keep learning: {evidence}")


def test_a_moved_retry_says_why_on_the_lead_timeline_once(engine: Engine) -> None:
    lead_id = lead_of(engine, phone="+447911123459", zone="Europe/London")
    earliest = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)  # Tuesday 09:15 in London (GMT)
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        add_calls(session, lead, hour=10, weekday=1, answered=15, calls=125)
        add_calls(session, lead, hour=18, weekday=3, answered=43, calls=105)
        # Enough attempts that one of them is not kept to keep learning (1 in 5 are).
        patch_org_settings(
            session, org_id=lead.org_id, changes={"call_policy": {"max_attempts": 10}}
        )
    moving = next(n for n in range(2, 11) if not keeps_learning(lead_id, n))

    plans = []
    for attempt in (1, moving, moving):  # the second plan of a retry: a replanned attempt
        with session_scope(engine) as session:
            plans.append(
                plan_call(
                    session, org_id=lead.org_id, lead_id=lead_id, attempt=attempt, earliest=earliest
                )
            )
    with session_scope(engine) as session:
        notes = [
            event.summary
            for event in session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.lead_id == lead_id, TimelineEvent.kind == TimelineKind.CALL
                )
            )
        ]

    assert plans[0].at == earliest and plans[0].reason is None
    assert plans[1].at == plans[2].at == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert notes == [
        f"Call attempt {moving} planned for Tue 01 Dec 17:00 Europe/London: retry at 17:00: "
        "evenings answered 41 % vs 12 % mornings over 230 calls"
    ]


def test_answers_are_counted_by_part_of_the_local_day_and_weekend(engine: Engine) -> None:
    lead_id = lead_of(engine, phone="+447911123458")
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        add_calls(session, lead, hour=9, weekday=5, answered=3, calls=4)  # Saturday morning
        add_calls(session, lead, hour=11, weekday=1, answered=1, calls=2)  # Tuesday morning
        add_calls(session, lead, hour=5, weekday=4, answered=0, calls=1, outcome=CallOutcome.BUSY)
        add_calls(session, lead, hour=4, weekday=6, answered=1, calls=3)  # Sunday night
        add_calls(session, lead, hour=18, weekday=None, answered=1, calls=5)  # pooled only
        add_calls(session, lead, hour=None, weekday=None, answered=0, calls=2)  # pooled only
        add_calls(session, lead, hour=9, weekday=1, answered=0, calls=3, outcome=CallOutcome.FAILED)
        add_calls(
            session,
            lead,
            hour=9,
            weekday=1,
            answered=0,
            calls=1,
            outcome=CallOutcome.INVALID_NUMBER,
        )
        counts = answer_counts(session, org_id=lead.org_id)

    assert counts.pooled == Tally(answered=6, calls=17)
    assert counts.cells == {
        CallCell(weekend=True, part=PartOfDay.MORNING): Tally(answered=3, calls=4),
        CallCell(weekend=False, part=PartOfDay.MORNING): Tally(answered=1, calls=3),
        CallCell(weekend=True, part=PartOfDay.NIGHT): Tally(answered=1, calls=3),
    }


def test_a_call_records_the_recipients_local_hour_and_weekday(engine: Engine) -> None:
    lead_id = lead_of(engine, phone="+447911123459", zone="America/New_York")
    # 14:30 UTC on Saturday 5 December is 09:30 on Saturday in New York.
    call = claim(engine, lead_id, "saturday", datetime(2026, 12, 5, 14, 30, tzinfo=UTC))
    assert (call.local_hour, call.local_weekday) == (9, 5)


#: A local hour in each part of the day (history rows go on a Wednesday or a Saturday).
HOUR_OF = {
    PartOfDay.NIGHT: 2,
    PartOfDay.MORNING: 10,
    PartOfDay.AFTERNOON: 14,
    PartOfDay.EVENING: 18,
}


@settings(max_examples=30, deadline=None)
@given(
    history=st.dictionaries(
        st.sampled_from(CELLS),
        st.tuples(st.integers(0, 80), st.sampled_from([0.0, 0.05, 0.15, 0.3, 0.6, 1.0])),
        max_size=8,
    ),
    earliest=st.datetimes(
        min_value=datetime(2026, 12, 7), max_value=datetime(2026, 12, 21), timezones=st.just(UTC)
    ),
    attempt=st.integers(1, 4),
    weekdays_only=st.booleans(),
)
def test_whatever_the_history_a_call_is_planned_when_the_gate_lets_it_through(
    engine: Engine,
    history: dict[CallCell, tuple[int, float]],
    earliest: datetime,
    attempt: int,
    weekdays_only: bool,
) -> None:
    lead_id = lead_of(engine, phone="+447911123460", weekdays_only=weekdays_only)
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        contact = session.get(Contact, lead.contact_id)
        assert contact is not None
        settings = org_settings(get_org(session, org_id=lead.org_id))
        for cell, (calls, rate) in history.items():
            weekday = 5 if cell.weekend else 2
            hour = HOUR_OF[cell.part]
            add_calls(
                session, lead, hour=hour, weekday=weekday, answered=round(calls * rate), calls=calls
            )

        def slot(attempt: int) -> tuple[datetime, str | None]:
            found = next_slot(
                session,
                settings=settings,
                lead=lead,
                contact=contact,
                earliest=earliest,
                attempt=attempt,
            )
            return found.at, found.reason

        first, (at, reason) = slot(1), slot(attempt)
        verdict = check_gate(
            session,
            settings=settings,
            lead=lead,
            contact=contact,
            channel=Channel.VOICE,
            now=at,
            holds=False,
        )

    local = at.astimezone(ZoneInfo("Europe/London"))
    assert at >= earliest
    assert verdict.allowed
    assert 8 <= local.hour < 21
    assert not (weekdays_only and local.weekday() >= 5)
    moved = reason is not None and reason.startswith("retry at ")
    assert first[1] is None or not first[1].startswith(("retry at", "kept at"))
    if moved:
        assert attempt >= 2
        assert at <= earliest + PREFERENCE_HORIZON
    else:
        assert at == first[0]


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


def test_calls_from_a_paced_vapi_number_wait_their_turn(engine: Engine) -> None:
    # 10:00 on a Tuesday in London: inside the calling window.
    now = datetime(2027, 12, 7, 10, 0, tzinfo=UTC)
    first = lead_of(engine, phone="+447911123501")
    with session_scope(engine) as session:
        lead = session.get(Lead, first)
        assert lead is not None
        org_id = lead.org_id
        patch_org_settings(
            session,
            org_id=org_id,
            changes={"vapi_phone_number_id": "pn_paced", "pacing": {"calls": 0.1}},
        )
    assert claim(engine, first, "call-1", now).status == CallStatus.PENDING
    second = lead_of(engine, phone="+447911123502", org_id=org_id)
    with pytest.raises(Deferred) as held:
        claim(engine, second, "call-1", now)
    assert held.value.verdict.until == now + timedelta(seconds=10)
    assert held.value.verdict.reason == "paced: pn_paced sends one every 10 seconds"
    assert held.value.queued is not None  # its place is kept by the activity
    later = claim(engine, second, "call-1", now + timedelta(seconds=10))
    assert later.status == CallStatus.PENDING
