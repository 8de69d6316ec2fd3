"""A provider's performance (``GET /v1/providers/{id}/performance``, API.md "Appointments and
the people who do the work"): every figure checked against known bookings, the flags against a
known history, on SQLite and on PostgreSQL, through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from models.database import make_engine, session_scope
from models.tables import Booking, Contact, Lead
from models.values import Stage
from tests.conftest import create_org, make_settings, serve

#: Where nothing listens: these routes never need Temporal.
NO_TEMPORAL = "127.0.0.1:1"


@dataclass
class Stack:
    """The API on one database, and an engine to write known bookings with."""

    api: httpx.AsyncClient
    engine: Engine


@dataclass
class Org:
    """An org with a lead to hang bookings on, and its auth headers."""

    id: str
    headers: dict[str, str]
    lead_id: str
    contact_id: str


@pytest.fixture
def now() -> datetime:
    """The test's moment: bookings are written around it, the API reads a moment later."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def stack(any_db_url: str) -> AsyncIterator[Stack]:
    engine = make_engine(any_db_url)
    async with serve(make_settings(database_url=any_db_url, temporal_address=NO_TEMPORAL)) as api:
        yield Stack(api=api, engine=engine)
    engine.dispose()


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


async def new_org(stack: Stack, name: str = "Shine Cleaning") -> Org:
    """An org (through the API) with one contact and lead (written directly)."""
    org_id, headers = await create_org(stack.api, name=name)
    contact = Contact(id=_id("ct"), org_id=org_id)
    lead = Lead(
        id=_id("lead"),
        org_id=org_id,
        contact_id=contact.id,
        workflow_id=_id("wf"),
        stage=Stage.CONVERTED,
    )
    with session_scope(stack.engine) as session:
        session.add(contact)
        session.flush()
        session.add(lead)
    return Org(id=org_id, headers=headers, lead_id=lead.id, contact_id=contact.id)


async def new_provider(stack: Stack, org: Org, name: str) -> str:
    answer = await stack.api.post("/v1/providers", json={"name": name}, headers=org.headers)
    assert answer.status_code == 201, answer.text
    provider_id: str = answer.json()["id"]
    return provider_id


def book(
    stack: Stack,
    org: Org,
    provider_id: str,
    starts_at: datetime,
    *,
    status: str = "completed",
    late_by: timedelta | None = None,
    rating: int | None = None,
    complained: bool = False,
) -> str:
    """A booking of the provider at ``starts_at``, arrived ``late_by`` after it (``None``:
    no arrival recorded); its id."""
    booking = Booking(
        id=_id("bk"),
        org_id=org.id,
        lead_id=org.lead_id,
        contact_id=org.contact_id,
        receipt_id=_id("rc"),
        workflow_id=_id("wf"),
        provider_id=provider_id,
        starts_at=starts_at,
        status=status,
        arrived_at=None if late_by is None else starts_at + late_by,
        rating=rating,
        complained=complained,
    )
    with session_scope(stack.engine) as session:
        session.add(booking)
    return booking.id


async def performance(
    stack: Stack, org: Org, provider_id: str, **window: datetime
) -> dict[str, Any]:
    params = {name.rstrip("_"): moment.isoformat() for name, moment in window.items()}
    answer = await stack.api.get(
        f"/v1/providers/{provider_id}/performance", params=params, headers=org.headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_the_figures_count_the_due_visits_of_the_window(stack: Stack, now: datetime) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")
    ana = await new_provider(stack, org, "Ana")
    start, end = now - timedelta(days=10), now + timedelta(days=2)
    day = now - timedelta(days=9)
    minutes = timedelta(minutes=1)
    book(stack, org, sam, day, late_by=-5 * minutes, rating=5)  # early: lateness 0
    book(stack, org, sam, day + timedelta(hours=2), late_by=5 * minutes, rating=4)  # in grace
    book(stack, org, sam, day + timedelta(days=1), late_by=20 * minutes, rating=2, complained=True)
    book(stack, org, sam, day + timedelta(days=2), status="no_show")
    book(stack, org, sam, day + timedelta(days=3))  # completed without an arrival time
    # None of these count: cancelled, not due yet, before the window, someone else's.
    book(
        stack,
        org,
        sam,
        day + timedelta(days=4),
        status="cancelled",
        late_by=90 * minutes,
        rating=1,
        complained=True,
    )
    book(stack, org, sam, now + timedelta(days=1), status="scheduled")
    book(stack, org, sam, start - timedelta(hours=1), late_by=60 * minutes, rating=1)
    book(stack, org, ana, day, status="no_show")

    body = await performance(stack, org, sam, from_=start, to=end)

    assert body == {
        "provider_id": sam,
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "visits": 5,
        "attended_rate": 0.8,
        "on_time_rate": 0.6667,
        "average_rating": 3.67,
        "ratings": 3,
        "complaint_rate": 0.25,
        "average_lateness_s": 500.0,
        "flags": [],
    }


async def test_on_time_is_within_the_orgs_grace(stack: Stack, now: datetime) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")
    day = now - timedelta(days=3)
    book(stack, org, sam, day, late_by=timedelta(minutes=5))
    book(stack, org, sam, day + timedelta(hours=3), late_by=timedelta(minutes=20))

    before = await performance(stack, org, sam)
    patched = await stack.api.patch(
        "/v1/orgs/me", json={"appointments": {"on_time_grace": "PT30M"}}, headers=org.headers
    )
    after = await performance(stack, org, sam)

    assert patched.status_code == 200, patched.text
    assert (before["on_time_rate"], after["on_time_rate"]) == (0.5, 1.0)
    assert before["average_lateness_s"] == after["average_lateness_s"] == 750.0


async def test_the_default_window_is_the_last_30_days(stack: Stack, now: datetime) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")
    ana = await new_provider(stack, org, "Ana")
    book(stack, org, sam, now - timedelta(days=29), rating=4)
    book(stack, org, sam, now - timedelta(days=31), rating=1)

    body = await performance(stack, org, sam)
    idle = await performance(stack, org, ana)

    end = datetime.fromisoformat(body["to"])
    assert now <= end <= datetime.now(UTC)
    assert datetime.fromisoformat(body["from"]) == end - timedelta(days=30)
    assert (body["visits"], body["ratings"], body["average_rating"]) == (1, 1, 4.0)
    assert idle == {
        **idle,
        "visits": 0,
        "attended_rate": None,
        "on_time_rate": None,
        "average_rating": None,
        "ratings": 0,
        "complaint_rate": None,
        "average_lateness_s": None,
        "flags": [],
    }


async def test_a_window_past_the_years_a_timestamp_holds_is_cut_there(
    stack: Stack, now: datetime
) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")
    book(stack, org, sam, now - timedelta(days=1), late_by=timedelta(0))

    answer = await stack.api.get(
        f"/v1/providers/{sam}/performance",
        params={"from": "0001-01-01T00:00:00+05:00", "to": "9999-12-31T23:59:59-05:00"},
        headers=org.headers,
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"]) == ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z")
    assert (body["visits"], body["on_time_rate"]) == (1, 1.0)


async def test_a_provider_who_starts_arriving_late_is_flagged_with_the_late_visits(
    stack: Stack, now: datetime
) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")
    ana = await new_provider(stack, org, "Ana")
    start = now - timedelta(days=7)
    on_time, late = timedelta(minutes=2), timedelta(minutes=35)
    # A year of punctual visits before the window, for both.
    for week in range(1, 31):
        for provider in (sam, ana):
            book(stack, org, provider, start - timedelta(weeks=week), late_by=on_time, rating=5)
    # Then Sam is late to four of six; Ana has an ordinary week (one a little late).
    sams = [
        book(
            stack,
            org,
            sam,
            start + timedelta(days=day, hours=2),
            late_by=late if day % 3 else on_time,
        )
        for day in range(6)
    ]
    for day in range(6):
        book(stack, org, ana, start + timedelta(days=day), late_by=late if day == 2 else on_time)

    flagged = await performance(stack, org, sam, from_=start, to=now)
    ordinary = await performance(stack, org, ana, from_=start, to=now)

    assert [(flag["kind"], flag["booking_ids"]) for flag in flagged["flags"]] == [
        ("late", [sams[1], sams[2], sams[4], sams[5]])
    ]
    assert flagged["flags"][0]["summary"].startswith("Late to 4 of 6 visits")
    assert flagged["flags"][0]["p_value"] < 0.01
    assert flagged["on_time_rate"] == 0.3333
    assert ordinary["flags"] == []
    assert ordinary["on_time_rate"] == 0.8333


async def test_another_orgs_provider_or_an_unknown_one_is_404(stack: Stack) -> None:
    ours = await new_org(stack)
    theirs = await new_org(stack, "Other Cleaning")
    their_provider = await new_provider(stack, theirs, "Sam")

    for provider_id in (their_provider, "prov_nobody"):
        answer = await stack.api.get(
            f"/v1/providers/{provider_id}/performance", headers=ours.headers
        )
        assert answer.status_code == 404, answer.text
    unauthenticated = await stack.api.get(f"/v1/providers/{their_provider}/performance")
    assert unauthenticated.status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-01T00:00:00"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "1700000000"}, "from"),
        # Without `to` the window ends now, so it can't start later.
        ({"from": "2999-01-01T00:00:00Z"}, "to"),
    ],
)
async def test_a_bad_window_is_422(stack: Stack, params: dict[str, str], field: str) -> None:
    org = await new_org(stack)
    sam = await new_provider(stack, org, "Sam")

    answer = await stack.api.get(
        f"/v1/providers/{sam}/performance", params=params, headers=org.headers
    )

    assert answer.status_code == 422, answer.text
    assert [detail["field"] for detail in answer.json()["error"]["details"]] == [field]
