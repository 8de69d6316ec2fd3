"""Operators sign in as themselves (UI.md "Who signs in", API.md "Operators and sign-in"),
through HTTP on the real app: invites, passwords, sessions, CSRF and same-origin checks,
lockout, removal, and one org's operator never reaching another org's threads.

Each test uses browsers of its own (fresh cookie jars) on one app.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from urllib.parse import urlsplit

import httpx
import pytest
from temporalio.worker import Worker

from api.main import create_app
from models.settings import Settings
from tests.api.test_takeover import conversation
from tests.conftest import create_org

ORIGIN = "http://keepwarm.test"
PASSWORD = "correct horse battery"
Browser = Callable[[], httpx.AsyncClient]


@pytest.fixture(scope="module")
async def transport(
    stack_settings: Settings, stack_worker: Worker
) -> AsyncIterator[httpx.ASGITransport]:
    """One app (its lifespan running) that every "browser" of the module talks to."""
    app = create_app(stack_settings)
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


@pytest.fixture
def browser(transport: httpx.ASGITransport) -> Browser:
    """A new browser: its own cookie jar, same-origin headers on every request."""

    def new() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport,
            base_url=ORIGIN,
            headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"},
        )

    return new


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def invite(
    api: httpx.AsyncClient, headers: dict[str, str], email: str, role: str = "operator"
) -> tuple[str, str]:
    created = await api.post(
        "/v1/operators",
        json={"name": email.split("@")[0].title(), "email": email, "role": role},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["id"], urlsplit(body["invite_url"]).path


async def accept(client: httpx.AsyncClient, path: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(
        path, data={"password": password, "confirm": password, "form_token": form_token(page)}
    )


async def signed_in(
    browser: Browser, api: httpx.AsyncClient, headers: dict[str, str], email: str
) -> httpx.AsyncClient:
    client = browser()
    _, path = await invite(api, headers, email)
    done = await accept(client, path)
    assert done.status_code == 303, done.text
    return client


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/app/login")
    return await client.post(
        "/app/login",
        data={"email": email, "password": password, "form_token": form_token(page)},
    )


async def test_an_invited_operator_sets_a_password_and_signs_in(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    _, headers = await create_org(api)
    operator_id, path = await invite(api, headers, "mia@shine.example")
    async with browser() as client:
        page = await client.get(path)
        assert "Welcome, Mia" in page.text
        token = form_token(page)
        mismatch = await client.post(
            path, data={"password": PASSWORD, "confirm": "something else", "form_token": token}
        )
        assert mismatch.status_code == 422 and "differ" in mismatch.text
        weak = await client.post(
            path, data={"password": "short", "confirm": "short", "form_token": token}
        )
        assert weak.status_code == 422 and "at least 10" in weak.text
        done = await client.post(
            path, data={"password": PASSWORD, "confirm": PASSWORD, "form_token": token}
        )
        assert done.status_code == 303 and done.headers["location"] == "/app/inbox"
        cookie = done.headers["set-cookie"]
        assert "kw_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        inbox = await client.get("/app/inbox")
        assert inbox.status_code == 200 and "Mia" in inbox.text
        # The link worked once.
        again = await client.get(path)
        assert again.status_code == 404 and "used or has expired" in again.text
    # Signing in later with the password works; the API key never reached the page.
    async with browser() as client:
        response = await login(client, "MIA@shine.example", PASSWORD)
        assert response.status_code == 303, response.text
        inbox = await client.get("/app/inbox")
        assert inbox.status_code == 200
        assert headers["Authorization"].split()[1] not in inbox.text
    listed = await api.get("/v1/operators", headers=headers)
    assert operator_id in [o["id"] for o in listed.json()["items"]]


async def test_no_page_fragment_or_stream_without_a_session(browser: Browser) -> None:
    async with browser() as client:
        page = await client.get("/app/inbox?status=unread")
        assert page.status_code == 303
        assert page.headers["location"] == "/app/login?next=%2Fapp%2Finbox%3Fstatus%3Dunread"
        assert (await client.get("/")).headers["location"] == "/app/inbox"
        fragment = await client.get("/app/inbox/list", headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/app/login"
        assert (await client.get("/app/events")).status_code == 401
        for path in ("/app", "/app/attention", "/app/inbox/threads/thr_x", "/app/now"):
            assert (await client.get(path)).status_code == 303, path
        client.cookies.set("kw_session", "not-a-session")
        forged = await client.get("/app/inbox")
        assert forged.status_code == 303


async def test_a_cross_site_post_is_refused(api: httpx.AsyncClient, browser: Browser) -> None:
    chat = await conversation(api)
    client = await signed_in(browser, api, chat.headers, "cross@shine.example")
    async with aclosing(client):
        url = f"/app/inbox/threads/{chat.thread_id}/takeover"
        evil = await client.post(
            url, headers={"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}
        )
        assert evil.status_code == 403
        no_header = await client.post(
            url, headers={"Origin": "https://evil.test", "Sec-Fetch-Site": ""}
        )
        assert no_header.status_code == 403
        # Same origin but neither htmx's header nor the form's token: a plain cross-site form
        # could do no better, so it is refused too.
        plain = await client.post(url)
        assert plain.status_code == 403
        thread = await api.get(f"/v1/threads/{chat.thread_id}", headers=chat.headers)
        assert thread.json()["held_by"] is None
        ok = await client.post(url, headers={"HX-Request": "true"})
        assert ok.status_code == 200 and "You hold this thread" in ok.text
        ok = await client.post(
            f"/app/inbox/threads/{chat.thread_id}/release", headers={"HX-Request": "true"}
        )
        assert ok.status_code == 200


async def test_another_orgs_ids_are_404_on_every_page_and_fragment(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    chat = await conversation(api)
    escalated = await api.post(
        f"/v1/threads/{chat.thread_id}/escalate",
        json={"reason": "complaint", "priority": "high", "summary": "Broken vase"},
        headers=chat.headers,
    )
    escalation_id = escalated.json()["escalation_id"]
    _, other_headers = await create_org(api, name="Other Co")
    client = await signed_in(browser, api, other_headers, "nosy@other.example")
    htmx = {"HX-Request": "true"}
    async with aclosing(client):
        thread = chat.thread_id
        for path in (
            f"/app/inbox/threads/{thread}",
            f"/app/inbox?thread={thread}",
        ):
            assert (await client.get(path, headers=htmx)).status_code == 404, path
        for path in (
            f"/app/inbox/threads/{thread}/takeover",
            f"/app/inbox/threads/{thread}/release",
            f"/app/inbox/threads/{thread}/viewing",
            f"/app/attention/{escalation_id}/acknowledge",
            f"/app/attention/{escalation_id}/resolve",
        ):
            assert (await client.post(path, headers=htmx)).status_code == 404, path
        reply = await client.post(
            f"/app/inbox/threads/{thread}/reply", data={"body": "hi"}, headers=htmx
        )
        assert reply.status_code == 404
        attention = await client.get("/app/attention")
        assert "Broken vase" not in attention.text
    still = await api.get(f"/v1/threads/{thread}", headers=chat.headers)
    assert still.json()["held_by"] is None
    await api.post(
        f"/v1/escalations/{escalation_id}/resolve",
        json={"operator_id": (await invite(api, chat.headers, "own@shine.example"))[0]},
        headers=chat.headers,
    )


async def test_five_wrong_passwords_lock_sign_in(api: httpx.AsyncClient, browser: Browser) -> None:
    _, headers = await create_org(api)
    client = await signed_in(browser, api, headers, "lock@shine.example")
    await client.aclose()
    async with browser() as client:
        for _ in range(4):
            wrong = await login(client, "lock@shine.example", "not the password!")
            assert wrong.status_code == 401 and "match an account" in wrong.text
        fifth = await login(client, "lock@shine.example", "not the password!")
        assert fifth.status_code == 429 and "Too many wrong passwords" in fifth.text
        right = await login(client, "lock@shine.example", PASSWORD)
        assert right.status_code == 429
        assert (await client.get("/app/inbox")).status_code == 303
        # An email without an account answers exactly the same: the lock tells nothing.
        unknown = [await login(client, "nobody@shine.example", PASSWORD) for _ in range(6)]
        assert [r.status_code for r in unknown] == [401] * 4 + [429] * 2
        assert unknown[-1].text.replace("nobody", "lock") == fifth.text


async def test_removing_an_operator_ends_their_sessions(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    _, headers = await create_org(api)
    client = await signed_in(browser, api, headers, "gone@shine.example")
    listed = (await api.get("/v1/operators", headers=headers)).json()["items"]
    [operator_id] = [o["id"] for o in listed if o["email"] == "gone@shine.example"]
    async with aclosing(client):
        assert (await client.get("/app/inbox")).status_code == 200
        removed = await api.delete(f"/v1/operators/{operator_id}", headers=headers)
        assert removed.status_code == 204
        assert (await client.get("/app/inbox")).status_code == 303
        assert (await login(client, "gone@shine.example", PASSWORD)).status_code == 401
    assert (await api.delete(f"/v1/operators/{operator_id}", headers=headers)).status_code == 404
    listed = (await api.get("/v1/operators", headers=headers)).json()["items"]
    assert operator_id not in [o["id"] for o in listed]


async def test_signing_out_ends_the_session(api: httpx.AsyncClient, browser: Browser) -> None:
    _, headers = await create_org(api)
    client = await signed_in(browser, api, headers, "out@shine.example")
    async with aclosing(client):
        cookie = client.cookies["kw_session"]
        inbox = await client.get("/app/inbox")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', inbox.text)
        assert csrf
        out = await client.post("/app/logout", data={"csrf_token": csrf.group(1)})
        assert out.status_code == 303
    async with browser() as other:
        # The old cookie, replayed, signs nobody in.
        other.cookies.set("kw_session", cookie)
        page = await other.get("/app/inbox")
        assert page.status_code == 303


async def test_a_duplicate_operator_email_is_409(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    await invite(api, headers, "dup@shine.example")
    again = await api.post(
        "/v1/operators",
        json={"name": "Dup", "email": "DUP@shine.example", "role": "operator"},
        headers=headers,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "operator_exists"


async def test_a_session_acts_on_the_json_api_as_its_own_operator(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    chat = await conversation(api)
    other_id, _ = await invite(api, chat.headers, "other@shine.example")
    client = await signed_in(browser, api, chat.headers, "json@shine.example")
    async with aclosing(client):
        inbox = await client.get("/app/inbox")
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', inbox.text)
        assert csrf
        url = f"/v1/threads/{chat.thread_id}/takeover"
        assert (await client.post(url, json={})).status_code == 403  # no CSRF proof
        pretending = await client.post(
            url, json={"operator_id": other_id}, headers={"X-CSRF-Token": csrf.group(1)}
        )
        assert pretending.status_code == 403
        assert pretending.json()["error"]["code"] == "not_yourself"
        taken = await client.post(url, json={}, headers={"X-CSRF-Token": csrf.group(1)})
        assert taken.status_code == 200, taken.text
        me = taken.json()["held_by"]
        assert me and me != other_id
        # Only the owner invites from a session.
        invited = await client.post(
            "/v1/operators",
            json={"name": "Eve", "email": "eve@shine.example", "role": "owner"},
            headers={"X-CSRF-Token": csrf.group(1)},
        )
        assert invited.status_code == 403 and invited.json()["error"]["code"] == "owner_only"
        released = await client.post(
            f"/v1/threads/{chat.thread_id}/release",
            json={},
            headers={"X-CSRF-Token": csrf.group(1)},
        )
        assert released.status_code == 200
    # With the org's key, operator_id stays required.
    keyed = await api.post(f"/v1/threads/{chat.thread_id}/takeover", json={}, headers=chat.headers)
    assert keyed.status_code == 422
    assert [d["field"] for d in keyed.json()["error"]["details"]] == ["operator_id"]


async def test_removing_an_operator_hands_their_threads_back_to_the_ai(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    chat = await conversation(api)
    client = await signed_in(browser, api, chat.headers, "holder@shine.example")
    async with aclosing(client):
        taken = await client.post(
            f"/app/inbox/threads/{chat.thread_id}/takeover", headers={"HX-Request": "true"}
        )
        assert taken.status_code == 200
    held = (await api.get(f"/v1/threads/{chat.thread_id}", headers=chat.headers)).json()
    assert held["held_by"] is not None
    removed = await api.delete(f"/v1/operators/{held['held_by']}", headers=chat.headers)
    assert removed.status_code == 204
    thread = (await api.get(f"/v1/threads/{chat.thread_id}", headers=chat.headers)).json()
    assert (thread["held_by"], thread["handled_by"]) == (None, "ai")


async def test_a_new_password_signs_every_other_browser_out(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    _, headers = await create_org(api)
    first = await signed_in(browser, api, headers, "reset@shine.example")
    [operator_id] = [
        o["id"]
        for o in (await api.get("/v1/operators", headers=headers)).json()["items"]
        if o["email"] == "reset@shine.example"
    ]
    owner = browser()
    _, owner_link = await invite(api, headers, "boss@shine.example", role="owner")
    assert (await accept(owner, owner_link)).status_code == 303
    async with aclosing(first), aclosing(owner):
        assert (await first.get("/app/inbox")).status_code == 200
        team = await owner.get("/app/team")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', team.text)
        assert csrf
        # The owner makes a new link (a password reset) and the person uses it.
        made = await owner.post(
            f"/app/team/{operator_id}/reinvite", data={"csrf_token": csrf.group(1)}
        )
        link = re.search(r'id="invite-url" type="text" readonly value="([^"]+)"', made.text)
        assert made.status_code == 200 and link
        async with browser() as second:
            done = await accept(second, urlsplit(link.group(1)).path, "another fine password")
            assert done.status_code == 303
            assert (await second.get("/app/inbox")).status_code == 200
        # The first browser's session ended with the old password.
        assert (await first.get("/app/inbox")).status_code == 303


def test_access_logs_never_hold_an_invite_token() -> None:
    import logging

    from api.ui import _NoInviteTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/app/invite/s3cr3t-Token_x", "1.1", 200),
        None,
    )
    assert _NoInviteTokens().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "/app/invite/…" in record.getMessage()
