"""``/app/events`` over real HTTP: Server-Sent Events with ids, the headers proxies need, and
``Last-Event-ID`` replaying what a reconnecting page missed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx

from tests.ui.test_inbox import PASSWORD, invite, shop, text_in


async def _signed_in(live_server: str, invite_path: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=live_server,
        timeout=10,
        headers={"Origin": live_server, "Sec-Fetch-Site": "same-origin"},
    )
    page = await client.get(invite_path)
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token
    done = await client.post(
        invite_path,
        data={"password": PASSWORD, "confirm": PASSWORD, "form_token": token.group(1)},
    )
    assert done.status_code == 303, done.text
    return client


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.strip()


async def _until(response: httpx.Response, kind: str, subject: str) -> dict[str, str]:
    async def find() -> dict[str, str]:
        async for event in _events(response):
            if event.get("event") == kind and event.get("data") == subject:
                return event
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(find(), timeout=5)


async def test_a_reconnecting_page_gets_what_it_missed(live_server: str) -> None:
    customer = await shop(live_server)
    client = await _signed_in(live_server, await invite(customer, "Sam"))
    async with aclosing(client):
        async with client.stream("GET", "/app/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            assert stream.headers["x-accel-buffering"] == "no"
            await text_in(customer, "first")
            first = await _until(stream, f"thread-{customer.thread_id}", customer.thread_id)
        # Gone for a while: two more texts arrive meanwhile.
        await text_in(customer, "second")
        await text_in(customer, "third")
        async with client.stream(
            "GET", "/app/events", headers={"Last-Event-ID": first["id"]}
        ) as stream:
            replayed = await _until(stream, "thread", customer.thread_id)
            assert int(replayed["id"]) > int(first["id"])
