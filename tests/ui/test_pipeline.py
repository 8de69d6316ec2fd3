"""The Pipeline page in real Chromium: a range of days in the org's calendar against the period
before it, the figures it shows and the CSV behind each table, the accessibility scan, no
page without a session, and only the operator's own org's figures.

The org is made through the JSON API; its leads are written straight into the live server's
database with known creation times (the page is about old days). The org is in
Europe/London, on summer time (UTC+1) in the range, so a lead at 23:30 UTC on 30 June is a
lead of 1 July:

====  =====================  ============  ========  =========  =====  ==============
lead  created (UTC)          local day     source    stage      value  first touch
====  =====================  ============  ========  =========  =====  ==============
A     2025-06-30 23:30       1 Jul         google    converted  100    30 s, SMS
B     2025-07-03 10:00       3 Jul         google    contacted  50     90 s, SMS
C     2025-07-10 12:00       10 Jul        facebook  new        -      -
D     2025-07-10 23:30       11 Jul        facebook  new        -      -
E     2025-06-25 09:00       25 Jun        google    converted  80     10 min, email
F     2025-06-21 00:00       21 Jun        facebook  new        -      -
====  =====================  ============  ========  =========  =====  ==============

1-10 July holds A, B and C; the 10 days before it (21-30 June) hold E and F.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Locator, Page, expect
from sqlalchemy.engine import Engine

from api.csv import cell
from api.ui.pipeline import (
    Range,
    change,
    duration,
    money,
    number,
    percent,
    trend,
)
from models.database import make_engine, session_scope
from models.reads.lead_days import LeadDay, leads_by_day
from models.schemas import OrgSettings
from models.services.orgs import create_org as create_org_row
from models.store import lead_groups
from models.tables import Contact, Lead
from models.values import new_id
from tests.conftest import create_org
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, signed_in

RANGE = "/app/pipeline?from=2025-07-01&to=2025-07-10"

#: (lead, created, source, stage, value, first touch after (s), its channel)
LEADS: list[tuple[str, datetime, str, str, float | None, float | None, str | None]] = [
    ("A", datetime(2025, 6, 30, 23, 30, tzinfo=UTC), "google", "converted", 100, 30, "sms"),
    ("B", datetime(2025, 7, 3, 10, 0, tzinfo=UTC), "google", "contacted", 50, 90, "sms"),
    ("C", datetime(2025, 7, 10, 12, 0, tzinfo=UTC), "facebook", "new", None, None, None),
    ("D", datetime(2025, 7, 10, 23, 30, tzinfo=UTC), "facebook", "new", None, None, None),
    ("E", datetime(2025, 6, 25, 9, 0, tzinfo=UTC), "google", "converted", 80, 600, "email"),
    ("F", datetime(2025, 6, 21, 0, 0, tzinfo=UTC), "facebook", "new", None, None, None),
]


def write_leads(engine: Engine, org_id: str) -> None:
    """``LEADS`` as rows of ``org_id``, each with a contact of its own."""
    with session_scope(engine) as session:
        for name, created, source, stage, value, wait, channel in LEADS:
            contact = Contact(id=new_id("ct"), org_id=org_id, created_at=created)
            session.add(contact)
            session.flush()
            session.add(
                Lead(
                    id=new_id("lead"),
                    org_id=org_id,
                    contact_id=contact.id,
                    workflow_id=f"lead-{name}-{org_id}",
                    stage=stage,
                    source=source,
                    value=value,
                    created_at=created,
                    updated_at=created,
                    first_contact_at=None if wait is None else created + timedelta(seconds=wait),
                    first_contact_channel=channel,
                )
            )
        # Written around the app: the pipeline's running counts derived from them.
        session.flush()
        lead_groups.rebuild(session, org_id=org_id)


async def org_with_leads(live_server: str, engine: Engine, *, leads: bool = True) -> Shop:
    """A new org in Europe/London (``LEADS`` written into it unless ``leads`` is false)."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        org_id, headers = await create_org(api, name="Shine", timezone="Europe/London")
    if leads:
        await asyncio.to_thread(write_leads, engine, org_id)
    return Shop(live_server, org_id, headers, "", "", "")


async def on_the_range(
    new_page: NewPage, live_server: str, engine: Engine, name: str, *, leads: bool = True
) -> Page:
    """``name`` of a new org (with ``LEADS`` unless ``leads`` is false) on 1-10 July."""
    shop = await org_with_leads(live_server, engine, leads=leads)
    page = await signed_in(new_page, shop, name)
    await page.goto(RANGE)
    return page


async def shown_table(page: Page, name: str) -> list[list[str]]:
    """The CSV values of a table's cells (``data-value``), header row first."""
    table = page.locator(f"table[data-table='{name}']")
    headers = await table.locator("thead th").all_text_contents()
    cells: list[list[str]] = await table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.getAttribute('data-value')))"
    )
    return [headers, *cells]


async def downloaded(page: Page, name: str) -> list[list[str]]:
    """The CSV the table's "Download CSV" link gives, as rows."""
    link = page.locator(f"#table-{name}").get_by_role("link", name=re.compile("^Download CSV"))
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    path = await download.path()
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


def headline(page: Page, label: str) -> tuple[Locator, Locator]:
    """A headline figure's number and its change against the previous period."""
    card = page.locator(".headline-figures article").filter(
        has=page.get_by_role("heading", name=label, exact=True)
    )
    return card.locator(".big"), card.locator(".change")


async def test_a_date_range_changes_the_figures_and_each_csv_is_the_table_shown(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    page = await on_the_range(new_page, live_server, pg_engine, "Ann")

    await expect(page.locator("#range-shown")).to_have_text("1 Jul 2025 to 10 Jul 2025")
    await expect(page.locator(".range-label")).to_contain_text("21 Jun 2025 to 30 Jun 2025")
    await expect(page.get_by_text("calendar days in Europe/London time")).to_be_visible()
    leads, leads_change = headline(page, "Leads")
    await expect(leads).to_have_text("3")
    await expect(leads_change).to_have_text("▲ Up 1 from 2 (+50%)")
    converted, _ = headline(page, "Converted")
    await expect(converted).to_have_text("1")
    rate, rate_change = headline(page, "Conversion rate")
    await expect(rate).to_have_text("33.3%")
    await expect(rate_change).to_have_text("▼ Down 16.7 points from 50%")
    speed, speed_change = headline(page, "Speed to lead (median)")
    await expect(speed).to_have_text("30 s")
    await expect(speed_change).to_have_text("▲ Faster: was 10 min")

    stages = page.locator("table[data-table='stages']")
    await expect(stages.locator("tr", has_text="Converted")).to_contain_text("1")
    await expect(stages.locator("tr", has_text="New")).to_contain_text("1")
    funnel = page.locator("table[data-table='funnel']")
    await expect(funnel.locator("tbody tr").first).to_contain_text("3")
    google = page.locator("table[data-table='by_source'] tr", has_text="google")
    await expect(google).to_contain_text("50%")
    await expect(google).to_contain_text("1 min")  # p90 of 30 s and 90 s: 90 s
    channel = page.locator("table[data-table='by_channel'] tr", has_text="SMS")
    await expect(channel).to_contain_text("30 s")
    await expect(page.locator("#trend-chart")).to_be_visible()
    await expect(page.get_by_text("No payments or subscriptions from Stripe")).to_be_visible()

    # Every table's download is the table shown: the same columns, rows and values.
    for summary in await page.locator("details > summary").all():
        await summary.click()
    for name in ("summary", "trend", "stages", "funnel", "by_source", "by_channel", "payments"):
        shown = await shown_table(page, name)
        rows = await downloaded(page, name)
        assert len(rows[0]) == len(shown[0]), name
        assert rows[1:] == shown[1:], name
    trend_rows = (await downloaded(page, "trend"))[1:]
    assert len(trend_rows) == 10
    assert [row for row in trend_rows if row[1] != "0"] == [
        ["2025-07-01", "1", "1"],
        ["2025-07-03", "1", "0"],
        ["2025-07-10", "1", "0"],
    ]
    source_rows = {row[0]: row for row in (await downloaded(page, "by_source"))[1:]}
    assert source_rows["google"][1:4] == ["2", "1", "0.5"]
    assert source_rows["facebook"][1:3] == ["1", "0"]

    # One more day: D (23:30 UTC on 10 July is 00:30 on the 11th in London) comes in.
    await page.get_by_label("To", exact=True).fill("2025-07-11")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(re.compile(r"/app/pipeline\?from=2025-07-01&to=2025-07-11$"))
    await expect(page.locator("#range-shown")).to_have_text("1 Jul 2025 to 11 Jul 2025")
    await expect(leads).to_have_text("4")
    stages_now = await downloaded(page, "stages")
    assert ["new", "2"] in stages_now
    assert await shown_table(page, "stages") == [
        await stages.locator("thead th").all_text_contents(),
        *stages_now[1:],
    ]

    # All time: no earlier period to compare with; every lead counts.
    await page.get_by_role("link", name="All time").click()
    await expect(page.locator("#range-shown")).to_have_text(re.compile(r"^All time, to "))
    await expect(leads).to_have_text("6")
    await expect(leads_change).to_have_text("Nothing to compare with")


async def test_the_page_passes_the_axe_scan_with_figures_and_empty(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    page = await on_the_range(new_page, live_server, pg_engine, "Ann")
    await expect(page.locator("#trend-chart")).to_be_visible()
    await page.locator("details").first.locator("summary").click()
    assert await axe_violations(page) == []

    await page.goto("/app/pipeline")  # the last 30 days: nothing
    await expect(page.locator(".presets a[aria-current]")).to_have_text("Last 30 days")
    await expect(page.get_by_text("No leads in this range yet.").first).to_be_visible()
    assert await axe_violations(page) == []


async def test_another_orgs_operator_sees_only_their_own_figures(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    await org_with_leads(live_server, pg_engine)
    page = await on_the_range(new_page, live_server, pg_engine, "Otto", leads=False)

    leads, _ = headline(page, "Leads")
    await expect(leads).to_have_text("0")
    await expect(page.get_by_text("No leads in this range yet.").first).to_be_visible()
    assert (await downloaded(page, "by_source"))[1:] == []
    answer = await page.request.get("/app/pipeline.csv?table=stages&from=2025-07-01&to=2025-07-10")
    assert answer.ok
    assert all(row[1] == "0" for row in list(csv.reader(io.StringIO(await answer.text())))[1:])


async def test_no_page_and_no_download_without_a_session(page: Page) -> None:
    for path in (RANGE, "/app/pipeline.csv?table=stages"):
        await page.goto(path)
        await expect(page).to_have_url(re.compile(r"/app/login\?next="))


async def test_a_backwards_range_is_refused_in_words(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    shop = await org_with_leads(live_server, pg_engine, leads=False)
    page = await signed_in(new_page, shop, "Ann")
    answer = await page.goto("/app/pipeline?from=2025-07-10&to=2025-07-01")
    assert answer is not None and answer.status == 422
    await expect(page.get_by_text("must be on or after from")).to_be_visible()


# -- Without a browser ------------------------------------------------------------------------


@pytest.fixture
def any_engine(any_db_url: str) -> Engine:
    return make_engine(any_db_url, pool_size=1)


def test_leads_count_on_their_local_day_on_both_databases(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        org, _ = create_org_row(session, name="Days", settings=OrgSettings())
        org_id = org.id
    write_leads(any_engine, org_id)
    start = datetime(2025, 6, 30, 23, 0, tzinfo=UTC)  # 1 July, 00:00 in London
    end = datetime(2025, 7, 11, 23, 0, tzinfo=UTC)
    with session_scope(any_engine, snapshot=True) as session:
        days = leads_by_day(session, org_id=org_id, start=start, end=end, timezone="Europe/London")
        utc_days = leads_by_day(session, org_id=org_id, start=None, end=None, timezone="UTC")
    any_engine.dispose()
    assert days == [
        LeadDay(day=date(2025, 7, 1), leads=1, converted=1),
        LeadDay(day=date(2025, 7, 3), leads=1, converted=0),
        LeadDay(day=date(2025, 7, 10), leads=1, converted=0),
        LeadDay(day=date(2025, 7, 11), leads=1, converted=0),
    ]
    assert [(d.day.isoformat(), d.leads) for d in utc_days] == [
        ("2025-06-21", 1),
        ("2025-06-25", 1),
        ("2025-06-30", 1),
        ("2025-07-03", 1),
        ("2025-07-10", 2),
    ]


def test_figures_read_as_people_say_them() -> None:
    assert [percent(0.3333), percent(0.5), percent(None)] == ["33.3%", "50%", "—"]
    assert [duration(4.25), duration(42), duration(200), duration(7500), duration(97200)] == [
        "4.2 s",
        "42 s",
        "3 min 20 s",
        "2 h 5 min",
        "1 d 3 h",
    ]
    assert money(123456, "usd") == "$1,234.56"
    assert money(1500, "jpy") == "1,500 JPY"
    assert money(250.0, "gbp", minor=False) == "£250"
    assert money(99, None) == "0.99"
    assert number(1234) == "1,234"
    assert cell(0.5) == "0.5"
    assert change(3, 2, show=number).text == "Up 1 from 2 (+50%)"
    assert change(2, 2, show=number).text == "Same as before"
    assert change(30.0, 600.0, show=duration, lower_is_better=True).tone == "better"
    assert change(1, None, show=number).text == "Nothing to compare with"


def test_a_long_range_is_drawn_by_week_then_by_month() -> None:
    zone = ZoneInfo("UTC")
    today = date(2026, 3, 31)
    days = [LeadDay(day=date(2026, 3, 2), leads=2, converted=1)]
    unit, periods = trend(days, Range(first=date(2025, 10, 1), last=today, zone=zone, today=today))
    assert unit == "week" and periods[0].first == date(2025, 9, 29)
    assert next(p for p in periods if p.leads).first == date(2026, 3, 2)
    unit, periods = trend(days, Range(first=None, last=today, zone=zone, today=today))
    assert unit == "day" and len(periods) == 30
    unit, periods = trend(days, Range(first=date(2023, 1, 1), last=today, zone=zone, today=today))
    assert unit == "month" and periods[-1].first == date(2026, 3, 1)
