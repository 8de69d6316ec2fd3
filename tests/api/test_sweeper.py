"""The sweeper on its own (``api.sweeper``), on SQLite: what it routes, and what it says when
it can't. Routing to real workflows on PostgreSQL: tests/channels/test_sweeper.py."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from api.deps import Database, TemporalConnection
from api.sweeper import Sweeper
from models.database import make_engine, session_scope
from models.schemas import OrgSettings
from models.services.orgs import create_org
from models.services.webhooks import record_webhook
from models.tables import WebhookReceipt, utcnow
from models.values import WebhookProvider
from tests.conftest import dev_address, make_settings
from tests.workflows.conftest import ANY_HOUR

UNREACHABLE_TEMPORAL = "127.0.0.1:1"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def org_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name="Shine", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        return org.id


def unrouted(engine: Engine, org_id: str, provider: WebhookProvider, payload: Any) -> str:
    """A receipt recorded while Temporal was away."""
    with session_scope(engine) as session:
        row, _ = record_webhook(
            session,
            org_id=org_id,
            provider=provider,
            event_id=f"evt-{len(str(payload))}-{provider}",
            event_type="test",
            payload=payload,
        )
        return row.id


def stripe_paid_for(lead_id: str) -> dict[str, Any]:
    return {
        "id": f"evt_{lead_id}",
        "type": "invoice.paid",
        "data": {"object": {"id": "in_1", "amount_paid": 100, "metadata": {"lead_id": lead_id}}},
    }


def routed_at(engine: Engine, receipt_id: str) -> object:
    with session_scope(engine) as session:
        row = session.get(WebhookReceipt, receipt_id)
        assert row is not None
        return row.routed_at


def sweeper(engine: Engine, temporal_address: str, url: str) -> Sweeper:
    settings = make_settings(database_url=url, temporal_address=temporal_address)
    return Sweeper(
        database=Database(engine), temporal=TemporalConnection(settings), grace=timedelta(0)
    )


async def test_while_temporal_is_away_sweeps_route_nothing_and_say_so_once(
    engine: Engine, org_id: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    receipt = unrouted(engine, org_id, WebhookProvider.STRIPE, stripe_paid_for("lead_nobody"))
    sweeps = sweeper(engine, UNREACHABLE_TEMPORAL, sqlite_url)

    assert [await sweeps.sweep() for _ in range(3)] == [[], [], []]

    assert routed_at(engine, receipt) is None
    said = [r for r in caplog.records if r.name == "keepwarm.sweeper"]
    assert [(r.levelname, "until temporal is back" in r.getMessage()) for r in said] == [
        ("WARNING", True)
    ]


async def test_a_receipt_that_fails_on_its_own_is_said_once_and_the_rest_are_routed(
    engine: Engine,
    org_id: str,
    sqlite_url: str,
    dev_server: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="keepwarm.sweeper")
    broken = unrouted(engine, org_id, WebhookProvider.TWILIO, {"Body": "no sid"})
    # Nothing left to tell (the payment is for no lead of the org): routed all the same.
    fine = unrouted(engine, org_id, WebhookProvider.STRIPE, stripe_paid_for("lead_nobody"))
    sweeps = sweeper(engine, dev_address(dev_server), sqlite_url)

    first, second = await sweeps.sweep(), await sweeps.sweep()

    assert (first, second) == ([fine], [])
    assert routed_at(engine, fine) is not None
    assert routed_at(engine, broken) is None
    said = [r.getMessage() for r in caplog.records if r.name == "keepwarm.sweeper"]
    assert [re.split(" after | \\(tried", line)[0] for line in said] == [
        f"could not route twilio webhook receipt {broken}: RequestValidationError",
        f"routed stripe webhook receipt {fine} (test)",
    ]
    # It backs off: the second sweep didn't try it (15 s), a sweep once it is due does,
    # and the wait doubles.
    assert backoff(engine, broken)[0] == 1
    with session_scope(engine) as session:
        row = session.get(WebhookReceipt, broken)
        assert row is not None
        row.next_route_at = utcnow() - timedelta(seconds=1)
    assert await sweeps.sweep() == []
    attempts, due = backoff(engine, broken)
    assert attempts == 2
    assert due is not None and timedelta(seconds=25) < due - utcnow() <= timedelta(seconds=30)


def backoff(engine: Engine, receipt_id: str) -> tuple[int, datetime | None]:
    with session_scope(engine) as session:
        row = session.get(WebhookReceipt, receipt_id)
        assert row is not None
        due = row.next_route_at.replace(tzinfo=UTC) if row.next_route_at else None
        return row.route_attempts, due
