"""The live pages' outbox (``models.outbox``): a change writes its ``ui_events`` rows in its own
transaction (none if it rolls back), one per subject, and a process's tailer (``api.live``)
hands them to the org's open streams, on SQLite (polling) and PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.live import LiveHub, missed
from models.database import make_engine, session_scope
from models.schemas import OrgSettings
from models.services.orgs import create_org
from models.store.contacts import resolve_contact
from models.store.threads import thread_of_contact
from models.tables import Message, Org, UiEvent, utcnow
from models.values import Direction, MessageStatus, Sender, new_id


def _events(engine: Engine, org_id: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(UiEvent).where(UiEvent.org_id == org_id).order_by(col(UiEvent.id))
        )
        return [(row.kind, row.subject_id) for row in rows]


def _org(engine: Engine) -> Org:
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings(timezone="Europe/London"))
        return org


def _inbound(session: Session, org_id: str, thread_id: str, body: str) -> None:
    session.add(
        Message(
            id=new_id("msg"),
            org_id=org_id,
            thread_id=thread_id,
            channel="sms",
            direction=Direction.INBOUND,
            sender=Sender.CUSTOMER,
            body=body,
            status=MessageStatus.RECEIVED,
            idempotency_key=new_id("in"),
            mode="dry_run",
            created_at=utcnow(),
        )
    )


def test_a_change_writes_one_event_per_subject_in_its_own_transaction(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    org = _org(engine)
    with session_scope(engine) as session:
        contact = resolve_contact(session, org_id=org.id, payload={"phone": "+447911123456"})
        thread_id = thread_of_contact(session, contact_id=contact.id)
    assert thread_id is not None
    assert set(_events(engine, org.id)) == {("contact", contact.id), ("thread", thread_id)}

    before = len(_events(engine, org.id))
    with session_scope(engine) as session:
        for n in range(3):  # three messages on one thread: one event for the thread
            _inbound(session, org.id, thread_id, f"hello {n}")
            session.flush()
    assert _events(engine, org.id)[before:] == [("thread", thread_id)]

    with pytest.raises(RuntimeError), session_scope(engine) as session:
        _inbound(session, org.id, thread_id, "never kept")
        session.flush()
        raise RuntimeError("the transaction fails after its flush")
    assert len(_events(engine, org.id)) == before + 1
    engine.dispose()


@pytest.mark.parametrize("url_fixture", ["sqlite_url", "pg_url"])
async def test_the_tailer_hands_events_to_the_orgs_streams_only(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(request.getfixturevalue(url_fixture))
    mine, theirs = _org(engine), _org(engine)
    hub = LiveHub(engine, poll_s=0.2)
    await hub.start()
    try:
        with hub.subscribe(mine.id) as subscription:
            with session_scope(engine) as session:
                resolve_contact(session, org_id=theirs.id, payload={"phone": "+447911000001"})
            with session_scope(engine) as session:
                contact = resolve_contact(
                    session, org_id=mine.id, payload={"phone": "+447911000002"}
                )
            got: set[tuple[str, str]] = set()
            while len(got) < 2:
                event = await asyncio.wait_for(subscription.queue.get(), timeout=3)
                got.add((event.kind, event.subject_id))
            assert ("contact", contact.id) in got
            assert subscription.queue.empty()
            assert hub.streams == 1
        assert hub.streams == 0
    finally:
        await hub.stop()
    # A page that reconnects after the first event gets the rest, oldest first.
    with Session(engine) as session:
        first = session.exec(
            select(UiEvent).where(UiEvent.org_id == mine.id).order_by(col(UiEvent.id))
        ).first()
        assert first is not None and first.id is not None
        rest = missed(session, org_id=mine.id, after=first.id)
    assert rest is not None and len(rest) == 1
    engine.dispose()


async def test_the_tailer_stops_when_news_arrives_in_the_moment_it_is_stopped(
    sqlite_url: str,
) -> None:
    # A NOTIFY setting the wake-up as the API shuts down: the tailer must still end (on
    # Python 3.11, asyncio.wait_for swallowed that cancellation and stop() never returned).
    engine = make_engine(sqlite_url)
    hub = LiveHub(engine, poll_s=30)
    try:
        for _ in range(10):
            await hub.start()
            await asyncio.sleep(0.05)  # the tailer waits for news
            hub._wake.set()
            stopping = asyncio.create_task(hub.stop())
            done, _ = await asyncio.wait({stopping}, timeout=5)
            assert stopping in done, "the tailer ran on after it was stopped"
    finally:
        engine.dispose()
