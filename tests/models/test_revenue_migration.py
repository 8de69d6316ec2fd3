"""Migration 0010 fills in what the revenue and pipeline reports read for rows from before it,
on SQLite and on PostgreSQL: a payment's time, customer and first-lead source, a lead's
first-touch channel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from models.migrate import alembic_config
from tests.conftest import empty_pg_database

T = datetime(2025, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with empty_pg_database("keepwarm_test_0010") as url:
        yield url


def test_rows_from_before_get_their_time_customer_source_and_channel(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0009")
    engine = create_engine(empty_url)
    at = {"t": T.replace(tzinfo=None) if empty_url.startswith("sqlite") else T}
    rows = [
        "INSERT INTO orgs (id, name, api_key_hash, api_key_prefix, id_secret, settings, "
        "created_at) VALUES ('o', 'Org', 'h', 'p', 's', '{}', :t)",
        "INSERT INTO contacts (id, org_id, created_at) VALUES ('c', 'o', :t)",
        # Two leads of one contact: the older one (google) earns the payment on the newer.
        "INSERT INTO leads (id, org_id, contact_id, workflow_id, stage, score, source, fields, "
        "created_at, updated_at, first_contact_at) VALUES ('l1', 'o', 'c', 'w1', 'converted', "
        "0, 'google', '{}', :t, :t, :t)",
        "INSERT INTO leads (id, org_id, contact_id, workflow_id, stage, score, source, fields, "
        "created_at, updated_at) VALUES ('l2', 'o', 'c', 'w2', 'new', 0, 'facebook', '{}', "
        "'2025-06-01 00:00:00+00', '2025-06-01 00:00:00+00')",
        "INSERT INTO messages (id, org_id, lead_id, channel, direction, sender, body, status, "
        "created_at, sent_at) VALUES ('m1', 'o', 'l1', 'whatsapp', 'outbound', 'ai', 'Hi', "
        "'sent', :t, :t)",
        "INSERT INTO payments (id, org_id, lead_id, stripe_event_id, stripe_object_id, kind, "
        "status, amount, currency, created_at) VALUES ('p', 'o', 'l2', 'evt', 'in', "
        "'invoice', 'paid', 500, 'usd', :t)",
    ]
    with engine.begin() as conn:
        for row in rows:
            conn.execute(text(row), at)
    engine.dispose()

    command.upgrade(config, "head")

    engine = create_engine(empty_url)
    with engine.connect() as conn:
        payment = conn.execute(
            text("SELECT contact_id, source, occurred_at = created_at FROM payments")
        ).one()
        channels = conn.execute(
            text("SELECT id, first_contact_channel FROM leads ORDER BY id")
        ).all()
    engine.dispose()
    assert tuple(payment) == ("c", "google", True)
    assert [tuple(row) for row in channels] == [("l1", "whatsapp"), ("l2", None)]
