"""Data functions on SQLite and PostgreSQL: receipts, identity resolution, paging."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.payloads import RecordedLead
from models.reads.leads import lead_view, list_leads
from models.schemas import OrgSettings
from models.services.intake import record_lead
from models.services.orgs import create_org
from models.store.contacts import resolve_contact
from models.store.receipts import record_intake_receipt
from models.tables import Lead, utcnow
from models.values import Channel, new_id
from tests.workflows.conftest import ANY_HOUR


@pytest.fixture
def org_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name="Shine", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        return org.id


def receipt(engine: Engine, org_id: str, event_id: str | None = None, **payload: object) -> str:
    with session_scope(engine) as session:
        row, _ = record_intake_receipt(
            session, org_id=org_id, event_id=event_id, kind="lead", payload=payload
        )
        return row.id


def record(engine: Engine, org_id: str, lead_id: str, receipt_id: str) -> RecordedLead:
    with session_scope(engine) as session:
        return record_lead(
            session,
            org_id=org_id,
            lead_id=lead_id,
            workflow_id=f"wf-{lead_id}",
            receipt_id=receipt_id,
        )


def test_the_same_event_id_is_one_receipt(engine: Engine, org_id: str) -> None:
    with session_scope(engine) as session:
        first, new_first = record_intake_receipt(
            session, org_id=org_id, event_id="form-1", kind="lead", payload={"email": "a@x.io"}
        )
        again, new_again = record_intake_receipt(
            session, org_id=org_id, event_id="form-1", kind="lead", payload={"email": "a@x.io"}
        )
        other, new_other = record_intake_receipt(
            session, org_id=org_id, event_id="form-2", kind="lead", payload={"email": "a@x.io"}
        )

    assert (new_first, new_again, new_other) == (True, False, True)
    assert again.id == first.id
    assert other.id != first.id


def test_recording_a_lead_twice_answers_the_same(engine: Engine, org_id: str) -> None:
    lead_1 = new_id("lead")
    rid = receipt(engine, org_id, email="ada@example.com", consent={"email": True})

    first = record(engine, org_id, lead_1, rid)
    second = record(engine, org_id, lead_1, rid)

    assert first == second
    assert first.first_touch == Channel.EMAIL
    with session_scope(engine) as session:
        view = lead_view(session, org_id=org_id, lead_id=lead_1)
    assert [item.kind for item in view.timeline] == ["scored", "intake"]  # once each


def test_email_then_phone_with_that_email_is_one_contact(engine: Engine, org_id: str) -> None:
    lead_1, lead_2 = new_id("lead"), new_id("lead")
    by_email = record(engine, org_id, lead_1, receipt(engine, org_id, email="ada@example.com"))
    by_cart = record(
        engine,
        org_id,
        lead_2,
        receipt(engine, org_id, email="ada@example.com", phone="+447911123456"),
    )

    assert by_cart.contact_id == by_email.contact_id
    with session_scope(engine) as session:
        view = lead_view(session, org_id=org_id, lead_id=lead_2)
    assert view.contact.emails == ["ada@example.com"]
    assert view.contact.phones == ["+447911123456"]


def test_leads_page_by_keyset_in_every_sort(engine: Engine, org_id: str) -> None:
    base = utcnow()
    lead_ids = [new_id("lead") for _ in range(7)]
    for index, lead_id in enumerate(lead_ids):
        record(engine, org_id, lead_id, receipt(engine, org_id, email=f"p{index}@example.com"))
    with session_scope(engine) as session:
        for index, lead_id in enumerate(lead_ids):
            lead = session.get(Lead, lead_id)
            assert lead is not None
            lead.created_at = base + timedelta(seconds=index % 3)  # ties on purpose
            lead.score = index % 2
            lead.value = None if index == 3 else float(index * 10)
            session.add(lead)

    for sort in ("recent", "oldest", "score", "value"):
        with session_scope(engine) as session:
            everything, _ = list_leads(session, org_id=org_id, sort=sort, limit=100)
        paged: list[str] = []
        cursor = None
        while True:
            with session_scope(engine) as session:
                rows, cursor = list_leads(session, org_id=org_id, sort=sort, limit=2, cursor=cursor)
            paged += [row.lead.id for row in rows]
            if cursor is None:
                break
        assert paged == [row.lead.id for row in everything], sort
        assert len(paged) == 7


def test_first_touch_needs_sms_consent_for_sms(engine: Engine, org_id: str) -> None:
    lead_1, lead_2, lead_3 = new_id("lead"), new_id("lead"), new_id("lead")
    sms = record(
        engine,
        org_id,
        lead_1,
        receipt(engine, org_id, phone="+447911123456", consent={"sms": True}),
    )
    nothing = record(
        engine,
        org_id,
        lead_2,
        receipt(engine, org_id, phone="+447911654321", consent={"sms": False}),
    )
    refused_email = record(
        engine,
        org_id,
        lead_3,
        receipt(engine, org_id, email="no@example.com", consent={"email": False}),
    )

    assert sms.first_touch == Channel.SMS
    assert nothing.first_touch is None
    assert refused_email.first_touch is None
    assert refused_email.no_touch_reason is not None


def test_two_transactions_resolving_one_new_person_at_once_make_one_contact(
    pg_engine: Engine,
) -> None:
    """A form and a text from a new number in the same instant (PostgreSQL: the second
    identity insert waits for the first transaction, loses, and resolves again)."""
    with session_scope(pg_engine) as session:
        org, _ = create_org(session, name="Race", settings=OrgSettings(timezone="UTC"))
    payload = {"phone": "+447911777001"}
    found: list[str] = []

    def second() -> None:
        with session_scope(pg_engine) as session:
            found.append(resolve_contact(session, org_id=org.id, payload=payload).id)

    with session_scope(pg_engine) as session:
        first = resolve_contact(session, org_id=org.id, payload=payload).id
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive()  # waiting on the first transaction's identity row
    racer.join(timeout=10)

    assert found == [first]
