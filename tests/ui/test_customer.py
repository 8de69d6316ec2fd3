"""The Customer page in real Chromium: one person's identities with where they came from,
their leads, timeline and consent; two contacts an identity conflict says are one person,
merged on confirm (and not on Cancel); another org's contact is 404 everywhere.

Each test has an org of its own, made through the JSON API of the same live server.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.api.test_identity import lead_when_recorded, post
from tests.conftest import eventually
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, shop, signed_in


@dataclass(frozen=True)
class Conflict:
    """Ada Lovelace (by email) and Ada Byron (by phone), then a submission naming both."""

    shop: Shop
    email: str
    keep_id: str
    keep_lead: str
    other_id: str
    other_lead: str


async def contact_of(api: httpx.AsyncClient, shop: Shop, lead_id: str) -> str:
    lead = await lead_when_recorded(api, shop.headers, lead_id)
    contact_id: str = lead["contact"]["id"]
    return contact_id


async def conflict(live_server: str) -> Conflict:
    byron = await shop(live_server, name="Ada Byron")
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        lovelace = await post(
            api, byron.headers, name="Ada Lovelace", email=email, source="website_form"
        )
        keep_id = await contact_of(api, byron, lovelace["lead_id"])
        other_id = await contact_of(api, byron, byron.lead_id)
        await post(api, byron.headers, email=email, phone=byron.phone, source="cart")

        async def flagged() -> list[dict[str, Any]]:
            listed = await api.get("/v1/attention", headers=byron.headers)
            return [i for i in listed.json()["items"] if i["reason"] == "identity_conflict"]

        await eventually(flagged, within=15, every=0.1)
    return Conflict(byron, email, keep_id, lovelace["lead_id"], other_id, byron.lead_id)


async def open_customer(page: Page, contact_id: str) -> None:
    await page.goto(f"/app/contacts/{contact_id}")
    await expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
    await expect(page.locator("#duplicates")).to_contain_text("Ada Byron")


async def test_two_contacts_of_one_person_are_merged_on_confirm(
    new_page: NewPage, live_server: str
) -> None:
    ada = await conflict(live_server)
    page = await signed_in(new_page, ada.shop, "Ann")
    await open_customer(page, ada.keep_id)
    identities = page.locator("#identities")
    await expect(identities).to_contain_text(ada.email)
    await expect(identities).to_contain_text("Submission from website_form")
    await expect(identities).not_to_contain_text(ada.shop.phone)
    await expect(page.locator(f"#leads tr[data-lead='{ada.keep_lead}']")).to_be_visible()
    await expect(page.locator("#timeline")).to_contain_text("Lead received from website_form")
    assert await axe_violations(page) == []

    await page.get_by_role("button", name=re.compile(r"^Merge Ada Byron into Ada Lovelace")).click()
    dialog = page.get_by_role("dialog", name="Merge contacts")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(
        "Merge Ada Byron into Ada Lovelace? Their identities, leads and messages move here. "
        "This can't be undone."
    )
    await dialog.get_by_role("button", name="Merge", exact=True).click()

    await expect(page).to_have_url(re.compile(rf"/app/contacts/{ada.keep_id}\?merged="))
    await expect(page.locator("main > .notice")).to_contain_text(
        f"Contact {ada.other_id} was merged into this one"
    )
    await expect(identities).to_contain_text(ada.email)
    await expect(identities).to_contain_text(ada.shop.phone)
    leads = page.locator("#leads")
    for lead_id in (ada.keep_lead, ada.other_lead):
        await expect(leads.locator(f"tr[data-lead='{lead_id}']")).to_be_visible()
    await expect(page.get_by_text("No possible duplicates")).to_be_visible()
    await expect(page.locator("#consent")).to_contain_text("Granted")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        assert await contact_of(api, ada.shop, ada.other_lead) == ada.keep_id
    gone = await page.request.get(f"/app/contacts/{ada.other_id}")
    assert gone.status == 404


async def test_cancel_in_the_merge_dialog_merges_nothing(
    new_page: NewPage, live_server: str
) -> None:
    ada = await conflict(live_server)
    page = await signed_in(new_page, ada.shop, "Ann")
    await open_customer(page, ada.keep_id)

    await page.get_by_role("button", name=re.compile(r"^Merge Ada Byron")).click()
    dialog = page.get_by_role("dialog", name="Merge contacts")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()

    await expect(dialog).to_be_hidden()
    await expect(page).to_have_url(re.compile(rf"/app/contacts/{ada.keep_id}$"))
    await expect(page.locator("#duplicates")).to_contain_text("Ada Byron")
    await expect(page.locator("#identities")).not_to_contain_text(ada.shop.phone)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        assert await contact_of(api, ada.shop, ada.other_lead) == ada.other_id
        assert await contact_of(api, ada.shop, ada.keep_lead) == ada.keep_id


async def test_another_orgs_contact_is_404_and_a_bad_merge_changes_nothing(
    new_page: NewPage, live_server: str
) -> None:
    ours, theirs = await shop(live_server), await shop(live_server, name="Eve Other")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        our_contact = await contact_of(api, ours, ours.lead_id)
        their_contact = await contact_of(api, theirs, theirs.lead_id)
    ann = await signed_in(new_page, ours, "Ann")
    eve = await signed_in(new_page, theirs, "Eve")
    htmx = {"Origin": live_server, "HX-Request": "true"}

    await eve.goto(f"/app/contacts/{their_contact}")
    await expect(eve.locator("#customer-name")).to_have_text("Eve Other")
    for path in (f"/app/contacts/{our_contact}", f"/app/contacts/{our_contact}/view"):
        assert (await eve.request.get(path)).status == 404, path
    refused = await eve.request.post(
        f"/app/contacts/{our_contact}/merge", form={"other_id": their_contact}, headers=htmx
    )
    assert refused.status == 404
    refused = await eve.request.post(
        f"/app/contacts/{their_contact}/merge", form={"other_id": our_contact}, headers=htmx
    )
    assert refused.status == 404
    assert "There is no contact" in await refused.text()

    # Ann's own contact: another org's id, or the contact itself, is refused on the page.
    for other_id, status, said in (
        (their_contact, 404, f"There is no contact {their_contact} here to merge"),
        (our_contact, 422, "be merged into itself; nothing was merged"),
    ):
        answer = await ann.request.post(
            f"/app/contacts/{our_contact}/merge", form={"other_id": other_id}, headers=htmx
        )
        assert answer.status == status, await answer.text()
        assert said in await answer.text()
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        assert await contact_of(api, ours, ours.lead_id) == our_contact
        assert await contact_of(api, theirs, theirs.lead_id) == their_contact
    await ann.goto(f"/app/contacts/{our_contact}")
    await expect(ann.locator("#customer-name")).to_have_text("Grace Hopper")
    await expect(ann.get_by_text("No possible duplicates")).to_be_visible()
