"""Visits and providers in real Chromium: the owner books a visit from the Lead page, moves it
(the reminders follow the new time) and cancels it through the confirm; the Providers page
flags the provider who started arriving late, and their page lists the late visits; what a
customer wrote renders as text; the pages pass the accessibility scan; another org's booking
or provider is 404.

The org is in Europe/London, and the page reads and shows every time on that clock.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.engine import Engine

from api.ui.render import local_time
from models.database import session_scope
from models.tables import Booking, Contact, Lead
from models.values import Stage, new_id
from tests.conftest import create_org
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, shop, signed_in

ZONE = ZoneInfo("Europe/London")
#: What the Appointment workflow does (confirm, plan reminders) shows within this.
WORKFLOW_MS = 20_000
#: A page's action that writes and then starts or tells a workflow answers within this (the
#: test machine is shared: a busy Temporal dev server can be slower than the default wait).
ACTION_MS = 10_000
#: The form's ``datetime-local`` value.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def days_ahead(days: int, hour: int) -> datetime:
    """``hour`` o'clock in London, ``days`` days from today there."""
    day = datetime.now(ZONE).date() + timedelta(days=days)
    return datetime.combine(day, time(hour), tzinfo=ZONE)


async def add_provider(shop: Shop, name: str) -> str:
    async with httpx.AsyncClient(base_url=shop.base, timeout=10) as api:
        made = await api.post("/v1/providers", json={"name": name}, headers=shop.headers)
    assert made.status_code == 201, made.text
    provider_id: str = made.json()["id"]
    return provider_id


async def book_from_the_lead_page(
    page: Page, lead_id: str, starts: datetime, *, service: str, provider: str, note: str
) -> str:
    """Fill and send the Lead page's "Book a visit" form; the booking's id."""
    await page.goto(f"/app/leads/{lead_id}")
    await expect(page.get_by_text("No visits booked for this lead yet.")).to_be_visible()
    await page.get_by_label("Date and time").fill(starts.strftime(LOCAL_INPUT))
    await page.get_by_label("Service").fill(service)
    await page.get_by_label("Provider").select_option(label=provider)
    await page.get_by_label("Note").fill(note)
    await page.get_by_role("button", name="Book the visit").click()
    await expect(page).to_have_url(
        re.compile(r"/app/bookings/bk_\w+\?done=booked$"), timeout=ACTION_MS
    )
    match = re.search(r"/app/bookings/(bk_\w+)", page.url)
    assert match is not None
    return match.group(1)


async def reminder_times(page: Page) -> list[str]:
    return await page.locator("#reminders tbody .reminder-at").all_inner_texts()


async def test_the_owner_books_moves_and_cancels_a_visit_from_the_lead_page(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    await add_provider(customer, "Sam Spade")
    page = await signed_in(new_page, customer, "Olive", role="owner")
    starts = days_ahead(3, 10)

    booking_id = await book_from_the_lead_page(
        page, customer.lead_id, starts, service="deep clean", provider="Sam Spade", note="Cat"
    )

    await expect(page.locator("#booking-notice")).to_contain_text("Booked.")
    await expect(page.locator("#booking-status")).to_have_text("Scheduled")
    await expect(page.locator("#booking-when")).to_contain_text(local_time(starts, ZONE))
    await expect(page.locator("#booking-provider")).to_have_text("Sam Spade")
    await expect(page.locator("#booking-service")).to_have_text("deep clean")
    timeline = page.locator("#booking-timeline")
    await expect(timeline).to_contain_text("Confirmation sent by sms", timeout=WORKFLOW_MS)
    rows = page.locator("#reminders tbody tr")
    await expect(rows).to_have_count(2, timeout=WORKFLOW_MS)
    await expect(rows.nth(0)).to_contain_text("1 day before")
    await expect(rows.nth(1)).to_contain_text("2 h before")
    for row in (rows.nth(0), rows.nth(1)):
        await expect(row).to_contain_text("Pending")
    expected = [
        local_time(starts - timedelta(days=1), ZONE),
        local_time(starts - timedelta(hours=2), ZONE),
    ]
    assert await reminder_times(page) == expected
    # The oldest line first: the booking, then what the workflow did with it.
    await expect(timeline.locator("li").first).to_contain_text("Booked deep clean for")
    assert await axe_violations(page) == []

    # The lead's page lists the visit, linked to its page.
    await page.goto(f"/app/leads/{customer.lead_id}")
    visit = page.locator(f"#visits tr[data-booking='{booking_id}']")
    await expect(visit).to_contain_text(local_time(starts, ZONE))
    await expect(visit).to_contain_text("deep clean")
    await expect(visit).to_contain_text("Sam Spade")
    await expect(visit).to_contain_text("Scheduled")
    assert await axe_violations(page) == []
    await visit.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(rf"/app/bookings/{booking_id}$"))

    # Moved to another day: the reminders follow the new time, the timeline says so.
    moved = days_ahead(5, 15)
    await page.get_by_label("New date and time").fill(moved.strftime(LOCAL_INPUT))
    await page.get_by_role("button", name="Move the visit").click()
    await expect(page.locator("#booking-notice")).to_contain_text("Moved.", timeout=ACTION_MS)
    await expect(page.locator("#booking-when")).to_contain_text(local_time(moved, ZONE))
    await expect(timeline).to_contain_text(
        f"Moved from {starts:%a %d %b %H:%M} (Europe/London) "
        f"to {moved:%a %d %b %H:%M} (Europe/London)"
    )
    new_times = [
        local_time(moved - timedelta(days=1), ZONE),
        local_time(moved - timedelta(hours=2), ZONE),
    ]
    at = page.locator("#reminders tbody .reminder-at")
    await expect(at).to_have_text(new_times, timeout=WORKFLOW_MS)
    await expect(timeline).to_contain_text("told of the new time", timeout=WORKFLOW_MS)

    # The provider's news from the day.
    await page.get_by_role("button", name="On my way").click()
    await expect(page.locator("#booking-notice")).to_contain_text(
        "Recorded: on the way.", timeout=ACTION_MS
    )
    await expect(page.locator("#visit-news")).to_contain_text("✓ On my way")
    await expect(page.get_by_role("button", name="On my way")).to_have_count(0)
    await expect(timeline).to_contain_text("provider is on the way", timeout=WORKFLOW_MS)

    # Cancelled through the confirm.
    await page.get_by_role("button", name="Cancel the visit…").click()
    dialog = page.get_by_role("dialog", name="Cancel this visit?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Reason").fill("Customer is away")
    await dialog.get_by_role("button", name="Cancel the visit", exact=True).click()
    await expect(page.locator("#booking-notice")).to_contain_text("Cancelled.", timeout=ACTION_MS)
    await expect(page.locator("#booking-status")).to_have_text("Cancelled")
    await expect(timeline).to_contain_text("Cancelled: Customer is away")
    await expect(page.get_by_role("button", name="Move the visit")).to_have_count(0)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        shown = await api.get(f"/v1/bookings/{booking_id}", headers=customer.headers)
    assert (shown.json()["status"], shown.json()["version"]) == ("cancelled", 2)


async def test_keep_the_visit_in_the_confirm_cancels_nothing(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    await add_provider(customer, "Sam Spade")
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await book_from_the_lead_page(
        page,
        customer.lead_id,
        days_ahead(2, 9),
        service="window clean",
        provider="Sam Spade",
        note="",
    )

    await page.get_by_role("button", name="Cancel the visit…").click()
    dialog = page.get_by_role("dialog", name="Cancel this visit?")
    await dialog.get_by_role("button", name="Keep the visit").click()

    await expect(dialog).to_be_hidden()
    await expect(page.locator("#booking-status")).to_have_text("Scheduled")


async def test_a_booking_form_sent_twice_books_once_and_a_past_time_is_refused(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await page.goto(f"/app/leads/{customer.lead_id}")
    form = page.locator("#book-form")
    fields: dict[str, str | float | bool] = {
        name: await form.locator(f"input[name={name}]").get_attribute("value") or ""
        for name in ("csrf_token", "event_id")
    }
    path = f"/app/leads/{customer.lead_id}/bookings"
    origin = {"Origin": live_server}

    past = await page.request.post(
        path,
        form={**fields, "starts_at": days_ahead(-1, 9).strftime(LOCAL_INPUT), "service": "oven"},
        headers=origin,
    )
    sent: dict[str, str | float | bool] = {
        **fields,
        "starts_at": days_ahead(6, 9).strftime(LOCAL_INPUT),
        "service": "oven",
    }
    first = await page.request.post(path, form=sent, headers=origin)
    again = await page.request.post(path, form=sent, headers=origin)

    assert past.status == 422
    assert "has passed; choose a time ahead" in await past.text()
    assert (first.status, again.status) == (200, 200)
    assert re.search(r"/app/bookings/bk_\w+\?done=booked$", first.url), first.url
    assert again.url == first.url
    await page.reload()
    await expect(page.locator("#visits tbody tr")).to_have_count(1)


# -- Providers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """A contact and lead written straight into the database (bookings hang on them)."""

    org_id: str
    contact_id: str
    lead_id: str


def write_customer(engine: Engine, org_id: str) -> Customer:
    contact = Contact(id=new_id("ct"), org_id=org_id, name="Past Customer")
    lead = Lead(
        id=new_id("lead"),
        org_id=org_id,
        contact_id=contact.id,
        workflow_id=f"lead-{uuid.uuid4().hex}",
        stage=Stage.CONVERTED,
    )
    with session_scope(engine) as session:
        session.add(contact)
        session.flush()
        session.add(lead)
    return Customer(org_id, contact.id, lead.id)


def write_visit(
    engine: Engine,
    customer: Customer,
    provider_id: str,
    starts_at: datetime,
    *,
    late_by: timedelta,
    service: str = "deep clean",
) -> str:
    """A completed visit the provider arrived ``late_by`` after its start; its id."""
    booking = Booking(
        id=new_id("bk"),
        org_id=customer.org_id,
        lead_id=customer.lead_id,
        contact_id=customer.contact_id,
        receipt_id=new_id("rc"),
        workflow_id=f"appointment-{uuid.uuid4().hex}",
        provider_id=provider_id,
        starts_at=starts_at,
        status="completed",
        arrived_at=starts_at + late_by,
        completed_at=starts_at + timedelta(hours=2),
        service=service,
    )
    with session_scope(engine) as session:
        session.add(booking)
    return booking.id


async def new_org(live_server: str) -> Shop:
    """An org in Europe/London, made through the JSON API, with no leads."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        org_id, headers = await create_org(api, name="Shine", timezone="Europe/London")
    return Shop(live_server, org_id, headers, "", "", "")


async def owners_org(live_server: str, new_page: NewPage) -> tuple[Shop, Page]:
    """A new org and its owner, signed in."""
    owner = await new_org(live_server)
    return owner, await signed_in(new_page, owner, "Olive", role="owner")


def history_and_recent_week(
    engine: Engine, customer: Customer, sam: str, ana: str, now: datetime
) -> list[str]:
    """Both punctual for 30 weeks before the last 30 days; then in the last week Sam is late
    to 4 of 6 visits and Ana to 1 of 6. Sam's late visits' ids."""
    on_time, late = timedelta(minutes=2), timedelta(minutes=35)
    for week in range(5, 35):
        for provider in (sam, ana):
            write_visit(engine, customer, provider, now - timedelta(weeks=week), late_by=on_time)
    start = now - timedelta(days=7)
    sams_late = []
    for day in range(6):
        when = start + timedelta(days=day, hours=2)
        booking_id = write_visit(engine, customer, sam, when, late_by=late if day % 3 else on_time)
        if day % 3:
            sams_late.append(booking_id)
        write_visit(engine, customer, ana, when, late_by=late if day == 2 else on_time)
    return sams_late


async def test_the_providers_page_flags_the_provider_who_started_arriving_late(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    owner, page = await owners_org(live_server, new_page)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Providers").click()
    await expect(page.get_by_text("No providers yet.")).to_be_visible()
    for name in ("Sam", "Ana"):
        await page.get_by_label("Name").fill(name)
        await page.get_by_role("button", name="Add provider").click()
        await expect(page.locator("#providers-notice")).to_have_text(f"{name} is added.")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        listed = (await api.get("/v1/providers", headers=owner.headers)).json()["items"]
    ids = {p["name"]: p["id"] for p in listed}
    customer = await asyncio.to_thread(write_customer, pg_engine, owner.org_id)
    now = datetime.now(UTC).replace(microsecond=0)
    late_ids = await asyncio.to_thread(
        history_and_recent_week, pg_engine, customer, ids["Sam"], ids["Ana"], now
    )

    await page.reload()
    sam = page.locator(f"#providers tr[data-provider='{ids['Sam']}']")
    ana = page.locator(f"#providers tr[data-provider='{ids['Ana']}']")
    flag = re.compile(r"⚠ Late to 4 of 6 visits \(67%; usually \d+%\)")
    await expect(sam.locator(".flags-cell")).to_have_text(flag)
    await expect(ana.locator(".flags-cell")).to_have_text("None")
    # Visits, attended, on time, lateness (2 and 2, 35 four times: 24 min), rating, complaints.
    assert await sam.locator("td.num").all_inner_texts() == [
        "6",
        "100%",
        "33.3%",
        "24 min",
        "—",
        "0%",
    ]
    assert (await ana.locator("td.num").all_inner_texts())[:3] == ["6", "100%", "83.3%"]
    flagged = page.locator("#flagged")
    await expect(flagged).to_contain_text("Sam")
    await expect(flagged).not_to_contain_text("Ana")
    await expect(flagged.locator("li")).to_have_count(1)
    assert await axe_violations(page) == []

    await flagged.get_by_role("link", name=flag).click()
    await expect(page).to_have_url(re.compile(rf"/app/providers/{ids['Sam']}\?from=.*&to="))
    await expect(page.locator("#provider-name")).to_have_text("Sam")
    flag_box = page.locator("#flags article[data-flag='late']")
    await expect(flag_box.locator("h3")).to_have_text(flag)
    links = flag_box.locator(".flag-visits a")
    await expect(links).to_have_count(4)
    hrefs = [await links.nth(i).get_attribute("href") for i in range(4)]
    assert hrefs == [f"/app/bookings/{booking_id}" for booking_id in late_ids]
    await expect(flag_box).to_contain_text("35 min late")
    recent = page.locator("#recent tbody tr")
    await expect(recent).to_have_count(6)
    await expect(page.locator("#recent tr.flagged")).to_have_count(4)
    await expect(page.get_by_text("No upcoming visits.")).to_be_visible()
    assert await axe_violations(page) == []

    # A late visit's page, from the flag.
    await links.first.click()
    await expect(page.locator("#booking-status")).to_have_text("Completed")
    await expect(page.locator("#visit-news")).to_contain_text("✓ Arrived")


async def test_an_operator_sees_the_providers_but_only_the_owner_adds_one(
    new_page: NewPage, live_server: str
) -> None:
    owner, _ = await owners_org(live_server, new_page)
    ben = await signed_in(new_page, owner, "Ben")
    await ben.goto("/app/providers")
    await expect(ben.get_by_text("The owner adds them.")).to_be_visible()
    await expect(ben.get_by_role("button", name="Add provider")).to_have_count(0)
    token = await ben.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = await ben.request.post(
        "/app/providers",
        form={"csrf_token": token or "", "name": "Sneaky"},
        headers={"Origin": live_server},
    )
    assert refused.status == 403


async def test_what_a_customer_wrote_renders_as_text(new_page: NewPage, live_server: str) -> None:
    customer = await shop(live_server, name="<b>Mallory</b>")
    await add_provider(customer, "<i>Bo</i>")
    page = await signed_in(new_page, customer, "Olive", role="owner")
    service = "<script>window.pwned = 1</script>clean"
    note = "<img src=x onerror='window.pwned = 2'>"

    await book_from_the_lead_page(
        page, customer.lead_id, days_ahead(4, 11), service=service, provider="<i>Bo</i>", note=note
    )

    await expect(page.locator("#booking-service")).to_have_text(service)
    await expect(page.locator("#booking-note")).to_have_text(note)
    await expect(page.locator("#booking-provider")).to_have_text("<i>Bo</i>")
    await expect(page.locator("#booking-title")).to_have_text(f"{service} for <b>Mallory</b>")
    main = page.locator("main")
    assert await main.locator("script, img, b, i").count() == 0
    await page.goto(f"/app/leads/{customer.lead_id}")
    await expect(page.locator("#visits")).to_contain_text(service)
    await page.goto("/app/providers")
    await expect(page.locator("#providers")).to_contain_text("<i>Bo</i>")
    assert await page.locator("main").locator("script, img, b, i").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_another_orgs_booking_or_provider_is_404(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    theirs = await new_org(live_server)
    their_provider = await add_provider(theirs, "Sam")
    their_customer = await asyncio.to_thread(write_customer, pg_engine, theirs.org_id)
    their_booking = await asyncio.to_thread(
        write_visit,
        pg_engine,
        their_customer,
        their_provider,
        datetime.now(UTC) - timedelta(days=1),
        late_by=timedelta(0),
    )
    _, page = await owners_org(live_server, new_page)

    for path in (
        f"/app/bookings/{their_booking}",
        f"/app/bookings/{their_booking}/view",
        f"/app/providers/{their_provider}",
        "/app/bookings/bk_nobody",
        "/app/providers/prov_nobody",
    ):
        shown = await page.goto(path)
        assert shown is not None and shown.status == 404, path
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    htmx = {"HX-Request": "true", "Origin": live_server}
    posts: tuple[tuple[str, dict[str, str | float | bool]], ...] = (
        (f"/app/bookings/{their_booking}/move", {"starts_at": "2030-01-01T10:00"}),
        (f"/app/bookings/{their_booking}/cancel", {}),
        (f"/app/bookings/{their_booking}/events", {"kind": "arrived"}),
    )
    for path, form in posts:
        answer = await page.request.post(path, headers=htmx, form=form)
        assert answer.status == 404, path
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        kept = await api.get(f"/v1/bookings/{their_booking}", headers=theirs.headers)
    assert kept.json()["status"] == "completed"
