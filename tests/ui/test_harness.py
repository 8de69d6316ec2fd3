"""The harness the page tests stand on: the axe scan reports what a person would trip on."""

from __future__ import annotations

from playwright.async_api import Page

from tests.ui.conftest import axe_violations


async def test_axe_reports_serious_and_critical_findings_only(page: Page) -> None:
    await page.set_content(
        "<html><head><title>Inbox</title></head>"
        "<body><main><h1>Inbox</h1><h3>Skipped a level</h3><img src='/x.png'></main></body></html>"
    )

    found = {violation["id"]: violation["impact"] for violation in await axe_violations(page)}

    # heading-order is moderate: not reported.
    assert found == {"html-has-lang": "serious", "image-alt": "critical"}


async def test_axe_finds_nothing_on_a_plain_accessible_page(page: Page) -> None:
    await page.set_content(
        "<html lang='en'><head><title>Inbox</title></head>"
        "<body><main><h1>Inbox</h1><p>No threads yet.</p></main></body></html>"
    )

    assert await axe_violations(page) == []
