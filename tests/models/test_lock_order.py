"""One lock order on PostgreSQL: an operator resolving an escalation while its ladder routes
it, a takeover, a customer's message and an AI touch all land at once, many times over,
with no deadlock, no error and no lost change; a deadlock provoked on purpose is retried."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.database import TRANSACTION_ATTEMPTS, session_scope, transaction
from models.rules.compliance import Deferred
from models.services.escalations import escalate_thread, resolve_escalation, route_escalation
from models.services.inbound import record_inbound_message
from models.services.outbound import claim_outbound_message
from models.services.takeover import take_over
from models.tables import Escalation, Identity, Message, Thread
from models.values import Channel, Priority
from tests.models.test_takeover import lead_of, operator

ROUNDS = 40


def at_once(engine: Engine, work: list[Callable[[Session], Any]]) -> list[BaseException]:
    """Run each function in its own thread and transaction, released together; the errors."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(fn: Callable[[Session], Any]) -> None:
        barrier.wait()
        try:
            transaction(engine, fn)
        except Deferred:
            pass  # the gate held the AI's touch back: the takeover won, as it may
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def race_once(engine: Engine) -> None:
    """One round: everything that touches the escalation and its thread, at once."""
    org_id, lead_id, thread_id = lead_of(engine, budget=50)
    ada = operator(engine, org_id)
    with session_scope(engine) as session:
        row, _ = escalate_thread(
            session,
            org_id=org_id,
            thread_id=thread_id,
            reason="complaint",
            priority=Priority.HIGH,
            summary="refund",
        )
        phone = session.exec(
            select(Identity.value).where(Identity.org_id == org_id, Identity.kind == "phone")
        ).one()
    escalation_id, sid = row.id, f"SM{uuid.uuid4().hex}"
    now = datetime.now(UTC)

    def resolve(session: Session) -> object:
        return resolve_escalation(
            session, org_id=org_id, escalation_id=escalation_id, by=ada, resolution="done"
        )

    def route(session: Session) -> object:
        return route_escalation(
            session, org_id=org_id, escalation_id=escalation_id, level=1, now=now
        )

    def take(session: Session) -> object:
        return take_over(session, org_id=org_id, thread_id=thread_id, operator_id=ada, now=now)

    def inbound(session: Session) -> object:
        recorded = record_inbound_message(
            session,
            org_id=org_id,
            channel=Channel.SMS,
            from_phone=phone,
            to_address=None,
            body="Still waiting for my refund",
            provider_message_id=sid,
            consent=None,
            source="twilio",
        )
        escalate_thread(
            session,
            org_id=org_id,
            thread_id=thread_id,
            reason="complaint",
            priority=Priority.URGENT,
            summary="again",
        )
        return recorded

    def touch(session: Session) -> object:
        return claim_outbound_message(
            session,
            org_id=org_id,
            lead_id=lead_id,
            channel=Channel.SMS,
            idempotency_key=f"wf-{lead_id}/touch",
            template="first_touch",
            now=now + timedelta(seconds=1),
        )

    errors = at_once(engine, [resolve, route, take, inbound, touch])

    assert errors == []
    with session_scope(engine) as session:
        resolved = session.get(Escalation, escalation_id)
        assert resolved is not None
        # The operator's resolve is never lost, whatever ran beside it.
        assert (resolved.status, resolved.resolved_by) == ("resolved", ada)
        thread = session.get(Thread, thread_id)
        assert thread is not None and thread.held_by == ada
        received = session.exec(
            select(Message).where(Message.idempotency_key == f"twilio:{sid}")
        ).all()
        assert len(received) == 1
        assert thread.last_inbound_at is not None


def test_resolve_ladder_takeover_message_and_touch_at_once_never_fail(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="models.database")
    for _ in range(ROUNDS):
        race_once(pg_engine)
    # The lock order, not the retry, keeps these apart: PostgreSQL never had to break one.
    assert "attempt 1 of" not in caplog.text


def test_a_deadlock_is_retried_and_both_transactions_commit(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Two transactions lock two rows in opposite orders on purpose: PostgreSQL fails one,
    ``transaction`` runs it again, and both changes are kept."""
    caplog.set_level(logging.WARNING, logger="models.database")
    org_a, _, thread_a = lead_of(pg_engine)
    org_b, _, thread_b = lead_of(pg_engine)
    both_locked_one = threading.Barrier(2, timeout=10)
    tries: dict[str, int] = {"ab": 0, "ba": 0}

    def opposite(first: str, second: str, name: str) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            tries[name] += 1
            set_status = text("UPDATE threads SET status = 'assigned' WHERE id = :id")
            session.execute(set_status, {"id": first})
            if tries[name] == 1:
                both_locked_one.wait()  # each holds its first row: now cross over
            session.execute(set_status, {"id": second})

        return work

    errors = at_once(
        pg_engine, [opposite(thread_a, thread_b, "ab"), opposite(thread_b, thread_a, "ba")]
    )

    assert errors == []
    assert sorted(tries.values()) == [1, 2]  # one side was broken once and ran again
    assert "DeadlockDetected" in caplog.text and f"attempt 1 of {TRANSACTION_ATTEMPTS}" in (
        caplog.text
    )
    with session_scope(pg_engine) as session:
        for thread_id in (thread_a, thread_b):
            thread = session.get(Thread, thread_id)
            assert thread is not None and thread.status == "assigned"
    assert org_a != org_b
