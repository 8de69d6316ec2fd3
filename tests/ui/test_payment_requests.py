"""Payment requests in real Chromium: the owner asks a lead for $120.50 on the Lead page and
sees it listed, open, with its simulated link and due date, on the Lead page and on the
Customer page; a form sent twice makes one request; a bad amount is refused beside the field
and makes nothing; what the owner wrote renders as text; the page passes the accessibility
scan; another org's lead is 404.

The org is in Europe/London (dry run): a due date is due at 17:00 there.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.engine import Engine

from api.ui.render import local_time
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_bookings import ZONE, new_org, write_customer
from tests.ui.test_inbox import Shop, shop, signed_in

#: Recording a request waits for its workflow to make the link (up to 10 s): the page answers
#: within this on a busy test machine.
ACTION_MS = 20_000
#: A link made after the answer reaches the page through its live region within this.
WORKFLOW_MS = 20_000
SIMULATED_LINK = re.compile(r"^https://pay\.dry-run\.invalid/payreq_\w+$")


def due_date(days: int) -> date:
    """The day ``days`` from today in London."""
    return datetime.now(ZONE).date() + timedelta(days=days)


def due_at(day: date) -> datetime:
    """When a request due on ``day`` is due: 17:00 in London."""
    return datetime.combine(day, time(17), tzinfo=ZONE)


async def listed(customer: Shop) -> list[dict[str, Any]]:
    """The lead's payment requests, as the JSON API lists them."""
    async with httpx.AsyncClient(base_url=customer.base, timeout=10) as api:
        answer = await api.get(
            "/v1/payment-requests", params={"lead_id": customer.lead_id}, headers=customer.headers
        )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def fill_and_request(
    page: Page, *, amount: str, description: str, due: date | None = None
) -> None:
    """Fill the Lead page's "Request a payment" form and send it."""
    form = page.locator("#pay-form")
    await form.get_by_label("Amount").fill(amount)
    await form.get_by_label("What it is for").fill(description)
    if due is not None:
        await form.get_by_label("Due date").fill(due.isoformat())
    await form.get_by_role("button", name="Request the payment").click()


async def test_the_owner_requests_a_payment_and_sees_it_open_with_its_link_and_due_date(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await page.goto(f"/app/leads/{customer.lead_id}")
    await expect(page.get_by_text("No payment requests for this lead yet.")).to_be_visible()
    # No request or payment yet: the usual currency is unknown, so dollars.
    await expect(page.get_by_label("Currency")).to_have_value("usd")
    day = due_date(10)

    await fill_and_request(page, amount="120.50", description="Deep clean, 14 July", due=day)

    await expect(page).to_have_url(
        re.compile(rf"/app/leads/{customer.lead_id}\?done=payment_requested#payments-section$"),
        timeout=ACTION_MS,
    )
    await expect(page.locator("#payments-notice")).to_contain_text("Payment requested.")
    rows = page.locator("#payments tbody tr")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row.locator(".pay-amount")).to_have_text("$120.50")
    await expect(row.locator(".pay-for")).to_have_text("Deep clean, 14 July")
    await expect(row.locator(".pay-status")).to_have_text("Open")
    due = row.locator(".pay-due time")
    await expect(due).to_have_text(local_time(due_at(day), ZONE))
    expected_iso = due_at(day).astimezone(UTC).isoformat().replace("+00:00", "Z")
    await expect(due).to_have_attribute("datetime", expected_iso)
    link = row.locator("a.pay-url")
    await expect(link).to_have_text(SIMULATED_LINK, timeout=WORKFLOW_MS)
    url = await link.inner_text()
    await expect(link).to_have_attribute("href", url)
    await expect(row.locator(".pay-simulated")).to_contain_text("simulated (dry run)")
    assert await axe_violations(page) == []

    (made,) = await listed(customer)
    assert (made["amount"], made["currency"], made["status"], made["url"]) == (
        12_050,
        "usd",
        "open",
        url,
    )
    assert datetime.fromisoformat(made["due_at"]) == due_at(day)

    # The Customer page lists it too, with its lead.
    await (
        page.get_by_role("navigation", name="Breadcrumb")
        .get_by_role("link", name="Grace Hopper")
        .click()
    )
    await expect(page.locator("#customer-name")).to_have_text("Grace Hopper")
    theirs = page.locator(f"#payments tr[data-payment-request='{made['payment_request_id']}']")
    await expect(theirs.locator(".pay-amount")).to_have_text("$120.50")
    await expect(theirs.locator(".pay-status")).to_have_text("Open")
    await expect(theirs.locator(".pay-due")).to_have_text(local_time(due_at(day), ZONE))
    await expect(theirs.locator("a.pay-url")).to_have_text(url)
    await expect(theirs.get_by_role("link", name=re.compile("^From "))).to_have_attribute(
        "href", f"/app/leads/{customer.lead_id}"
    )
    # Read only there: no form asks for a payment.
    await expect(page.get_by_role("button", name="Request the payment")).to_have_count(0)
    assert await axe_violations(page) == []


async def test_a_payment_form_sent_twice_makes_one_request(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await page.goto(f"/app/leads/{customer.lead_id}")
    form = page.locator("#pay-form")
    sent: dict[str, str | float | bool] = {
        name: await form.locator(f"input[name={name}]").get_attribute("value") or ""
        for name in ("csrf_token", "event_id")
    }
    sent |= {"amount": "45", "currency": "gbp", "description": "Oven clean", "due_on": ""}
    path = f"/app/leads/{customer.lead_id}/payment-requests"
    origin = {"Origin": live_server}

    today = due_date(7)
    first = await page.request.post(path, form=sent, headers=origin, timeout=ACTION_MS)
    again = await page.request.post(path, form=sent, headers=origin, timeout=ACTION_MS)
    then = due_date(7)  # London's midnight may fall between

    assert (first.status, again.status) == (200, 200)
    assert "?done=payment_requested" in first.url, first.url
    assert "?done=payment_again" in again.url, again.url
    assert "That form was already sent" in await again.text()
    (made,) = await listed(customer)
    assert (made["amount"], made["currency"]) == (4_500, "gbp")
    # Due a week from today, at 17:00 in London.
    assert datetime.fromisoformat(made["due_at"]) in {due_at(today), due_at(then)}
    await page.reload()
    await expect(page.locator("#payments tbody tr")).to_have_count(1)
    await expect(page.locator("#payments .pay-amount")).to_have_text("£45.00")
    # The org now usually asks in pounds: a new form starts there.
    await expect(page.get_by_label("Currency")).to_have_value("gbp")

    # Another org's lead: 404, nothing made there.
    other = await new_org(live_server)
    theirs = await asyncio.to_thread(write_customer, pg_engine, other.org_id)
    foreign = await page.request.post(
        f"/app/leads/{theirs.lead_id}/payment-requests",
        form={**sent, "event_id": "another-form"},
        headers=origin,
    )
    assert foreign.status == 404
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        none = await api.get("/v1/payment-requests", headers=other.headers)
    assert none.json()["items"] == []


async def test_a_bad_amount_is_refused_by_the_field_and_makes_nothing(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await page.goto(f"/app/leads/{customer.lead_id}")
    amount = page.locator("#pay-form").get_by_label("Amount")

    for typed, says in (
        ("12,50x", "Give the amount as a number only, like 120.50."),
        ("0", "The amount must be more than zero."),
    ):
        await fill_and_request(page, amount=typed, description="Window clean")
        await expect(page.locator("#pay-amount-error")).to_have_text(says)
        await expect(page.locator("#pay-error")).to_contain_text("No request was made")
        await expect(amount).to_have_attribute("aria-invalid", "true")
        await expect(amount).to_have_attribute("aria-describedby", "pay-amount-error")
        # The form comes back as it was sent, the amount to correct focused.
        await expect(amount).to_have_value(typed)
        await expect(amount).to_be_focused()
        await expect(page.get_by_label("What it is for")).to_have_value("Window clean")
        await expect(page.get_by_text("No payment requests for this lead yet.")).to_be_visible()
    assert await listed(customer) == []

    # Corrected, the same form makes the request.
    await fill_and_request(page, amount="12.50", description="Window clean")
    await expect(page.locator("#payments-notice")).to_contain_text(
        "Payment requested.", timeout=ACTION_MS
    )
    await expect(page.locator("#payments .pay-amount")).to_have_text("$12.50")
    assert [r["amount"] for r in await listed(customer)] == [1_250]


async def test_what_the_owner_wrote_renders_as_text(new_page: NewPage, live_server: str) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Olive", role="owner")
    await page.goto(f"/app/leads/{customer.lead_id}")
    description = "<script>window.pwned = 1</script><b>Oven</b> clean"

    await fill_and_request(page, amount="80", description=description)

    cell = page.locator("#payments .pay-for")
    await expect(cell).to_have_text(description, timeout=ACTION_MS)
    main = page.locator("main")
    assert await main.locator("script, b").count() == 0
    await (
        page.get_by_role("navigation", name="Breadcrumb")
        .get_by_role("link", name="Grace Hopper")
        .click()
    )
    await expect(page.locator("#payments .pay-for")).to_have_text(description)
    assert await page.locator("main").locator("script, b").count() == 0
    assert await page.evaluate("window.pwned") is None
