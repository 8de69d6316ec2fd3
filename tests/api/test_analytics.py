"""The pipeline and revenue reports on known data, through the real API on SQLite and on
PostgreSQL: every figure checked by hand (conversion, the funnel, speed to lead by nearest
rank, revenue by the source of each customer's first lead, LTV, refunds, success rate,
subscriptions, churn and MRR), the window before, and the CSV of each table.

The org's data (times from ``T0``; the window asked for is ``[T0, T0 + 30 days)``):

=====  =======  ========  =======  =========  ========  =========  =====
lead   contact  source    created  wait (s)   channel   stage      value
=====  =======  ========  =======  =========  ========  =========  =====
L1     c1       google    +1 d     10         sms       converted  100
L2     c2       facebook  +2 d     30.5       email     contacted  50
L3     c3       google    +3 d     -          -         new        -
L4     c4       google    +4 d     40.25      email     lost       -
L1b    c1       facebook  +5 d     20         sms       engaged    -
L5     c5       referral  +6 d     50         sms       quoted     200
L7     c7       google    +7 d     5.125      whatsapp  ghosting   -
L8     c8       (none)    +8 d     60         sms       opted_out  -
L9     c9       google    +9 d     1          sms       converted  300
L10    c10      referral  +10 d    -          -         lost       -
L11    c11      facebook  +11 d    15         email     engaged    25.5
L12    c12      google    +12 d    0.5        sms       contacted  -
L6     c6       google    -10 d    12         sms       converted  80    (window before)
L13    c13      facebook  -20 d    -          -         new        -     (window before)
=====  =======  ========  =======  =========  ========  =========  =====
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from models.database import make_engine, session_scope
from models.reads import pipeline as pipeline_reads
from models.schemas import OrgSettings
from models.services.orgs import create_org
from models.services.payments import (
    PaymentEvent,
    SubscriptionEvent,
    record_payment,
    record_subscription,
)
from models.store import lead_groups
from models.tables import Contact, Lead
from models.values import new_id
from tests.conftest import make_settings, serve

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-31T00:00:00Z"}
CSV = {"Accept": "text/csv"}

#: (lead, contact, source, created (days from T0), wait (s), channel, stage, value)
LEADS: list[tuple[str, str, str | None, int, float | None, str | None, str, float | None]] = [
    ("L1", "c1", "google", 1, 10, "sms", "converted", 100),
    ("L2", "c2", "facebook", 2, 30.5, "email", "contacted", 50),
    ("L3", "c3", "google", 3, None, None, "new", None),
    ("L4", "c4", "google", 4, 40.25, "email", "lost", None),
    ("L1b", "c1", "facebook", 5, 20, "sms", "engaged", None),
    ("L5", "c5", "referral", 6, 50, "sms", "quoted", 200),
    ("L7", "c7", "google", 7, 5.125, "whatsapp", "ghosting", None),
    ("L8", "c8", None, 8, 60, "sms", "opted_out", None),
    ("L9", "c9", "google", 9, 1, "sms", "converted", 300),
    ("L10", "c10", "referral", 10, None, None, "lost", None),
    ("L11", "c11", "facebook", 11, 15, "email", "engaged", 25.5),
    ("L12", "c12", "google", 12, 0.5, "sms", "contacted", None),
    ("L6", "c6", "google", -10, 12, "sms", "converted", 80),
    ("L13", "c13", "facebook", -20, None, None, "new", None),
]


@dataclass
class Org:
    """The seeded org: its id, its API key's headers and its leads' ids by name."""

    org_id: str
    headers: dict[str, str]
    leads: dict[str, str]


def _at(days: float, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


def _pay(
    org_id: str,
    lead_id: str,
    *,
    event: str,
    obj: str,
    kind: str,
    status: str,
    amount: int,
    day: float,
    currency: str = "usd",
    **links: str,
) -> PaymentEvent:
    return PaymentEvent(
        stripe_event_id=f"{org_id}-{event}",
        stripe_object_id=obj,
        kind=kind,
        status=status,
        amount=amount,
        currency=currency,
        lead_id=lead_id,
        occurred_at=_at(day),
        **links,
    )


def _subscription(
    name: str,
    lead_id: str,
    *,
    status: str,
    amount: int,
    interval: str,
    started: float,
    ended: float | None = None,
    count: int = 1,
) -> SubscriptionEvent:
    return SubscriptionEvent(
        stripe_subscription_id=name,
        status=status,
        lead_id=lead_id,
        currency="usd",
        amount=amount,
        interval=interval,
        interval_count=count,
        started_at=_at(started),
        ended_at=None if ended is None else _at(ended),
        occurred_at=_at(ended if ended is not None else started),
    )


def seed(engine: Engine) -> tuple[str, str, dict[str, str]]:
    """The org of the module docstring, its payments and subscriptions."""
    with session_scope(engine) as session:
        org, api_key = create_org(session, name="Analytics", settings=OrgSettings())
        org_id = org.id
        leads: dict[str, str] = {}
        contacts: dict[str, str] = {}
        for name, contact, source, day, wait, channel, stage, value in LEADS:
            if contact not in contacts:
                contacts[contact] = new_id("ct")
                session.add(Contact(id=contacts[contact], org_id=org_id, created_at=_at(-30)))
                session.flush()
            created = _at(day)
            touched = None if wait is None else created + timedelta(seconds=wait)
            lead = Lead(
                id=new_id("lead"),
                org_id=org_id,
                contact_id=contacts[contact],
                workflow_id=f"lead-{name}-{org_id}",
                stage=stage,
                source=source,
                value=value,
                created_at=created,
                updated_at=created,
                first_contact_at=touched,
                first_contact_channel=channel,
            )
            session.add(lead)
            session.flush()
            leads[name] = lead.id
        session.flush()
        payments = [
            # c1 pays for their facebook lead: the money goes to google, their first lead's.
            _pay(org_id, leads["L1b"], event="e1", obj="in_1", kind="invoice", status="paid",
                 amount=10_000, day=10, payment_intent="pi_1"),
            # The Checkout Session that created in_1: in_1's own event counts, not this one.
            _pay(org_id, leads["L1b"], event="e2", obj="cs_1", kind="checkout", status="paid",
                 amount=10_000, day=10, invoice="in_1"),
            _pay(org_id, leads["L1"], event="e3", obj="cs_2", kind="checkout", status="paid",
                 amount=5_000, day=12, payment_intent="pi_2"),
            _pay(org_id, leads["L2"], event="e4", obj="in_2", kind="invoice", status="paid",
                 amount=3_000, day=11, payment_intent="pi_3"),
            # Two refunds of c2's charge: Stripe reports the running total each time.
            _pay(org_id, leads["L2"], event="e5", obj="ch_3", kind="refund",
                 status="refunded", amount=1_000, day=13, payment_intent="pi_3"),
            _pay(org_id, leads["L2"], event="e6", obj="ch_3", kind="refund",
                 status="refunded", amount=1_500, day=14, payment_intent="pi_3"),
            # A late copy of the first refund's total adds nothing.
            _pay(org_id, leads["L2"], event="e6b", obj="ch_3", kind="refund",
                 status="refunded", amount=1_000, day=14.5, payment_intent="pi_3"),
            _pay(org_id, leads["L5"], event="e7", obj="in_5", kind="invoice", status="failed",
                 amount=2_000, day=14),
            _pay(org_id, leads["L5"], event="e8", obj="in_5", kind="invoice", status="paid",
                 amount=2_000, day=15),
            # c6 came from google before the window; pays in it.
            _pay(org_id, leads["L6"], event="e9", obj="in_6", kind="invoice", status="paid",
                 amount=1_000, day=20),
            # The window before: c2 paid 700.
            _pay(org_id, leads["L2"], event="e10", obj="in_7", kind="invoice", status="paid",
                 amount=700, day=-5),
            # Another currency: left out of the usd figures.
            _pay(org_id, leads["L3"], event="e11", obj="in_8", kind="invoice", status="paid",
                 amount=999, day=16, currency="eur"),
            # After the window.
            _pay(org_id, leads["L1"], event="e12", obj="in_9", kind="invoice", status="paid",
                 amount=50_000, day=40),
        ]  # fmt: skip
        for payment in payments:
            assert record_payment(session, org_id=org_id, event=payment) is not None
        subscriptions = [
            _subscription("sub_1", leads["L1"], status="active", amount=3_000, interval="month",
                          started=-60),
            _subscription("sub_2", leads["L2"], status="active", amount=12_000, interval="year",
                          started=-40),
            _subscription("sub_3", leads["L5"], status="canceled", amount=2_000,
                          interval="month", started=-50, ended=20),
            _subscription("sub_4", leads["L9"], status="trialing", amount=1_500,
                          interval="month", started=1),
            _subscription("sub_5", leads["L11"], status="active", amount=4_000,
                          interval="month", count=3, started=5),
            _subscription("sub_6", leads["L6"], status="canceled", amount=1_000,
                          interval="week", started=-90, ended=-10),
        ]  # fmt: skip
        for subscription in subscriptions:
            assert record_subscription(session, org_id=org_id, event=subscription) is not None
        # Leads written around the app: the pipeline's running counts derived from them.
        session.flush()
        lead_groups.rebuild(session, org_id=org_id)
    return org_id, api_key, leads


@pytest.fixture
def analytics_engine(any_db_url: str) -> Iterator[Engine]:
    engine = make_engine(any_db_url, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
async def reports(
    any_db_url: str, analytics_engine: Engine
) -> AsyncIterator[tuple[httpx.AsyncClient, Org]]:
    """The real API on the database (no Temporal: these routes never use it), and the org."""
    org_id, api_key, leads = seed(analytics_engine)
    settings = make_settings(database_url=any_db_url, temporal_address="127.0.0.1:1")
    async with serve(settings) as client:
        yield client, Org(org_id, {"Authorization": f"Bearer {api_key}"}, leads)


EXPECTED_BY_SOURCE = [
    {
        "source": "google",
        "leads": 6,
        "converted": 2,
        "value": 400.0,
        "conversion_rate": 0.3333,
        "time_to_first_contact_p50_s": 5.125,
        "time_to_first_contact_p90_s": 40.25,
        "revenue": 16_000,
        "customers": 2,
        "ltv": 8_000.0,
    },
    {
        "source": "facebook",
        "leads": 3,
        "converted": 0,
        "value": 75.5,
        "conversion_rate": 0.0,
        "time_to_first_contact_p50_s": 20.0,
        "time_to_first_contact_p90_s": 30.5,
        "revenue": 1_500,
        "customers": 1,
        "ltv": 1_500.0,
    },
    {
        "source": "referral",
        "leads": 2,
        "converted": 0,
        "value": 200.0,
        "conversion_rate": 0.0,
        "time_to_first_contact_p50_s": 50.0,
        "time_to_first_contact_p90_s": 50.0,
        "revenue": 2_000,
        "customers": 1,
        "ltv": 2_000.0,
    },
    {
        "source": None,
        "leads": 1,
        "converted": 0,
        "value": 0.0,
        "conversion_rate": 0.0,
        "time_to_first_contact_p50_s": 60.0,
        "time_to_first_contact_p90_s": 60.0,
        "revenue": 0,
        "customers": 0,
        "ltv": None,
    },
]


async def test_every_pipeline_figure_of_a_window(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports

    answer = await api.get("/v1/pipeline", params=WINDOW, headers=org.headers)

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["stages"] == {
        "new": 1,
        "contacted": 2,
        "engaged": 2,
        "quoted": 1,
        "converted": 2,
        "ghosting": 1,
        "lost": 2,
        "opted_out": 1,
    }
    assert report["conversion_rate"] == 0.1667
    # Ten touched leads: 0.5 1 5.125 10 15 | 20 30.5 40.25 50 60; ranks ceil(5) and ceil(9).
    assert report["time_to_first_contact"] == {"p50_s": 15.0, "p90_s": 50.0}
    assert report["lead_value"] == {"total": 675.5, "average": 135.1}
    assert report["funnel"] == [
        {"stage": "new", "leads": 12, "conversion_from_previous": None,
         "conversion_from_start": 1.0},
        # Touched leads count as contacted whatever their stage (lost L4, opted-out L8).
        {"stage": "contacted", "leads": 10, "conversion_from_previous": 0.8333,
         "conversion_from_start": 0.8333},
        {"stage": "engaged", "leads": 5, "conversion_from_previous": 0.5,
         "conversion_from_start": 0.4167},
        {"stage": "quoted", "leads": 3, "conversion_from_previous": 0.6,
         "conversion_from_start": 0.25},
        {"stage": "converted", "leads": 2, "conversion_from_previous": 0.6667,
         "conversion_from_start": 0.1667},
    ]  # fmt: skip
    assert report["by_channel"] == [
        # 0.5 1 10 20 50 60: ranks 3 and 6.
        {"channel": "sms", "leads": 6, "p50_s": 10.0, "p90_s": 60.0},
        {"channel": "email", "leads": 3, "p50_s": 30.5, "p90_s": 40.25},
        {"channel": "whatsapp", "leads": 1, "p50_s": 5.125, "p90_s": 5.125},
    ]
    assert report["by_source"] == EXPECTED_BY_SOURCE
    assert report["currency"] == "usd"
    assert report["previous"] is None


async def test_compare_previous_gives_the_window_before(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports

    pipeline = (
        await api.get("/v1/pipeline", params=WINDOW | {"compare": "previous"}, headers=org.headers)
    ).json()
    revenue = (
        await api.get("/v1/revenue", params=WINDOW | {"compare": "previous"}, headers=org.headers)
    ).json()

    before = pipeline["previous"]
    assert before["window"] == {"from": "2024-12-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}
    assert sum(before["stages"].values()) == 2
    assert before["stages"]["converted"] == 1 and before["stages"]["new"] == 1
    assert before["conversion_rate"] == 0.5
    assert before["time_to_first_contact"] == {"p50_s": 12.0, "p90_s": 12.0}
    assert [(line["source"], line["leads"], line["revenue"]) for line in before["by_source"]] == [
        ("facebook", 1, 700),
        ("google", 1, 0),
    ]
    # The current figures are unchanged by the comparison.
    assert pipeline["by_source"] == EXPECTED_BY_SOURCE
    earlier = revenue["previous"]
    assert earlier["window"] == before["window"]
    assert (earlier["collected"], earlier["refunded"], earlier["paid_payments"]) == (700, 0, 1)
    assert earlier["payment_success_rate"] == 1.0
    # At T0: sub_1, sub_2 and sub_3 bill; sub_6 ended ten days before.
    assert earlier["subscriptions"] == {
        "active": 3,
        "churned": 1,
        "churn_rate": 0.25,
        "mrr": 6_000.0,
    }


async def test_every_revenue_figure_of_a_window(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports

    answer = await api.get("/v1/revenue", params=WINDOW, headers=org.headers)

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["currency"] == "usd"
    # in_1 10,000 + cs_2 5,000 + in_2 3,000 + in_5 2,000 + in_6 1,000 (cs_1 is in_1).
    assert report["collected"] == 21_000
    # ch_3's refunds: 1,000 then 500 more (its total went to 1,500); the late copy adds 0.
    assert report["refunded"] == 1_500
    assert report["paid_payments"] == 5
    assert report["failed_payments"] == 1
    assert report["payment_success_rate"] == round(5 / 6, 4)
    assert report["by_source"] == [
        {"source": "google", "revenue": 16_000, "customers": 2, "ltv": 8_000.0},
        {"source": "referral", "revenue": 2_000, "customers": 1, "ltv": 2_000.0},
        {"source": "facebook", "revenue": 1_500, "customers": 1, "ltv": 1_500.0},
    ]
    # At the window's end sub_1 (3,000 a month), sub_2 (12,000 a year: 1,000) and sub_5
    # (4,000 a quarter: 1,333.33) bill; sub_3 ended in it; sub_4 is a trial. Billing at
    # some moment of the window: sub_1, sub_2, sub_3, sub_5.
    assert report["subscriptions"] == {
        "active": 3,
        "churned": 1,
        "churn_rate": 0.25,
        "mrr": 5_333.33,
    }
    assert report["previous"] is None


async def test_another_currency_and_all_time(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports

    euros = (
        await api.get("/v1/revenue", params=WINDOW | {"currency": "EUR"}, headers=org.headers)
    ).json()
    ever = (await api.get("/v1/revenue", headers=org.headers)).json()
    pipeline = (await api.get("/v1/pipeline", headers=org.headers)).json()

    assert euros["currency"] == "eur"
    assert (euros["collected"], euros["paid_payments"]) == (999, 1)
    assert euros["by_source"] == [
        {"source": "google", "revenue": 999, "customers": 1, "ltv": 999.0}
    ]
    assert euros["subscriptions"] == {"active": 0, "churned": 0, "churn_rate": None, "mrr": 0.0}
    assert ever["collected"] == 21_000 + 700 + 50_000
    assert ever["by_source"][0] == {
        "source": "google",
        "revenue": 16_000 + 50_000,
        "customers": 2,
        "ltv": 33_000.0,
    }
    # All time: sub_1, sub_2 and sub_5 still bill; sub_3 and sub_6 ended (of five billing).
    assert ever["subscriptions"] == {"active": 3, "churned": 2, "churn_rate": 0.4, "mrr": 5_333.33}
    assert sum(pipeline["stages"].values()) == len(LEADS)
    # Eleven waits (L6's 12 s too): ranks ceil(5.5) = 6 and ceil(9.9) = 10.
    assert pipeline["time_to_first_contact"] == {"p50_s": 15.0, "p90_s": 50.0}


async def test_one_source_and_an_empty_window(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports

    google = (
        await api.get("/v1/pipeline", params=WINDOW | {"source": "google"}, headers=org.headers)
    ).json()
    empty = (
        await api.get(
            "/v1/pipeline",
            params={"from": "2030-01-01T00:00:00Z", "compare": "previous"},
            headers=org.headers,
        )
    ).json()

    assert google["by_source"] == [EXPECTED_BY_SOURCE[0]]
    assert google["time_to_first_contact"] == {"p50_s": 5.125, "p90_s": 40.25}
    assert sum(google["stages"].values()) == 6
    assert sum(empty["stages"].values()) == 0
    assert empty["time_to_first_contact"] == {"p50_s": None, "p90_s": None}
    assert empty["by_source"] == [] and empty["by_channel"] == []
    assert empty["previous"] is None  # the window hasn't begun: nothing before it to compare
    assert empty["funnel"][0] == {
        "stage": "new",
        "leads": 0,
        "conversion_from_previous": None,
        "conversion_from_start": None,
    }


def _csv(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize(
    ("path", "table", "key"),
    [
        ("/v1/pipeline", "by_source", "by_source"),
        ("/v1/pipeline", "funnel", "funnel"),
        ("/v1/pipeline", "by_channel", "by_channel"),
        ("/v1/revenue", "by_source", "by_source"),
    ],
)
async def test_each_table_as_csv_equals_the_json(
    reports: tuple[httpx.AsyncClient, Org], path: str, table: str, key: str
) -> None:
    api, org = reports

    document = (await api.get(path, params=WINDOW, headers=org.headers)).json()
    answer = await api.get(path, params=WINDOW | {"table": table}, headers=org.headers | CSV)

    rows = _csv(answer)
    assert rows == [{name: _cell(value) for name, value in line.items()} for line in document[key]]
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="{path.removeprefix("/v1/")}-{table}-'
        '2025-01-01T000000Z-2025-01-31T000000Z.csv"'
    )


async def test_stage_and_summary_tables_as_csv(
    reports: tuple[httpx.AsyncClient, Org],
) -> None:
    api, org = reports
    pipeline = (await api.get("/v1/pipeline", params=WINDOW, headers=org.headers)).json()
    revenue = (await api.get("/v1/revenue", params=WINDOW, headers=org.headers)).json()

    stages = _csv(
        await api.get(
            "/v1/pipeline", params=WINDOW | {"table": "stages"}, headers=org.headers | CSV
        )
    )
    figures = _csv(
        await api.get(
            "/v1/revenue", params=WINDOW | {"table": "summary"}, headers=org.headers | CSV
        )
    )
    default = _csv(await api.get("/v1/revenue", params=WINDOW, headers=org.headers | CSV))

    assert {row["stage"]: int(row["leads"]) for row in stages} == pipeline["stages"]
    assert [row["stage"] for row in stages][:2] == ["new", "contacted"]
    summary = {row["figure"]: row["value"] for row in figures}
    assert summary["collected"] == str(revenue["collected"]) == "21000"
    assert summary["mrr"] == str(revenue["subscriptions"]["mrr"])
    assert summary["payment_success_rate"] == str(revenue["payment_success_rate"])
    assert summary["churn_rate"] == "0.25"
    assert [row["source"] for row in default] == ["google", "referral", "facebook"]


async def test_json_stays_the_default(reports: tuple[httpx.AsyncClient, Org]) -> None:
    api, org = reports

    for accept in ("*/*", "application/json, text/csv", "text/csv;q=0.5, application/json"):
        answer = await api.get("/v1/revenue", headers=org.headers | {"Accept": accept})
        assert answer.headers["content-type"] == "application/json", accept
    wildcard = await api.get("/v1/revenue", headers=org.headers | {"Accept": "text/csv, */*"})
    assert wildcard.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize(
    ("start", "end", "source"),
    [
        (T0, T0 + timedelta(days=30), None),
        (None, None, None),
        (T0 - timedelta(days=30), T0, None),
        (None, None, "google"),
        (T0, T0 + timedelta(days=30), "facebook"),
    ],
)
def test_walking_the_wait_index_gives_what_sorting_gives(
    pg_url: str, start: datetime | None, end: datetime | None, source: str | None
) -> None:
    # A big window on PostgreSQL reads each k-th wait off ix_leads_wait*; a small one sorts.
    engine = make_engine(pg_url, pool_size=1)
    try:
        org_id, _, _ = seed(engine)
        touched: dict[tuple[str, str | None], int] = {}
        for _, _, lead_source, day, wait, channel, _, _ in LEADS:
            inside = (start is None or _at(day) >= start) and (end is None or _at(day) < end)
            if wait is None or not inside or (source is not None and lead_source != source):
                continue
            for group in (("all", None), ("source", lead_source), ("channel", channel)):
                touched[group] = touched.get(group, 0) + 1
        with session_scope(engine, snapshot=True) as session:
            walked = pipeline_reads._walked(
                session, org_id=org_id, start=start, end=end, source=source, touched=touched
            )
            ordered = pipeline_reads._sorted(
                session, org_id=org_id, start=start, end=end, source=source
            )
    finally:
        engine.dispose()

    def by_group(row: pipeline_reads.SpeedRow) -> tuple[str, str]:
        return row[0], row[1] or ""

    assert walked and sorted(walked, key=by_group) == sorted(ordered, key=by_group)
