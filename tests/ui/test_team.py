"""The Team page in real Chromium: the owner invites someone (the link is shown once), they
sign in with it, and the owner removes them, which signs them out everywhere at once."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import PASSWORD, shop, signed_in


async def test_the_owner_invites_and_removes_a_team_member(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/team")
    await owner.get_by_label("Name").fill("Zoe")
    await owner.get_by_label("Email").fill("zoe@shine.example")
    await owner.get_by_role("button", name="Create invite link").click()
    await expect(owner.locator(".notice")).to_contain_text("Zoe is invited.")
    link = await owner.get_by_label("Invite link").input_value()
    assert re.fullmatch(rf"{re.escape(live_server)}/app/invite/[\w-]+", link)
    row = owner.locator("tr", has_text="zoe@shine.example")
    await expect(row).to_contain_text("Invited, not signed up yet")
    assert await axe_violations(owner) == []

    zoe = await new_page()
    await zoe.goto(link)
    await zoe.get_by_label("Password", exact=True).fill(PASSWORD)
    await zoe.get_by_label("Password again").fill(PASSWORD)
    await zoe.get_by_role("button", name="Set password and sign in").click()
    await expect(zoe.locator("#live-status")).to_have_text("Live")
    # An operator sees the team but can't change it.
    await zoe.goto("/app/team")
    await expect(zoe.get_by_role("button", name="Create invite link")).to_have_count(0)

    await owner.reload()
    await expect(row).to_contain_text("Online")
    await row.get_by_role("button", name="Remove…").click()
    dialog = owner.get_by_role("dialog", name="Remove Zoe?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(row).to_be_visible()
    await row.get_by_role("button", name="Remove…").click()
    await dialog.get_by_role("button", name="Remove Zoe").click()
    await expect(owner.locator(".notice")).to_contain_text("Removed")
    await expect(owner.locator("tr", has_text="zoe@shine.example")).to_have_count(0)

    await zoe.goto("/app/inbox")
    await expect(zoe).to_have_url(re.compile(r"/app/login\?next="))
