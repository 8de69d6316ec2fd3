"""The agents the Command Center shows (``GET /v1/agents``): every figure checked against
known rows, on SQLite and on PostgreSQL, through HTTP."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.routes.agents import COLUMNS
from models.database import make_engine, session_scope
from models.reads import agents as agent_reads
from models.rules.needs_person import sentiment
from models.store import agent_days
from models.tables import Call, Contact, Escalation, Lead, Message, Thread
from models.values import (
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    EscalationReason,
    EscalationStatus,
    HandledBy,
    MessageStatus,
    Priority,
    Sender,
    Stage,
    ThreadStatus,
)
from tests.conftest import create_org, make_settings, serve

#: Where nothing listens: ``/v1/agents`` and org settings never need Temporal.
NO_TEMPORAL = "127.0.0.1:1"
#: The report's window, before ``now``: the known history, not what happens around now.
FROM = timedelta(days=10)
TO = timedelta(days=1)


@dataclass
class Stack:
    """The API on one database, and an engine to write known rows with."""

    api: httpx.AsyncClient
    engine: Engine


@pytest.fixture
def now() -> datetime:
    """The test's moment: rows are written around it and the API reads them a moment later."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def stack(any_db_url: str) -> AsyncIterator[Stack]:
    engine = make_engine(any_db_url)
    async with serve(make_settings(database_url=any_db_url, temporal_address=NO_TEMPORAL)) as api:
        yield Stack(api=api, engine=engine)
    engine.dispose()


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def conversation(
    session: Session,
    org_id: str,
    *,
    created: datetime,
    first_contact: datetime | None = None,
    stage: Stage = Stage.CONTACTED,
    handled_by: HandledBy = HandledBy.AI,
    status: ThreadStatus = ThreadStatus.UNREAD,
    last_message_at: datetime | None = None,
    last_inbound_at: datetime | None = None,
    held_since: datetime | None = None,
    thread_created: datetime | None = None,
) -> tuple[Lead, Thread]:
    """A contact with a thread (opened at ``thread_created``, else with the lead) and a
    lead."""
    contact = Contact(id=_id("ct"), org_id=org_id, created_at=created)
    thread = Thread(
        id=_id("th"),
        org_id=org_id,
        contact_id=contact.id,
        created_at=thread_created or created,
        status=status,
        handled_by=handled_by,
        last_message_at=last_message_at,
        last_inbound_at=last_inbound_at,
        held_by="op_someone" if held_since else None,
        held_since=held_since,
    )
    lead = Lead(
        id=_id("lead"),
        org_id=org_id,
        contact_id=contact.id,
        workflow_id=_id("wf"),
        stage=stage,
        created_at=created,
        updated_at=created,
        first_contact_at=first_contact,
    )
    session.add(contact)
    session.flush()
    session.add_all([thread, lead])
    session.flush()
    return lead, thread


def ai(
    session: Session,
    lead: Lead,
    thread: Thread,
    at: datetime,
    channel: Channel = Channel.SMS,
    *,
    mode: str = "live",
    status: MessageStatus = MessageStatus.DELIVERED,
    error: str | None = None,
    status_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> None:
    """An AI touch written at ``at`` (accepted at once unless it failed)."""
    failed = status == MessageStatus.FAILED
    moved(thread, at)
    session.add(
        Message(
            id=_id("msg"),
            org_id=lead.org_id,
            lead_id=lead.id,
            thread_id=thread.id,
            channel=channel,
            direction=Direction.OUTBOUND,
            sender=Sender.AI,
            body="Hi, following up on your enquiry",
            status=status,
            mode=mode,
            error=error,
            created_at=at,
            sent_at=None if failed else (sent_at or at),
            status_at=status_at or at,
        )
    )


def moved(thread: Thread, at: datetime, *, sender: Sender = Sender.AI) -> None:
    """The thread's last message, last inbound one and last operator's one, as
    ``store.threads.touch_thread`` keeps them."""
    thread.last_message_at = max(thread.last_message_at or at, at)
    if sender == Sender.CUSTOMER:
        thread.last_inbound_at = max(thread.last_inbound_at or at, at)
    if sender == Sender.HUMAN:
        thread.last_human_at = max(thread.last_human_at or at, at)


def said(
    session: Session, lead: Lead, thread: Thread, at: datetime, body: str, *, sender: Sender
) -> None:
    """A customer's message, or an operator's (``Sender.HUMAN``), at ``at``."""
    customer = sender == Sender.CUSTOMER
    moved(thread, at, sender=sender)
    session.add(
        Message(
            id=_id("msg"),
            org_id=lead.org_id,
            lead_id=lead.id,
            thread_id=thread.id,
            channel=Channel.SMS,
            direction=Direction.INBOUND if customer else Direction.OUTBOUND,
            sender=sender,
            body=body,
            status=MessageStatus.RECEIVED if customer else MessageStatus.SENT,
            created_at=at,
            sent_at=at,
        )
    )


def call(
    session: Session,
    lead: Lead,
    *,
    created: datetime,
    attempt: int = 1,
    workflow_id: str | None = None,
    outcome: CallOutcome | None = None,
    status: CallStatus = CallStatus.ENDED,
    placed: datetime | None = None,
    ended: datetime | None = None,
    cost: float | None = None,
    error: str | None = None,
) -> None:
    session.add(
        Call(
            id=_id("call"),
            org_id=lead.org_id,
            lead_id=lead.id,
            workflow_id=workflow_id or f"{lead.id}/calls-1",
            attempt=attempt,
            idempotency_key=_id("key"),
            mode="live",
            status=status,
            outcome=outcome,
            cost=cost,
            error=error,
            created_at=created,
            attempted_at=created,
            placed_at=placed,
            ended_at=ended,
        )
    )


def escalation(
    session: Session, org_id: str, reason: EscalationReason, status: str, now: datetime
) -> None:
    session.add(
        Escalation(
            id=_id("esc"),
            org_id=org_id,
            reason=reason,
            priority=Priority.MEDIUM,
            summary="needs a person",
            status=status,
            sla_due_at=now + timedelta(hours=1),
        )
    )


async def agents(stack: Stack, headers: dict[str, str], **window: str) -> list[dict[str, Any]]:
    answer = await stack.api.get("/v1/agents", params=window, headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def seed_history(engine: Engine, org_id: str, now: datetime) -> list[str]:
    """Four conversations the AI handled in the window, one before it, the conversations
    and calls under way now; the customer messages of the window, newest first."""
    t0 = now - timedelta(days=5)
    s = timedelta(seconds=1)
    replies: list[tuple[datetime, str]] = []
    with session_scope(engine) as session:
        # A: answered by SMS 10 s after it arrived; replied; the AI answered 60 s later.
        a, thread_a = conversation(session, org_id, created=t0, first_contact=t0 + 10 * s)
        ai(session, a, thread_a, t0 + 10 * s)
        said(session, a, thread_a, t0 + 100 * s, "When can you come?", sender=Sender.CUSTOMER)
        replies.append((t0 + 100 * s, "When can you come?"))
        ai(session, a, thread_a, t0 + 160 * s)
        # B: an email 20.5 s in; an unhappy reply; a person wrote back (a takeover).
        b_at = t0 + timedelta(days=1)
        b, thread_b = conversation(session, org_id, created=b_at, first_contact=b_at + 20.5 * s)
        ai(session, b, thread_b, b_at + 20.5 * s, Channel.EMAIL)
        unhappy = "This is terrible, I am not happy at all"
        said(session, b, thread_b, b_at + 200 * s, unhappy, sender=Sender.CUSTOMER)
        replies.append((b_at + 200 * s, unhappy))
        said(session, b, thread_b, b_at + 300 * s, "So sorry, calling you", sender=Sender.HUMAN)
        # C: WhatsApp 30.25 s in; no reply; a person took the thread over (held since).
        c_at = t0 + timedelta(days=2)
        c, thread_c = conversation(
            session,
            org_id,
            created=c_at,
            first_contact=c_at + 30.25 * s,
            held_since=c_at + timedelta(hours=1),
        )
        ai(session, c, thread_c, c_at + 30.25 * s, Channel.WHATSAPP)
        # D: first touched 40.0006 s in (a dry run: no cost); two replies, each answered.
        d_at = t0 + timedelta(days=3)
        d, thread_d = conversation(
            session, org_id, created=d_at, first_contact=d_at + timedelta(seconds=40.0006)
        )
        ai(session, d, thread_d, d_at + 40 * s, mode="dry_run", status=MessageStatus.SIMULATED)
        said(session, d, thread_d, d_at + 50 * s, "Thanks, great!", sender=Sender.CUSTOMER)
        ai(session, d, thread_d, d_at + 140 * s)
        said(session, d, thread_d, d_at + 200 * s, "ok", sender=Sender.CUSTOMER)
        ai(session, d, thread_d, d_at + 230 * s)
        # A send refused for one recipient: not a touch, not an error of the agent.
        ai(
            session,
            d,
            thread_d,
            d_at + 300 * s,
            status=MessageStatus.FAILED,
            error="business_refusal: Twilio answered 400 (code 21211)",
        )
        replies += [(d_at + 50 * s, "Thanks, great!"), (d_at + 200 * s, "ok")]
        # E: before the window: none of it counts.
        e_at = now - timedelta(days=30)
        e, thread_e = conversation(session, org_id, created=e_at, first_contact=e_at + 999 * s)
        ai(session, e, thread_e, e_at + 999 * s)
        said(session, e, thread_e, e_at + 1200 * s, "Awful", sender=Sender.CUSTOMER)
        call(session, e, created=e_at, outcome=CallOutcome.ANSWERED, placed=e_at, cost=9.0)

        # Calls of the window: A answered on its second attempt, B got voicemail, C answered;
        # first calls 70 s, 120 s and 200 s after the leads came in. D's failed to go out.
        call(
            session,
            a,
            created=t0 + 60 * s,
            outcome=CallOutcome.NO_ANSWER,
            placed=t0 + 70 * s,
            ended=t0 + 100 * s,
            cost=0.05,
        )
        call(
            session,
            a,
            created=t0 + timedelta(hours=3),
            attempt=2,
            outcome=CallOutcome.ANSWERED,
            placed=t0 + timedelta(hours=3),
            ended=t0 + timedelta(hours=3, minutes=4),
            cost=0.25,
        )
        call(
            session,
            b,
            created=b_at + 110 * s,
            outcome=CallOutcome.VOICEMAIL,
            placed=b_at + 120 * s,
            ended=b_at + 150 * s,
            cost=0.1,
        )
        call(
            session,
            c,
            created=c_at + 190 * s,
            outcome=CallOutcome.ANSWERED,
            placed=c_at + 200 * s,
            ended=c_at + 500 * s,
            cost=0.2,
        )
        call(
            session,
            d,
            created=d_at + 60 * s,
            status=CallStatus.FAILED,
            error="down: Vapi answered 503",
        )

        # Now: three conversations the AI handles; others that don't count.
        for _ in range(3):
            conversation(session, org_id, created=now - timedelta(hours=1))
        conversation(session, org_id, created=now - timedelta(hours=1), handled_by=HandledBy.HUMAN)
        conversation(
            session, org_id, created=now - timedelta(hours=1), status=ThreadStatus.RESOLVED
        )
        conversation(session, org_id, created=now - timedelta(hours=25))
        # Calls: one under way, one stale; two loops waiting for their next attempt (due in
        # 2 min and in 1 h), and three that are not (replied, out of attempts, converted).
        # Their threads last moved long ago: they are not conversations under way.
        away: dict[str, Any] = {"thread_created": now - timedelta(days=30)}
        r, _ = conversation(session, org_id, created=now - timedelta(hours=2), **away)
        call(session, r, created=now - timedelta(minutes=5), status=CallStatus.QUEUED)
        call(session, r, created=now - timedelta(hours=3), status=CallStatus.QUEUED, attempt=9)
        r1, _ = conversation(session, org_id, created=now - timedelta(hours=2), **away)
        ended = now - timedelta(minutes=3)
        call(session, r1, created=ended, outcome=CallOutcome.NO_ANSWER, placed=ended, ended=ended)
        r2, _ = conversation(session, org_id, created=now - timedelta(hours=22), **away)
        first = now - timedelta(hours=20)
        call(session, r2, created=first, outcome=CallOutcome.NO_ANSWER, placed=first, ended=first)
        second = now - timedelta(hours=1)
        call(
            session,
            r2,
            created=second,
            attempt=2,
            outcome=CallOutcome.BUSY,
            placed=second,
            ended=second,
        )
        r3, _ = conversation(
            session,
            org_id,
            created=now - timedelta(hours=2),
            last_inbound_at=now - timedelta(minutes=1),
            **away,
        )
        call(session, r3, created=ended, outcome=CallOutcome.NO_ANSWER, placed=ended, ended=ended)
        r4, _ = conversation(session, org_id, created=now - timedelta(hours=12), **away)
        call(
            session,
            r4,
            created=ended,
            attempt=4,
            outcome=CallOutcome.NO_ANSWER,
            placed=ended,
            ended=ended,
        )
        r5, _ = conversation(
            session, org_id, created=now - timedelta(hours=2), stage=Stage.CONVERTED, **away
        )
        call(session, r5, created=ended, outcome=CallOutcome.NO_ANSWER, placed=ended, ended=ended)

        escalation(session, org_id, EscalationReason.COMPLAINT, EscalationStatus.OPEN, now)
        escalation(session, org_id, EscalationReason.VIP, EscalationStatus.ACKNOWLEDGED, now)
        escalation(session, org_id, EscalationReason.COMPLAINT, EscalationStatus.RESOLVED, now)
        escalation(
            session, org_id, EscalationReason.CALL_ATTEMPTS_EXHAUSTED, EscalationStatus.OPEN, now
        )
        # Rows written around the app: its leads' facts and running totals derived from them.
        session.flush()
        agent_days.rebuild(session, org_id=org_id)
    return [body for _, body in sorted(replies, reverse=True)]


async def test_every_figure_of_both_agents_from_known_rows(stack: Stack, now: datetime) -> None:
    org_id, headers = await create_org(stack.api)
    patched = await stack.api.patch(
        "/v1/orgs/me",
        json={
            "vapi_assistant_id": "asst_shine",
            "unit_prices": {"sms": 0.01, "whatsapp": 0.005, "email": 0.001, "currency": "GBP"},
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    replies = seed_history(stack.engine, org_id, now)

    messaging, voice = await agents(
        stack, headers, **{"from": (now - FROM).isoformat(), "to": (now - TO).isoformat()}
    )

    mood = round(sum((sentiment(body) + 1) / 2 for body in replies) / len(replies), 4)
    assert messaging == {
        "agent": "Texting & email AI",
        "kind": "messaging",
        "assistant_id": None,
        "status": "active",
        "context": "handling 3 conversations · 2 waiting for a person",
        "active_conversations": 3,
        # A, B and D replied after the AI's first touch; C did not.
        "success_rate": 0.75,
        # First touches 10, 20.5, 30.25 and 40.0006 s: ranks 2 and 4 of 4.
        "response_time_s": {"p50": 20.5, "p90": 40.001},
        # Replies answered in 60, 90 and 30 s: ranks 2 and 3 of 3.
        "reply_time_s": {"p50": 60.0, "p90": 90.0},
        # Seven touches; the dry run's costs nothing: 4 SMS, 1 WhatsApp, 1 email.
        "interactions": 7,
        "cost_per_interaction": round((4 * 0.01 + 0.005 + 0.001) / 7, 6),
        "currency": "GBP",
        "satisfaction": mood,
        "satisfaction_sample": 4,
        # B (a person wrote) and C (a person holds it) of A, B, C, D.
        "takeover_rate": 0.5,
        "last_error": None,
    }
    assert 0.0 < mood < 1.0
    assert voice == {
        "agent": "Voice AI",
        "kind": "voice",
        "assistant_id": "asst_shine",
        "status": "active",
        "context": "1 call under way · 2 calls in retry, next in 2 min · 1 waiting for a person",
        "active_conversations": 1,
        # Two answered of four ended.
        "success_rate": 0.5,
        # First calls placed 70, 120 and 200 s after the lead: ranks 2 and 3 of 3.
        "response_time_s": {"p50": 120.0, "p90": 200.0},
        "reply_time_s": {"p50": None, "p90": None},
        "interactions": 4,
        "cost_per_interaction": 0.15,
        "currency": "USD",
        "satisfaction": None,
        "satisfaction_sample": 0,
        # B and C of the three conversations called (A, B, C).
        "takeover_rate": 0.6667,
        # D's call failed to go out two days ago: the latest provider failure, long past.
        "last_error": {
            "at": (now - timedelta(days=2, seconds=-60)).isoformat().replace("+00:00", "Z"),
            "provider": "vapi",
            "kind": "down",
            "detail": "down: Vapi answered 503",
        },
    }


async def test_csv_holds_the_same_figures_one_row_per_agent(stack: Stack, now: datetime) -> None:
    org_id, headers = await create_org(stack.api)
    seed_history(stack.engine, org_id, now)
    window = {"from": (now - FROM).isoformat(), "to": (now - TO).isoformat()}

    messaging, voice = await agents(stack, headers, **window)
    answer = await stack.api.get(
        "/v1/agents", params=window, headers={**headers, "Accept": "text/csv"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].endswith('.csv"')
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    assert header == list(COLUMNS)
    by_agent = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_agent) == {"Texting & email AI", "Voice AI"}
    text, calls = by_agent["Texting & email AI"], by_agent["Voice AI"]
    assert (text["success_rate"], text["takeover_rate"]) == ("0.75", "0.5")
    assert (text["response_time_p50_s"], text["response_time_p90_s"]) == ("20.5", "40.001")
    assert text["context"] == messaging["context"]
    assert text["last_error_kind"] == ""
    assert calls["cost_per_interaction"] == str(voice["cost_per_interaction"])
    assert calls["reply_time_p50_s"] == ""
    assert calls["last_error_kind"] == "down"
    assert calls["last_error_at"] == voice["last_error"]["at"]


async def test_all_time_and_an_empty_window(stack: Stack, now: datetime) -> None:
    org_id, headers = await create_org(stack.api)
    seed_history(stack.engine, org_id, now)

    messaging, voice = await agents(stack, headers)
    later = now + timedelta(days=1)
    empty_messaging, empty_voice = await agents(stack, headers, **{"from": later.isoformat()})

    # All time adds E (touched, replied, first touch 999 s) and the calls since.
    assert messaging["success_rate"] == 0.8
    assert messaging["response_time_s"] == {"p50": 30.25, "p90": 999.0}
    assert messaging["interactions"] == 8
    assert voice["interactions"] == 11
    assert voice["assistant_id"] is None  # listed for its calls: no assistant is set
    for item in (empty_messaging, empty_voice):
        assert item["success_rate"] is None
        assert item["response_time_s"] == {"p50": None, "p90": None}
        assert item["cost_per_interaction"] is None
        assert item["takeover_rate"] is None
        assert item["interactions"] == 0
    # What the agents do now does not depend on the window.
    assert empty_messaging["context"] == messaging["context"]
    assert empty_voice["context"] == voice["context"]
    assert empty_messaging["satisfaction"] is None


async def test_a_new_org_has_one_idle_messaging_agent(stack: Stack) -> None:
    _, headers = await create_org(stack.api)

    (messaging,) = await agents(stack, headers)

    assert messaging["status"] == "idle"
    assert messaging["context"] == "handling 0 conversations"
    assert messaging["currency"] == "USD"
    assert (messaging["success_rate"], messaging["satisfaction"]) == (None, None)


async def test_handling_counts_a_new_conversation_at_once(stack: Stack, now: datetime) -> None:
    org_id, headers = await create_org(stack.api)
    with session_scope(stack.engine) as session:
        conversation(session, org_id, created=now - timedelta(minutes=1))
    (before,) = await agents(stack, headers)

    with session_scope(stack.engine) as session:
        conversation(session, org_id, created=datetime.now(UTC))
    (after,) = await agents(stack, headers)

    assert (before["context"], before["status"]) == ("handling 1 conversation", "active")
    assert (after["context"], after["active_conversations"]) == ("handling 2 conversations", 2)


async def test_a_provider_failure_within_the_hour_is_an_error_until_a_send_gets_through(
    stack: Stack, now: datetime
) -> None:
    org_id, headers = await create_org(stack.api)
    failed_at = now - timedelta(minutes=10)
    rejected = "credentials_rejected: Twilio answered 401 (code 20003)"
    with session_scope(stack.engine) as session:
        lead, thread = conversation(
            session, org_id, created=now - timedelta(minutes=30), last_message_at=failed_at
        )
        # An older outage, and a refusal of one recipient since: neither is the latest
        # provider failure.
        ai(
            session,
            lead,
            thread,
            now - timedelta(hours=3),
            status=MessageStatus.FAILED,
            error="down: Twilio answered 503",
            status_at=now - timedelta(hours=2),
        )
        ai(
            session,
            lead,
            thread,
            failed_at,
            status=MessageStatus.FAILED,
            error="business_refusal: Twilio answered 400 (code 21211)",
        )
        ai(
            session,
            lead,
            thread,
            now - timedelta(minutes=20),
            status=MessageStatus.FAILED,
            error=rejected,
            status_at=failed_at,
        )
        call(
            session,
            lead,
            created=now - timedelta(minutes=5),
            status=CallStatus.FAILED,
            error="credentials_rejected: Vapi answered 401",
        )

    messaging, voice = await agents(stack, headers)

    assert messaging["status"] == "error"
    assert messaging["context"] == "error (Twilio rejected credentials) · handling 1 conversation"
    assert messaging["last_error"] == {
        "at": failed_at.isoformat().replace("+00:00", "Z"),
        "provider": "twilio",
        "kind": "credentials_rejected",
        "detail": rejected,
    }
    assert voice["status"] == "error"
    assert voice["context"] == "error (Vapi rejected credentials) · no calls under way or due"
    assert voice["last_error"]["kind"] == "credentials_rejected"

    with session_scope(stack.engine) as session:
        ai(session, lead, thread, now - timedelta(minutes=2))
    (messaging, _) = await agents(stack, headers)

    assert messaging["status"] == "active"
    assert messaging["context"] == "handling 1 conversation"
    assert messaging["last_error"]["detail"] == rejected  # still the latest, now recovered


async def test_an_hour_old_provider_failure_is_no_longer_an_error(
    stack: Stack, now: datetime
) -> None:
    org_id, headers = await create_org(stack.api)
    with session_scope(stack.engine) as session:
        lead, thread = conversation(session, org_id, created=now - timedelta(hours=3))
        ai(
            session,
            lead,
            thread,
            now - timedelta(hours=2),
            Channel.EMAIL,
            status=MessageStatus.FAILED,
            error="suspended: Resend answered 403",
            status_at=now - timedelta(minutes=61),
        )

    (messaging,) = await agents(stack, headers)

    assert messaging["status"] == "active"
    assert messaging["last_error"]["provider"] == "resend"
    assert messaging["last_error"]["kind"] == "suspended"


@pytest.mark.parametrize(
    "prices",
    [
        {"sms": -0.01},
        {"email": "cheap"},
        {"whatsapp": 11},
        {"currency": "usd"},
        {"currency": "EURO"},
        {"fax": 0.1},
    ],
)
async def test_unit_prices_are_validated(stack: Stack, prices: dict[str, Any]) -> None:
    _, headers = await create_org(stack.api)

    answer = await stack.api.patch("/v1/orgs/me", json={"unit_prices": prices}, headers=headers)

    assert answer.status_code == 422, answer.text
    me = (await stack.api.get("/v1/orgs/me", headers=headers)).json()
    assert me["unit_prices"] == {
        "sms": 0.0079,
        "whatsapp": 0.005,
        "email": 0.0004,
        "currency": "USD",
    }


async def test_unit_prices_patch_one_price_and_keep_the_rest(stack: Stack) -> None:
    _, headers = await create_org(stack.api)

    answer = await stack.api.patch(
        "/v1/orgs/me", json={"unit_prices": {"sms": 0.02}}, headers=headers
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["unit_prices"] == {
        "sms": 0.02,
        "whatsapp": 0.005,
        "email": 0.0004,
        "currency": "USD",
    }


async def test_waits_walked_off_the_index_are_the_sorted_ones(
    pg_url: str, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads a large window's p50/p90 off the wait indexes in order instead of
    sorting (``reads.agents._walked_waits``): the same figures, all time and in a window."""
    async with serve(make_settings(database_url=pg_url, temporal_address=NO_TEMPORAL)) as api:
        stack = Stack(api=api, engine=make_engine(pg_url))
        org_id, headers = await create_org(api)
        await api.patch("/v1/orgs/me", json={"vapi_assistant_id": "asst_x"}, headers=headers)
        seed_history(stack.engine, org_id, now)
        window = {"from": (now - FROM).isoformat(), "to": (now - TO).isoformat()}
        sorted_all, sorted_window = (
            await agents(stack, headers),
            await agents(stack, headers, **window),
        )

        monkeypatch.setattr(agent_reads, "SORT_AT_MOST", 0)
        monkeypatch.setattr(agent_reads, "WALK_SHARE", 0.0)
        walked_all, walked_window = (
            await agents(stack, headers),
            await agents(stack, headers, **window),
        )
        stack.engine.dispose()

    def waits(items: list[dict[str, Any]]) -> list[Any]:
        return [item["response_time_s"] for item in items]

    assert waits(sorted_all) == [{"p50": 30.25, "p90": 999.0}, waits(sorted_all)[1]]
    assert waits(sorted_window)[1] == {"p50": 120.0, "p90": 200.0}
    assert (waits(walked_all), waits(walked_window)) == (waits(sorted_all), waits(sorted_window))
