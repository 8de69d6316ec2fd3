"""The owner's Settings pages in real Chromium: an operator can't open them; the owner changes
quiet hours and finds the change, with their name, in the audit list; an invalid value is
shown beside its field and nothing is saved; going live (and back) asks first, names the
effect, and a cancel changes nothing. Every settings page passes the axe scan.

The session's live server runs a dry-run deployment, where live is refused; the live switch
is tested on a second server of this module's own, on the same database, whose deployment
runs live (it needs no worker: a settings change starts no workflow).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from models.settings import Settings
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.ui.conftest import TIMEOUT_MS, NewPage, axe_violations, uvicorn_serving
from tests.ui.test_inbox import accept_invite, shop, signed_in

EN_DASH = "\N{EN DASH}"


async def test_an_operator_cannot_open_settings(new_page: NewPage, live_server: str) -> None:
    shine = await shop(live_server)
    operator = await signed_in(new_page, shine, "Oscar")
    main_nav = operator.get_by_role("navigation", name="Main")
    await expect(main_nav.get_by_role("link", name="Team")).to_be_visible()
    await expect(main_nav.get_by_role("link", name="Settings")).to_have_count(0)

    for path in ("/app/settings", "/app/settings/quiet-hours", "/app/settings/provider-mode"):
        response = await operator.goto(path)
        assert response is not None and response.status == 403, path
        await expect(operator.get_by_role("heading", name="Not allowed")).to_be_visible()
        await expect(operator.get_by_text("Only the owner can see and change")).to_be_visible()
    assert await axe_violations(operator) == []


async def test_the_owner_changes_quiet_hours_and_finds_it_in_the_changes(
    new_page: NewPage, live_server: str
) -> None:
    shine = await shop(live_server)  # quiet hours off: every channel any time
    owner = await signed_in(new_page, shine, "Olivia", role="owner")
    await owner.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    await expect(owner.get_by_role("heading", name="General")).to_be_visible()
    assert await axe_violations(owner) == []

    await (
        owner.get_by_role("navigation", name="Settings")
        .get_by_role("link", name="Quiet hours")
        .click()
    )
    sms = owner.get_by_role("group", name="SMS")
    await expect(sms.get_by_role("radio", name="Any time")).to_be_checked()
    assert await axe_violations(owner) == []
    await sms.get_by_role("radio", name="Only between").check()
    await sms.get_by_label("From").fill("09:00")
    await sms.get_by_label("Until").fill("20:00")
    await owner.get_by_label("Weekdays only").check()
    await owner.get_by_role("button", name="Save quiet hours").click()

    said = f"Quiet hours SMS: any time → 09:00{EN_DASH}20:00; Quiet hours weekdays only: no → yes"
    await expect(owner.locator("p.notice")).to_have_text(f"Saved: {said}.")
    await expect(sms.get_by_role("radio", name="Only between")).to_be_checked()
    await expect(sms.get_by_label("From")).to_have_value("09:00")
    async with httpx.AsyncClient(base_url=live_server) as api:
        hours = (await api.get("/v1/orgs/me", headers=shine.headers)).json()["quiet_hours"]
    assert hours["sms"] == ["09:00", "20:00"] and hours["weekdays_only"] is True

    await (
        owner.get_by_role("navigation", name="Settings").get_by_role("link", name="Changes").click()
    )
    row = owner.get_by_role("row").filter(has_text="Quiet hours SMS")
    await expect(row).to_have_count(1)
    await expect(row.get_by_role("rowheader")).to_have_text("Olivia")
    await expect(row.get_by_role("cell").nth(1)).to_have_text("Quiet hours")
    await expect(row.get_by_role("cell").nth(2)).to_have_text(said)
    stamp = await row.locator("time").get_attribute("datetime")
    assert stamp and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", stamp)
    assert await axe_violations(owner) == []


async def test_an_invalid_value_is_shown_beside_its_field_and_nothing_is_saved(
    new_page: NewPage, live_server: str
) -> None:
    shine = await shop(live_server)
    owner = await signed_in(new_page, shine, "Olivia", role="owner")
    await owner.goto("/app/settings")
    timezone = owner.get_by_label("Timezone")
    await expect(timezone).to_have_value("Europe/London")
    await timezone.fill("Mars/Olympus")
    await owner.get_by_label("Reply to HELP").fill("Shine: call 020 7946 0000")
    texts = owner.get_by_label("Texts a second, per number")
    await texts.fill("0")
    await owner.get_by_role("button", name="Save settings").click()

    await expect(owner.get_by_role("alert")).to_contain_text("Nothing was saved")
    await expect(timezone).to_have_attribute("aria-invalid", "true")
    await expect(timezone).to_have_accessible_description(
        "unknown timezone 'Mars/Olympus'; use an IANA name like Europe/London"
    )
    await expect(timezone).to_have_value("Mars/Olympus")  # what was typed, to fix
    await expect(texts).to_have_attribute("aria-invalid", "true")
    await expect(texts).to_have_accessible_description(re.compile("greater than or equal to 0.001"))
    assert await axe_violations(owner) == []

    await owner.goto("/app/settings")
    await expect(timezone).to_have_value("Europe/London")
    await expect(owner.get_by_label("Reply to HELP")).to_have_value("")
    await expect(texts).to_have_value("")  # unpaced
    await owner.goto("/app/settings/changes")
    await expect(owner.get_by_text("No changes yet.")).to_be_visible()
    assert await axe_violations(owner) == []

    # Fixed, the number's pace is saved and said in the changes.
    await owner.goto("/app/settings")
    await texts.fill("1")
    await owner.get_by_role("button", name="Save settings").click()
    await expect(owner.locator("p.notice")).to_contain_text("SMS sends a second: unpaced → 1")
    async with httpx.AsyncClient(base_url=live_server) as api:
        pacing = (await api.get("/v1/orgs/me", headers=shine.headers)).json()["pacing"]
    assert pacing == {"sms": 1, "whatsapp": None, "email": None, "calls": None}


async def test_live_is_unavailable_on_a_dry_run_deployment_and_the_page_says_why(
    new_page: NewPage, live_server: str
) -> None:
    shine = await shop(live_server)
    owner = await signed_in(new_page, shine, "Olivia", role="owner")
    await owner.goto("/app/settings/provider-mode")

    await expect(owner.get_by_role("heading", name="This org is in dry run")).to_be_visible()
    unavailable = owner.get_by_role("article", name="Live is unavailable on this deployment")
    await expect(unavailable).to_contain_text("KEEPWARM_PROVIDER_MODE=live")
    await expect(owner.get_by_role("button", name=re.compile("Switch to live"))).to_have_count(0)
    assert await axe_violations(owner) == []


# --- a deployment that runs live ----------------------------------------------------------


@pytest.fixture(scope="module")
async def live_deployment(stack_settings: Settings) -> AsyncIterator[str]:
    """The app under uvicorn with ``KEEPWARM_PROVIDER_MODE=live`` (no worker, no provider
    credentials: switching an org's mode sends nothing); its base URL."""
    settings = make_settings(
        database_url=stack_settings.database_url,
        temporal_address=stack_settings.temporal_address,
        provider_mode="live",
    )
    async with uvicorn_serving(settings) as url:
        yield url


async def _owner_on(browser: Browser, base: str) -> tuple[Page, dict[str, str]]:
    """A new org on ``base`` and its owner Olivia, signed in there; the org's API headers."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        org = await api.post(
            "/v1/orgs",
            json={"name": "Shine", "timezone": "Europe/London"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert org.status_code == 201, org.text
        headers = {"Authorization": f"Bearer {org.json()['api_key']}"}
        created = await api.post(
            "/v1/operators",
            json={
                "name": "Olivia",
                "email": f"olivia-{uuid.uuid4().hex[:6]}@shine.example",
                "role": "owner",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        patched = await api.patch(
            "/v1/orgs/me",
            json={"sms_from": "+447911123456", "email_from": "Shine <hi@shine.example>"},
            headers=headers,
        )
        assert patched.status_code == 200, patched.text
    context = await browser.new_context(base_url=base, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await accept_invite(page, urlsplit(created.json()["invite_url"]).path)
    return page, headers


async def _mode(base: str, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=base) as api:
        mode: str = (await api.get("/v1/orgs/me", headers=headers)).json()["provider_mode"]
    return mode


async def test_switching_to_live_and_back_asks_first_and_is_recorded(
    browser: Browser, live_deployment: str
) -> None:
    owner, headers = await _owner_on(browser, live_deployment)
    try:
        await owner.goto("/app/settings/provider-mode")
        await expect(owner.get_by_role("heading", name="This org is in dry run")).to_be_visible()
        assert await axe_violations(owner) == []

        await owner.get_by_role("button", name="Switch to live…").click()
        dialog = owner.get_by_role("dialog", name="Switch to live?")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("emails and calls will go to real customers")
        await expect(dialog).to_contain_text("Twilio, Resend and Vapi charge you for every one")
        await expect(dialog).to_contain_text("Texts: +447911123456")
        assert await axe_violations(owner) == []
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_be_hidden()
        await expect(owner.get_by_role("heading", name="This org is in dry run")).to_be_visible()
        assert await _mode(live_deployment, headers) == "dry_run"

        await owner.get_by_role("button", name="Switch to live…").click()
        await dialog.get_by_role("button", name="Switch to live").click()
        await expect(owner.get_by_role("heading", name="This org is live")).to_be_visible()
        await expect(owner.locator("p.notice")).to_contain_text("real messages and calls now go")
        assert await _mode(live_deployment, headers) == "live"
        assert await axe_violations(owner) == []

        await owner.get_by_role("button", name="Switch to dry run…").click()
        back = owner.get_by_role("dialog", name="Switch to dry run?")
        await expect(back).to_contain_text("nothing reaches customers")
        await back.get_by_role("button", name="Cancel").click()
        await expect(back).to_be_hidden()
        assert await _mode(live_deployment, headers) == "live"
        await owner.get_by_role("button", name="Switch to dry run…").click()
        await back.get_by_role("button", name="Switch to dry run").click()
        await expect(owner.get_by_role("heading", name="This org is in dry run")).to_be_visible()
        assert await _mode(live_deployment, headers) == "dry_run"

        await owner.goto("/app/settings/changes")
        rows = owner.locator("table.changes-table tbody tr")
        # Newest first: back to dry run, then live, then the senders set with the API key;
        # the two cancels recorded nothing.
        await expect(rows.nth(0)).to_contain_text("Provider mode: live → dry run")
        await expect(rows.nth(1)).to_contain_text("Provider mode: dry run → live")
        await expect(rows.nth(1).get_by_role("rowheader")).to_have_text("Olivia")
        await expect(rows.nth(2).get_by_role("rowheader")).to_have_text("API key")
        await expect(rows).to_have_count(3)
        assert await axe_violations(owner) == []
    finally:
        await owner.context.close()
