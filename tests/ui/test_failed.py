"""The owner's Failed page in real Chromium, on a live-mode deployment whose providers are the
fake ones: a failed send retried from the page reaches Twilio exactly once, even when it is
pressed again from a page that still shows it; an operator can't open the page."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.engine import Engine

from models.values import MessageStatus
from tests.channels.conftest import Live, live, live_stack  # noqa: F401 (fixtures)
from tests.channels.test_live_sends import new_lead, outbound
from tests.channels.test_retry_sends import GAVE_UP, failed_message, posts_of, row, settled
from tests.conftest import eventually
from tests.ui.conftest import TIMEOUT_MS, axe_violations, uvicorn_serving
from tests.ui.test_inbox import accept_invite


@pytest.fixture
async def live_pages(live: Live) -> AsyncIterator[str]:  # noqa: F811 (the fixture above)
    """The live deployment's app under uvicorn (pages need a real browser origin)."""
    async with uvicorn_serving(live.settings) as url:
        yield url


SignIn = Callable[[dict[str, str], str], Awaitable[Page]]


@pytest.fixture
async def signed_in_as(
    browser: Browser,
    live: Live,  # noqa: F811 (the fixture above)
    live_pages: str,
) -> AsyncIterator[SignIn]:
    """Signs a new ``role`` of the org (by its key's ``headers``) in, in a fresh browser
    context on the live deployment's pages; the contexts close before the server stops."""
    contexts: list[BrowserContext] = []

    async def sign_in(headers: dict[str, str], role: str) -> Page:
        created = await live.api.post(
            "/v1/operators",
            json={
                "name": role.title(),
                "email": f"{role}-{uuid.uuid4().hex[:6]}@shine.example",
                "role": role,
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        context = await browser.new_context(base_url=live_pages, bypass_csp=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        await accept_invite(page, urlsplit(created.json()["invite_url"]).path)
        return page

    yield sign_in
    for context in contexts:
        await context.close()


async def test_a_failed_send_retried_from_the_page_reaches_the_provider_once(
    live: Live,  # noqa: F811 (the fixture above)
    signed_in_as: SignIn,
    pg_engine: Engine,
) -> None:
    _, headers = await live.org()
    lead_id = await new_lead(
        live, headers, name="Ada", phone="+447911123470", consent={"sms": True}
    )
    await outbound(live, headers, lead_id)
    body = f"Still keen on that deep clean? ({uuid.uuid4().hex[:6]})"
    message_id = failed_message(pg_engine, lead_id, body=body, error=GAVE_UP, attempted=False)

    owner = await signed_in_as(headers, "owner")
    await owner.goto("/app/failed")
    row_of = owner.locator(f"#failed-{message_id}")
    await expect(row_of).to_contain_text("Provider unavailable")
    await expect(row_of).to_contain_text(body)
    assert await axe_violations(owner) == []
    # A second tab still shows the message after the first has retried it.
    stale = await owner.context.new_page()
    await stale.goto("/app/failed")
    await expect(stale.locator(f"#failed-{message_id}")).to_be_visible()

    await row_of.get_by_role("button", name=re.compile("^Retry")).click()
    await expect(owner.locator(".notice")).to_contain_text("Sending it again")
    await expect(row_of).to_contain_text("Being sent again")
    await expect(row_of.get_by_role("button")).to_have_count(0)
    await (
        stale.locator(f"#failed-{message_id}")
        .get_by_role("button", name=re.compile("^Retry"))
        .click()
    )
    # Already on its way (or sent): said so, and not sent again.
    await expect(stale.locator(".notice, .error")).to_contain_text(
        re.compile("being sent again already|Only a failed message can be retried")
    )

    sent = await settled(pg_engine, message_id)
    assert sent.status in {MessageStatus.QUEUED, MessageStatus.SENT}

    async def reached() -> bool:
        return len(posts_of(live, body)) >= 1

    await eventually(reached, within=30)
    assert len(posts_of(live, body)) == 1
    assert row(pg_engine, message_id).provider_message_id is not None


async def test_an_operator_cannot_open_the_failed_page(
    live: Live,  # noqa: F811 (the fixture above)
    live_pages: str,
    signed_in_as: SignIn,
) -> None:
    _, headers = await live.org()
    operator = await signed_in_as(headers, "operator")
    await expect(operator.get_by_role("link", name="Failed")).to_have_count(0)
    answer = await operator.goto("/app/failed")
    assert answer is not None and answer.status == 403
    await expect(operator.get_by_role("heading", name="Not allowed")).to_be_visible()
    async with httpx.AsyncClient(base_url=live_pages) as client:
        assert (await client.get("/app/failed")).status_code in {303, 307}
