"""The operators' pages in real Chromium: the real app under uvicorn, Debian's Chromium driven by
Playwright (UI.md "Tests"), and the axe-core scan.

Chromium is ``/usr/bin/chromium`` from Debian (``apt-get install -y chromium``; ``.ci/run``
installs it). Playwright never downloads a browser: no ``playwright install``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from pydantic import SecretStr
from temporalio.worker import Worker

from api.main import create_app
from api.ui.vendor import TEST_ONLY
from models.settings import Settings
from tests.conftest import make_settings

CHROMIUM = Path("/usr/bin/chromium")
#: The live server's Twilio auth token: tests sign inbound webhooks with it.
TWILIO_TOKEN = "ui-tests-twilio-token"
#: A page that works shows what a test waits for well within this, also with the suite's
#: other worker process busy on the second core (``make test`` runs two).
TIMEOUT_MS = 10_000
#: axe-core findings a page must not have (UI.md "Tests").
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

expect.set_options(timeout=TIMEOUT_MS)

NewPage = Callable[[], Awaitable[Page]]


class _Server(uvicorn.Server):
    """uvicorn inside the test session: it stops with the session, and Ctrl-C stays pytest's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def uvicorn_serving(settings: Settings) -> AsyncIterator[str]:
    """The real app for ``settings`` under uvicorn in this loop, on a free port, with
    ``public_url`` set to where it listens (cookies, same-origin checks); its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _Server(
        uvicorn.Config(
            create_app(settings.model_copy(update={"public_url": url})),
            log_level="warning",
            lifespan="on",
            # An open event stream would otherwise hold shutdown forever (UI.md "Known traps").
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]), name=f"server-{url}")
    try:
        await _until_healthy(url, serving)
        yield url
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
        sock.close()


@pytest.fixture(scope="session")
async def live_server(stack_settings: Settings, stack_worker: Worker) -> AsyncIterator[str]:
    """The real app under uvicorn in the session's loop, a worker behind it; its base URL."""
    settings = make_settings(
        database_url=stack_settings.database_url,
        temporal_address=stack_settings.temporal_address,
        # Inbound texts reach the pages through signed Twilio webhooks (tests/ui/test_inbox.py).
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
    )
    async with uvicorn_serving(settings) as url:
        yield url


async def _until_healthy(url: str, serving: asyncio.Task[None], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=1) as client:
        while True:
            if serving.done():
                serving.result()  # raises what stopped it
                raise AssertionError("the live server stopped before it answered /healthz")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the live server did not answer in {within}s"
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or the test fails saying how to install it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, for the session."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            # Root in a container: no user namespaces for Chromium's sandbox.
            args=["--no-sandbox"],
        )
        yield launched
        await launched.close()


@pytest.fixture
async def new_page(browser: Browser, live_server: str) -> AsyncIterator[NewPage]:
    """Opens a page in a fresh browser context (its own cookies: another operator) each call;
    relative URLs go to the live server. Every context closes after the test."""
    contexts: list[BrowserContext] = []

    async def open_page() -> Page:
        # bypass_csp: axe is injected as an inline script, which a page's CSP may forbid.
        context = await browser.new_context(base_url=live_server, bypass_csp=True)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return await context.new_page()

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
async def page(new_page: NewPage) -> Page:
    """One page in a fresh browser context, on the live server."""
    return await new_page()


def _axe_script() -> Path:
    manifest: dict[str, Any] = json.loads(TEST_ONLY.read_text())
    paths = [
        file["path"]
        for package in manifest["packages"]
        if package["package"] == "axe-core"
        for file in package["files"]
        if file["path"].endswith("/axe.min.js")
    ]
    (path,) = paths
    return TEST_ONLY.parent / str(path)


#: The vendored axe-core (tests/ui/vendor/, whatever its version).
AXE_JS = _axe_script()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The page's serious and critical accessibility violations, by the vendored axe-core.

    Each as ``id``, ``impact``, ``help`` and the offending ``nodes`` (selector, start of the
    HTML), so a failure says where; an empty list is a pass.
    """
    if not await page.evaluate("typeof axe !== 'undefined'"):  # once per document
        await page.add_script_tag(path=AXE_JS)
    violations: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [(n["target"], n["html"][:200]) for n in v["nodes"]],
        }
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]
