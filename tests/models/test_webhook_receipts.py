"""Unrouted webhook receipts on SQLite and PostgreSQL: which ones the sweeper picks, and its
claim on one (another process's claim skips it instead of waiting)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.database import session_scope
from models.schemas import OrgSettings
from models.services.orgs import create_org
from models.services.webhooks import (
    claim_receipt,
    mark_routed,
    receipts_to_route,
    record_event,
    record_webhook,
)
from models.tables import Org, WebhookReceipt, utcnow
from models.values import WebhookProvider
from tests.workflows.conftest import ANY_HOUR

GRACE = timedelta(seconds=60)


@pytest.fixture
def org_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name="Shine", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        return org.id


@pytest.fixture
def receipts(engine: Engine, org_id: str) -> Iterator[list[str]]:
    """Four unrouted receipts of the org, received 4, 3, 2 and 1 minutes ago; routed at the
    end, so no sweeper of a later test finds them."""
    ids = []
    with session_scope(engine) as session:
        for minutes in (4, 3, 2, 1):
            row, _ = record_webhook(
                session,
                org_id=org_id,
                provider=WebhookProvider.STRIPE,
                event_id=f"evt_{minutes}",
                event_type="invoice.paid",
                payload={},
            )
            row.received_at = utcnow() - timedelta(minutes=minutes)
            ids.append(row.id)
    yield ids
    with session_scope(engine) as session:
        for receipt_id in ids:
            mark_routed(session, org_id=org_id, receipt_id=receipt_id)


def listed(engine: Engine, mine: list[str], *, limit: int = 1000) -> list[str]:
    """The receipts of ``mine`` the sweeper would route now, page by page, in its order."""
    found: list[str] = []
    after = None
    while True:
        with session_scope(engine) as session:
            keys = receipts_to_route(session, unrouted_for=GRACE, after=after, limit=limit)
        found += [receipt_id for _, receipt_id in keys if receipt_id in mine]
        if len(keys) < limit:
            return found
        after = keys[-1]


def test_receipts_unrouted_past_the_grace_are_listed_oldest_first_page_by_page(
    engine: Engine, org_id: str, receipts: list[str]
) -> None:
    with session_scope(engine) as session:
        mark_routed(session, org_id=org_id, receipt_id=receipts[1])
        fresh, _ = record_webhook(
            session,
            org_id=org_id,
            provider=WebhookProvider.TWILIO,
            event_id="SM-just-now",
            event_type="inbound_message",
            payload={},
        )
    mine = [*receipts, fresh.id]

    assert listed(engine, mine) == [receipts[0], receipts[2], receipts[3]]
    assert listed(engine, mine, limit=1) == [receipts[0], receipts[2], receipts[3]]
    with session_scope(engine) as session:
        mark_routed(session, org_id=org_id, receipt_id=fresh.id)


def test_a_claim_holds_the_receipt_until_it_is_routed_and_then_no_claim_gets_it(
    engine: Engine, org_id: str, receipts: list[str]
) -> None:
    first = receipts[0]
    with Session(engine) as claim:
        held = claim_receipt(claim, receipt_id=first)
        assert held is not None and held.id == first
        mark_routed(claim, org_id=org_id, receipt_id=first)
        claim.commit()

    with Session(engine) as later:
        assert claim_receipt(later, receipt_id=first) is None
    with session_scope(engine) as session:
        routed = session.get(WebhookReceipt, first)
        assert routed is not None and routed.routed_at is not None


# PostgreSQL only: SQLite has no row locks (one process routes there).
@pytest.mark.parametrize("any_db_url", ["postgresql"], indirect=True)
def test_another_process_skips_a_claimed_receipt_without_waiting(
    engine: Engine, receipts: list[str]
) -> None:
    """``SKIP LOCKED``: two API processes never route one receipt twice."""
    first, second = receipts[0], receipts[1]
    with Session(engine) as one, Session(engine) as other:
        assert claim_receipt(one, receipt_id=first) is not None

        assert claim_receipt(other, receipt_id=first) is None
        assert claim_receipt(other, receipt_id=second) is not None
        one.rollback()  # the first process gave up (Temporal away): it stays unrouted
        other.rollback()

    with Session(engine) as again:
        assert claim_receipt(again, receipt_id=first) is not None


def test_a_webhook_whose_effects_fail_leaves_no_receipt(engine: Engine, org_id: str) -> None:
    """The receipt and its effects are one transaction on both databases: effects that fail
    take the receipt with them (on SQLite the receipt's savepoint used to commit it alone)."""

    def effects_that_fail(session: Session, org: Org) -> None:
        raise RuntimeError("the effects failed")

    with pytest.raises(RuntimeError), session_scope(engine) as session:
        record_event(
            session,
            org_id=org_id,
            provider=WebhookProvider.STRIPE,
            event_id="evt_failing",
            event_type="invoice.paid",
            payload={},
            apply=effects_that_fail,
        )
    with session_scope(engine) as session:
        kept = session.exec(
            select(WebhookReceipt).where(WebhookReceipt.event_id == "evt_failing")
        ).all()
    assert kept == []
