"""The PostgreSQL engine: an org-filtered read is planned for its own values on every call on
a pooled connection, not switched to a generic plan after psycopg prepares it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from models.database import make_engine, session_scope
from models.reads.inbox import list_threads
from models.reads.leads import list_leads
from models.schemas import OrgSettings
from models.services.orgs import create_org


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine of this test's own: its pool's connections have prepared only its reads."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def test_org_reads_keep_a_custom_plan_on_the_twentieth_call(pg_engine: Engine) -> None:
    with session_scope(pg_engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings(timezone="UTC"))
    with pg_engine.connect() as connection:
        backend = connection.execute(text("select pg_backend_pid()")).scalar_one()

    # Twenty-five calls of each, one after another: the pool hands out the same connection,
    # and psycopg prepares each statement from its fifth run.
    for _ in range(25):
        with session_scope(pg_engine) as session:
            list_threads(session, org_id=org.id, q="deep clean")
            list_leads(session, org_id=org.id, sort="score")
    with pg_engine.connect() as connection:
        same = connection.execute(text("select pg_backend_pid()")).scalar_one()
        plans = connection.execute(
            text(
                "select generic_plans, custom_plans from pg_prepared_statements"
                " where cardinality(parameter_types) > 0"  # a statement without values has
                # only one plan, generic by definition
            )
        ).all()

    assert same == backend
    assert len(plans) >= 2 and all(custom >= 15 for _, custom in plans)
    assert [generic for generic, _ in plans] == [0] * len(plans)
