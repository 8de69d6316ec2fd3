"""The operators' pages over HTTP: a long conversation loads its latest messages first and
earlier ones a page at a time; the composer says before sending when consent or quiet hours
stop a reply; the lead page falls back to the last known state when no worker answers.
(What a person sees in Chromium is tests/ui/.)"""

from __future__ import annotations

import re
from contextlib import aclosing
from datetime import timedelta
from html import unescape

import httpx
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.settings import Settings
from models.tables import Message, utcnow
from models.values import Direction, MessageStatus, Sender, new_id
from tests.api.test_sign_in import Browser, accept, browser, invite, signed_in, transport
from tests.api.test_takeover import conversation, signed_api, text_in
from tests.conftest import create_org, eventually, make_settings, serve

__all__ = ["browser", "signed_api", "transport"]  # fixtures


def _texts(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<p class="body">([^<]*)</p>', html)]


async def test_a_long_conversation_loads_its_latest_messages_first(
    api: httpx.AsyncClient, browser: Browser, pg_engine: Engine
) -> None:
    chat = await conversation(api)
    start = utcnow() - timedelta(hours=2)
    with session_scope(pg_engine) as session:
        for n in range(120):
            session.add(
                Message(
                    id=new_id("msg"),
                    org_id=chat.org_id,
                    thread_id=chat.thread_id,
                    channel="sms",
                    direction=Direction.INBOUND,
                    sender=Sender.CUSTOMER,
                    body=f"old message {n:03d}",
                    status=MessageStatus.RECEIVED,
                    created_at=start + timedelta(seconds=n),
                )
            )
    client = await signed_in(browser, api, chat.headers, "pager@shine.example")
    async with aclosing(client):
        pane = await client.get(f"/app/inbox/threads/{chat.thread_id}")
        shown = [t for t in _texts(pane.text) if t.startswith("old message")]
        # 50 newest messages: the AI's first SMS and the 49 latest old ones.
        assert shown == [f"old message {n:03d}" for n in range(71, 120)]
        pages = []
        link = re.search(r'hx-get="(/app/inbox/threads/[^"]+/earlier\?before=[^"]+)"', pane.text)
        while link:
            earlier = await client.get(unescape(link.group(1)), headers={"HX-Request": "true"})
            assert earlier.status_code == 200
            pages.append(_texts(earlier.text))
            link = re.search(r'hx-get="(/app/inbox/threads/[^"]+/earlier\?[^"]+)"', earlier.text)
        assert pages == [
            [f"old message {n:03d}" for n in range(21, 71)],
            [f"old message {n:03d}" for n in range(0, 21)],
        ]
        bad = await client.get(
            f"/app/inbox/threads/{chat.thread_id}/earlier?before=bm90LWEtY3Vyc29y"
        )
        assert bad.status_code == 422


async def test_the_composer_says_before_sending_that_consent_forbids_a_reply(
    api: httpx.AsyncClient, signed_api: httpx.AsyncClient, browser: Browser
) -> None:
    chat = await conversation(api)
    client = await signed_in(browser, api, chat.headers, "composer@shine.example")
    async with aclosing(client):
        pane = await client.get(f"/app/inbox/threads/{chat.thread_id}")
        assert 'id="composer-why">You can' not in pane.text
        await text_in(signed_api, chat, "STOP")

        async def blocked() -> str | None:
            pane = await client.get(f"/app/inbox/threads/{chat.thread_id}")
            text = unescape(pane.text)
            return text if "You can't reply: the person opted out of sms" in text else None

        text = await eventually(blocked, within=15, every=0.2)
        assert re.search(r'<textarea id="reply-body"[^>]* disabled', text)
        refused = await client.post(
            f"/app/inbox/threads/{chat.thread_id}/reply",
            data={"body": "Are you still there?"},
            headers={"HX-Request": "true"},
        )
        assert refused.status_code == 409 and "opted out" in unescape(refused.text)


async def test_the_command_center_counts_what_the_ai_is_doing(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    _, headers = await create_org(api)
    client = await signed_in(browser, api, headers, "cc@shine.example")
    async with aclosing(client):
        page = await client.get("/app")
        assert page.status_code == 200
        assert "Handling 0 conversations" in page.text


async def test_the_lead_page_shows_the_last_known_state_when_no_worker_answers(
    api: httpx.AsyncClient, stack_settings: Settings, pg_url: str
) -> None:
    chat = await conversation(api)
    _, invite_path = await invite(api, chat.headers, "asof@shine.example")
    # The same database, but Temporal unreachable: the workflow can't be asked.
    settings = make_settings(database_url=pg_url, temporal_address="127.0.0.1:1")
    async with serve(settings) as client:
        client.headers.update({"Origin": "http://keepwarm.test", "Sec-Fetch-Site": "same-origin"})
        assert (await accept(client, invite_path)).status_code == 303
        page = await client.get(f"/app/leads/{chat.lead_id}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "No worker answered just now." in text
    assert re.search(r"Last known state, as of <time datetime=", text)
    assert "Live from the workflow" not in text


async def test_a_page_that_fails_says_so_in_a_page(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    _, headers = await create_org(api)
    client = await signed_in(browser, api, headers, "oops@shine.example")
    async with aclosing(client):
        missing = await client.get("/app/inbox?thread=th_nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in missing.text and "No such thread." in missing.text
        bad = await client.get("/app/inbox?sort=bogus")
        assert bad.status_code == 422 and "<h1>That link doesn" in bad.text
        # A fragment (htmx) keeps the JSON error envelope.
        fragment = await client.get("/app/inbox/threads/th_nope", headers={"HX-Request": "true"})
        assert fragment.status_code == 404 and fragment.json()["error"]["code"] == "not_found"


async def test_a_reply_posted_as_a_plain_form_goes_back_to_the_thread(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    chat = await conversation(api)
    client = await signed_in(browser, api, chat.headers, "plain@shine.example")
    async with aclosing(client):
        pane = await client.get(f"/app/inbox?thread={chat.thread_id}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', pane.text)
        assert csrf
        sent = await client.post(
            f"/app/inbox/threads/{chat.thread_id}/reply",
            data={"body": "Sent before htmx was ready", "csrf_token": csrf.group(1)},
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/app/inbox?thread={chat.thread_id}"
        thread = await client.get(sent.headers["location"])
        assert "Sent before htmx was ready" in thread.text
