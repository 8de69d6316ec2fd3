"""The agents' running totals stay what the rows say in the cases a simple count misses: a
reply committed before the touch it answers, a hold released without a message, a person who
stepped in before the lead's row was written, and two contacts merged onto one thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.database import session_scope
from models.schemas import OrgSettings
from models.services.merge import merge_contacts
from models.services.orgs import create_org
from models.store import agent_days, lead_groups
from models.tables import Contact, Lead, Message, Thread, utcnow
from models.values import Channel, Direction, MessageStatus, Sender, Stage, new_id
from tests.conftest import agent_totals_of, assert_running_totals_follow_the_rows, per_metric


@dataclass
class Person:
    contact_id: str
    thread_id: str


def person(session: Session, org_id: str, at: datetime) -> Person:
    contact = Contact(id=new_id("ct"), org_id=org_id, created_at=at)
    session.add(contact)
    session.flush()
    thread = Thread(id=new_id("th"), org_id=org_id, contact_id=contact.id, created_at=at)
    session.add(thread)
    session.flush()
    return Person(contact_id=contact.id, thread_id=thread.id)


def lead(session: Session, org_id: str, who: Person, at: datetime) -> str:
    row = Lead(
        id=new_id("lead"),
        org_id=org_id,
        contact_id=who.contact_id,
        workflow_id=new_id("wf"),
        stage=Stage.NEW,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    lead_groups.moved(session, before=None, after=lead_groups.group_of(row))
    return row.id


def message(session: Session, org_id: str, who: Person, at: datetime, *, sender: Sender) -> None:
    inbound = sender == Sender.CUSTOMER
    session.add(
        Message(
            id=new_id("msg"),
            org_id=org_id,
            thread_id=who.thread_id,
            channel=Channel.SMS,
            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
            sender=sender,
            body="Thursday works" if inbound else "Ann here",
            status=MessageStatus.RECEIVED if inbound else MessageStatus.SENT,
            idempotency_key=new_id("key"),
            created_at=at,
        )
    )
    session.flush()


def new_org(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings())
        return org.id


def baseline(engine: Engine, org_id: str) -> None:
    """Rows written around the app: their totals derived, before the step under test."""
    with session_scope(engine) as session:
        agent_days.rebuild(session, org_id=org_id)
        lead_groups.rebuild(session, org_id=org_id)


def test_a_reply_committed_before_the_touch_it_answers_counts(engine: Engine) -> None:
    org_id, t0 = new_org(engine), utcnow() - timedelta(minutes=10)
    with session_scope(engine) as session:
        ada = person(session, org_id, t0)
        lead_id = lead(session, org_id, ada, t0)
        # The touch's moment was taken at t0 + 1 s; the reply, written at t0 + 2 s, committed
        # first and found no touch to answer.
        message(session, org_id, ada, t0 + timedelta(seconds=2), sender=Sender.CUSTOMER)
    baseline(engine, org_id)

    with session_scope(engine) as session:
        agent_days.lead_touched(
            session, lead_id=lead_id, at=t0 + timedelta(seconds=1), channel=Channel.SMS
        )

    totals = per_metric(assert_running_totals_follow_the_rows(engine, org_id))
    assert (totals["leads:touched"], totals["leads:touched:replied"]) == (1, 1)


def test_a_hold_released_without_a_message_still_counts(engine: Engine) -> None:
    org_id, t0 = new_org(engine), utcnow() - timedelta(minutes=10)
    with session_scope(engine) as session:
        ada = person(session, org_id, t0)
        lead_id = lead(session, org_id, ada, t0)
    baseline(engine, org_id)
    with session_scope(engine) as session:
        agent_days.lead_touched(
            session, lead_id=lead_id, at=t0 + timedelta(seconds=1), channel=Channel.SMS
        )
        agent_days.contact_taken_over(
            session, contact_id=ada.contact_id, at=t0 + timedelta(minutes=1)
        )

    # Released: the thread no longer says anyone held it; the lead still does.
    with session_scope(engine) as session:
        thread = session.get(Thread, ada.thread_id)
        assert thread is not None and thread.held_since is None

    totals = per_metric(assert_running_totals_follow_the_rows(engine, org_id))
    assert totals["leads:touched:taken_over"] == 1


def test_a_person_who_stepped_in_before_the_leads_row_was_written_took_it_over(
    engine: Engine,
) -> None:
    org_id, t0 = new_org(engine), utcnow() - timedelta(minutes=10)
    with session_scope(engine) as session:
        ada = person(session, org_id, t0)
        # Intake received the lead at t0; an operator wrote on the thread at t0 + 1 s, before
        # the lead's row (dated t0) was written.
        message(session, org_id, ada, t0 + timedelta(seconds=1), sender=Sender.HUMAN)
        agent_days.contact_taken_over(
            session, contact_id=ada.contact_id, at=t0 + timedelta(seconds=1)
        )
    baseline(engine, org_id)

    with session_scope(engine) as session:
        lead_id = lead(session, org_id, ada, t0)
        agent_days.lead_created(session, lead_id=lead_id)
        agent_days.lead_touched(
            session, lead_id=lead_id, at=t0 + timedelta(seconds=5), channel=Channel.SMS
        )

    totals = per_metric(assert_running_totals_follow_the_rows(engine, org_id))
    assert (totals["leads:touched"], totals["leads:touched:taken_over"]) == (1, 1)


def test_a_merge_counts_the_reply_on_the_thread_the_leads_now_share(engine: Engine) -> None:
    org_id, t0 = new_org(engine), utcnow() - timedelta(minutes=10)
    with session_scope(engine) as session:
        by_email, by_phone = person(session, org_id, t0), person(session, org_id, t0)
        touched = lead(session, org_id, by_email, t0)
        lead(session, org_id, by_phone, t0)
        agent_days.lead_touched(
            session, lead_id=touched, at=t0 + timedelta(seconds=1), channel=Channel.EMAIL
        )
        # The same person texted from their phone after the email: another contact's thread.
        message(session, org_id, by_phone, t0 + timedelta(minutes=2), sender=Sender.CUSTOMER)
    baseline(engine, org_id)
    before = per_metric(agent_totals_of(engine, org_id)[0])

    with session_scope(engine) as session:
        merge_contacts(
            session, org_id=org_id, keep_id=by_email.contact_id, other_id=by_phone.contact_id
        )

    totals = per_metric(assert_running_totals_follow_the_rows(engine, org_id))
    assert before.get("leads:touched:replied", 0) == 0
    assert totals["leads:touched:replied"] == 1
