"""``/docs`` is the Swagger UI from the vendored files: it renders with no network but the API.

No axe scan here: Swagger UI 5.35 itself has serious findings (colour contrast of its version
badges, a copy button nested in the operation's summary button), and the page is not ours.
"""

from __future__ import annotations

import re

from playwright.async_api import Page, Route, expect

SWAGGER_LAYOUT_MS = 15_000


async def _only_the_live_server(page: Page, live_server: str) -> list[str]:
    """Abort every request not to the live server; the list fills with their URLs."""
    elsewhere: list[str] = []

    async def route(route: Route) -> None:
        if route.request.url.startswith(f"{live_server}/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", route)
    return elsewhere


async def test_docs_render_the_api_with_no_cdn(page: Page, live_server: str) -> None:
    elsewhere = await _only_the_live_server(page, live_server)

    await page.goto("/docs")

    # Swagger UI takes ~3 s to lay out the ~190 KB document: more than the harness's 5 s
    # allows for on a busy machine.
    await expect(page.get_by_role("heading", name=re.compile(r"^keepwarm"))).to_be_visible(
        timeout=SWAGGER_LAYOUT_MS
    )
    create_lead = page.locator(".opblock-post").filter(
        has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/leads$"))
    )
    await expect(create_lead.locator(".opblock-summary-method")).to_have_text("POST")
    assert elsewhere == []
