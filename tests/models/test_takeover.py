"""The takeover lock on PostgreSQL: what the gate refuses while a thread is held, who may
take and release it, and how an idle hold ends (once, with one notice)."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models.database import session_scope
from models.errors import OperatorMissing, ThreadHeld, ThreadMissing
from models.ids import TAKEOVER_NOTICE_KEY
from models.rules.compliance import Deferred
from models.rules.operators import Role
from models.rules.takeover import HoldCheck
from models.schemas import OrgSettings, QuietHours, TouchBudget
from models.services import calls as call_service
from models.services.intake import record_lead
from models.services.operators import create_operator
from models.services.orgs import create_org
from models.services.outbound import claim_outbound_message
from models.services.replies import claim_reply
from models.services.takeover import expire_if_idle, release_hold, take_over
from models.store.holds import read_hold
from models.store.messages import mark_message_attempted
from models.store.receipts import record_intake_receipt
from models.store.threads import thread_of
from models.tables import Lead, Message
from models.values import Channel, OperatorRole

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def lead_of(engine: Engine, *, budget: int = 3) -> tuple[str, str, str]:
    """A new org (quiet hours off) and a lead with SMS and voice consent: org, lead, thread."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="UTC",
                quiet_hours=QuietHours(sms=None, whatsapp=None, voice=None, email=None),
                touch_budget=TouchBudget(per_24h=budget),
            ),
        )
        receipt, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={
                "name": "Grace",
                "phone": f"+4479111{uuid.uuid4().int % 100000:05d}",
                "consent": {"sms": True, "voice": True},
            },
        )
        lead_id = f"lead_{uuid.uuid4().hex}"
        record_lead(
            session,
            org_id=org.id,
            lead_id=lead_id,
            workflow_id=f"wf-{lead_id}",
            receipt_id=receipt.id,
        )
        lead = session.get(Lead, lead_id)
        assert lead is not None
        thread_id = thread_of(session, org_id=org.id, lead=lead)
        assert thread_id is not None
        return org.id, lead_id, thread_id


def operator(engine: Engine, org_id: str, *, role: Role = OperatorRole.OPERATOR) -> str:
    with session_scope(engine) as session:
        return create_operator(
            session,
            org_id=org_id,
            name=f"{role.title()} {uuid.uuid4().hex[:4]}",
            role=role,
            phone="+447700900555",
        ).operator.id


def claim_touch(engine: Engine, org_id: str, lead_id: str, *, now: datetime) -> Message:
    with session_scope(engine) as session:
        return claim_outbound_message(
            session,
            org_id=org_id,
            lead_id=lead_id,
            channel=Channel.SMS,
            idempotency_key=f"wf-{lead_id}/{uuid.uuid4().hex}",
            template="first_touch",
            now=now,
        ).message


def hold(engine: Engine, org_id: str, thread_id: str, operator_id: str, *, now: datetime) -> None:
    with session_scope(engine) as session:
        take_over(session, org_id=org_id, thread_id=thread_id, operator_id=operator_id, now=now)


def test_no_automated_touch_or_call_is_claimed_while_a_thread_is_held(pg_engine: Engine) -> None:
    org_id, lead_id, thread_id = lead_of(pg_engine)
    ada = operator(pg_engine, org_id)
    hold(pg_engine, org_id, thread_id, ada, now=NOON)

    with pytest.raises(Deferred) as touch:
        claim_touch(pg_engine, org_id, lead_id, now=NOON + timedelta(minutes=5))
    with pytest.raises(Deferred) as call, session_scope(pg_engine) as session:
        call_service.claim_call(
            session,
            org_id=org_id,
            lead_id=lead_id,
            workflow_id="wf-calls",
            attempt=1,
            idempotency_key=f"wf-{lead_id}/call-1",
            now=NOON + timedelta(minutes=5),
        )
    # Until the hold would run out (30 minutes of quiet from the operator), then asked again.
    assert touch.value.verdict.until == NOON + timedelta(minutes=30)
    assert call.value.verdict.until == NOON + timedelta(minutes=30)
    assert "operator has taken this conversation over" in (touch.value.verdict.reason or "")
    # A hold past its time still holds until its workflow releases it.
    with pytest.raises(Deferred) as late:
        claim_touch(pg_engine, org_id, lead_id, now=NOON + timedelta(hours=2))
    assert late.value.verdict.until == NOON + timedelta(hours=2, minutes=1)

    with session_scope(pg_engine) as session:
        release_hold(
            session,
            org_id=org_id,
            thread_id=thread_id,
            operator_id=ada,
            now=NOON + timedelta(hours=2),
        )
    sent = claim_touch(pg_engine, org_id, lead_id, now=NOON + timedelta(hours=2))
    assert (sent.sender, sent.status) == ("ai", "pending")


def test_only_the_holder_or_the_owner_releases_and_nobody_else_takes_over(
    pg_engine: Engine,
) -> None:
    org_id, _, thread_id = lead_of(pg_engine)
    ada, bob = operator(pg_engine, org_id), operator(pg_engine, org_id)
    owner = operator(pg_engine, org_id, role=OperatorRole.OWNER)
    hold(pg_engine, org_id, thread_id, ada, now=NOON)

    with session_scope(pg_engine) as session:
        again = take_over(session, org_id=org_id, thread_id=thread_id, operator_id=ada, now=NOON)
    assert not again.changed and again.held_by == ada
    for act in (take_over, release_hold):
        with pytest.raises(ThreadHeld), session_scope(pg_engine) as session:
            act(session, org_id=org_id, thread_id=thread_id, operator_id=bob, now=NOON)
    with pytest.raises(OperatorMissing), session_scope(pg_engine) as session:
        take_over(session, org_id=org_id, thread_id=thread_id, operator_id="op_x", now=NOON)
    other_org, _, _ = lead_of(pg_engine)
    with pytest.raises(ThreadMissing), session_scope(pg_engine) as session:
        take_over(
            session,
            org_id=other_org,
            thread_id=thread_id,
            operator_id=operator(pg_engine, other_org),
            now=NOON,
        )

    with session_scope(pg_engine) as session:
        forced = release_hold(
            session, org_id=org_id, thread_id=thread_id, operator_id=owner, now=NOON
        )
    assert forced.changed and forced.held_by is None
    hold(pg_engine, org_id, thread_id, bob, now=NOON)  # free for anyone again


def test_an_idle_hold_ends_once_with_one_notice_and_a_reply_moves_its_end(
    pg_engine: Engine,
) -> None:
    org_id, _, thread_id = lead_of(pg_engine)
    ada = operator(pg_engine, org_id)
    hold(pg_engine, org_id, thread_id, ada, now=NOON)
    with session_scope(pg_engine) as session:
        claim_reply(
            session,
            org_id=org_id,
            thread_id=thread_id,
            operator_id=ada,
            body="On it.",
            channel=None,
            key=f"reply/{uuid.uuid4().hex}",
            now=NOON + timedelta(minutes=20),
        )

    def check(minutes: int) -> HoldCheck:
        with session_scope(pg_engine) as session:
            return expire_if_idle(
                session, org_id=org_id, thread_id=thread_id, now=NOON + timedelta(minutes=minutes)
            )

    early = check(31)
    assert early.hold.held_by == ada and early.notice_id is None
    assert early.hold.releases_at == NOON + timedelta(minutes=50)

    ended = check(50)
    again = check(51)  # a check run again (after a crash) finds the same notice, not another
    assert ended.hold.held_by is None and ended.notice_id is not None
    assert again.notice_id == ended.notice_id
    with session_scope(pg_engine) as session:
        notices = session.exec(
            select(Message).where(
                col(Message.idempotency_key).startswith(f"{TAKEOVER_NOTICE_KEY}{thread_id}/")
            )
        ).all()
    assert len(notices) == 1 and notices[0].to_address == "+447700900555"


def test_an_operators_replies_do_not_use_the_touch_budget(pg_engine: Engine) -> None:
    org_id, lead_id, thread_id = lead_of(pg_engine, budget=1)
    ada = operator(pg_engine, org_id)
    for minute in range(3):
        with session_scope(pg_engine) as session:
            claim = claim_reply(
                session,
                org_id=org_id,
                thread_id=thread_id,
                operator_id=ada,
                body=f"Message {minute}",
                channel=None,
                key=f"reply/{uuid.uuid4().hex}",
                now=NOON + timedelta(minutes=minute),
            )
        assert (claim.message.sender, claim.message.channel) == ("human", "sms")
        assert claim.send_at == NOON + timedelta(minutes=minute)
    with session_scope(pg_engine) as session:
        release_hold(session, org_id=org_id, thread_id=thread_id, operator_id=ada, now=NOON)

    touch = claim_touch(pg_engine, org_id, lead_id, now=NOON + timedelta(minutes=5))
    assert touch.sender == "ai"  # the budget of 1 is still unused


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["take", "release", "reply", "touch", "check"]),
            st.sampled_from(["ada", "bob", "owner"]),
            st.integers(min_value=0, max_value=45),  # minutes since the previous step
        ),
        min_size=1,
        max_size=20,
    )
)
def test_the_lock_behaves_like_its_model_whatever_the_order(
    pg_engine: Engine, steps: list[tuple[str, str, int]]
) -> None:
    """Takeovers, releases, replies, AI touches and idle checks in any order and spacing:
    each gets the answer a simple model predicts, no AI touch is claimed while someone holds
    the thread, and every hold that runs out idle gives exactly one notice."""
    org_id, lead_id, thread_id = lead_of(pg_engine, budget=50)
    people = {
        "ada": operator(pg_engine, org_id),
        "bob": operator(pg_engine, org_id),
        "owner": operator(pg_engine, org_id, role=OperatorRole.OWNER),
    }
    holder: str | None = None
    since = last_human = NOON
    now, idle_releases, touches = NOON, 0, 0
    for action, who, minutes in steps:
        now += timedelta(minutes=minutes)
        person = people[who]
        refused = holder is not None and holder != person
        with session_scope(pg_engine) as session:
            if action == "take":
                if refused:
                    with pytest.raises(ThreadHeld):
                        take_over(
                            session, org_id=org_id, thread_id=thread_id, operator_id=person, now=now
                        )
                    continue
                take_over(session, org_id=org_id, thread_id=thread_id, operator_id=person, now=now)
                if holder is None:
                    holder, since = person, now
            elif action == "release":
                if refused and who != "owner":
                    with pytest.raises(ThreadHeld):
                        release_hold(
                            session, org_id=org_id, thread_id=thread_id, operator_id=person, now=now
                        )
                    continue
                release_hold(
                    session, org_id=org_id, thread_id=thread_id, operator_id=person, now=now
                )
                holder = None
            elif action == "reply":
                reply = functools.partial(
                    claim_reply,
                    session,
                    org_id=org_id,
                    thread_id=thread_id,
                    operator_id=person,
                    body="Hello",
                    channel=None,
                    key=f"reply/{uuid.uuid4().hex}",
                    now=now,
                )
                if refused:
                    with pytest.raises(ThreadHeld):
                        reply()
                    continue
                reply()
                if holder is None:
                    holder, since = person, now
                last_human = now
            elif action == "check":
                checked = expire_if_idle(session, org_id=org_id, thread_id=thread_id, now=now)
                if holder is not None and max(since, last_human) + timedelta(minutes=30) <= now:
                    holder = None
                    idle_releases += 1
                assert checked.hold.held_by == holder
        if action == "touch":
            if holder is not None:
                with pytest.raises(Deferred):
                    claim_touch(pg_engine, org_id, lead_id, now=now)
            else:
                claim_touch(pg_engine, org_id, lead_id, now=now)
                touches += 1
        with session_scope(pg_engine) as session:
            assert read_hold(session, org_id=org_id, thread_id=thread_id).held_by == holder

    with session_scope(pg_engine) as session:
        ai = session.exec(
            select(Message).where(Message.lead_id == lead_id, Message.sender == "ai")
        ).all()
        notices = session.exec(
            select(Message).where(
                col(Message.idempotency_key).startswith(f"{TAKEOVER_NOTICE_KEY}{thread_id}/")
            )
        ).all()
    assert len(ai) == touches
    assert len(notices) == idle_releases


def test_a_touch_claimed_before_a_takeover_and_retried_during_it_waits(
    pg_engine: Engine,
) -> None:
    """A send claimed just before the takeover whose provider call failed (an outage) and is
    retried while the operator holds the thread: not yet sent, so it waits for the release.
    One the provider may already have (attempted) is reconciled as ever: it can't be unsent."""
    org_id, lead_id, thread_id = lead_of(pg_engine)
    ada = operator(pg_engine, org_id)

    def claim(key: str, minutes: int) -> Message:
        with session_scope(pg_engine) as session:
            return claim_outbound_message(
                session,
                org_id=org_id,
                lead_id=lead_id,
                channel=Channel.SMS,
                idempotency_key=key,
                template="first_touch",
                now=NOON + timedelta(minutes=minutes),
            ).message

    waiting, attempted = f"wf-{lead_id}/1", f"wf-{lead_id}/2"
    first = claim(waiting, 0)
    claim(attempted, 0)
    with session_scope(pg_engine) as session:
        mark_message_attempted(session, message_id=claim(attempted, 0).id)
    hold(pg_engine, org_id, thread_id, ada, now=NOON + timedelta(minutes=1))

    with pytest.raises(Deferred):
        claim(waiting, 2)
    assert claim(attempted, 2).attempted_at is not None  # reconciled, not held

    with session_scope(pg_engine) as session:
        release_hold(session, org_id=org_id, thread_id=thread_id, operator_id=ada, now=NOON)
    assert claim(waiting, 3).id == first.id


def test_a_call_claimed_before_a_takeover_and_retried_during_it_waits(pg_engine: Engine) -> None:
    org_id, lead_id, thread_id = lead_of(pg_engine)
    ada = operator(pg_engine, org_id)

    def claim_call(minutes: int) -> str:
        with session_scope(pg_engine) as session:
            return call_service.claim_call(
                session,
                org_id=org_id,
                lead_id=lead_id,
                workflow_id="wf-calls",
                attempt=1,
                idempotency_key=f"wf-{lead_id}/call-1",
                now=NOON + timedelta(minutes=minutes),
            ).call.id

    first = claim_call(0)
    hold(pg_engine, org_id, thread_id, ada, now=NOON + timedelta(minutes=1))
    with pytest.raises(Deferred):
        claim_call(2)
    with session_scope(pg_engine) as session:
        release_hold(session, org_id=org_id, thread_id=thread_id, operator_id=ada, now=NOON)
    assert claim_call(3) == first
