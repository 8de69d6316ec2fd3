"""The inbox through HTTP on PostgreSQL: every filter, search and sort of ``GET /v1/threads``
over a few thousand seeded messages, keyset pages, tenancy, and one thread's view.

The seed is written straight to the database (one bulk insert per table); what each query
should answer is worked out here in Python from the same seed, independently of the SQL.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.services.answers import claim_confirmation
from models.services.inbound import record_inbound_message
from models.tables import Contact, Escalation, Identity, Lead, Message, Thread
from models.values import Channel
from tests.api.test_identity import unique_phone
from tests.conftest import create_org, eventually

Headers = dict[str, str]

CONTACTS = 300
STATUSES = ("unread", "assigned", "resolved")
PRIORITIES = ("low", "medium", "high", "urgent")
RANK = {priority: rank for rank, priority in enumerate(PRIORITIES)}
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
NOW = datetime.now(UTC).replace(microsecond=0)

#: Special contacts, by index: found by one search each.
LOVELACE, BY_PHONE, CONSERVATORY, LITERAL, WILDCARD = 7, 123, 200, 150, 151


@dataclass
class Seeded:
    """One seeded thread, as the API should show it."""

    index: int
    thread_id: str
    contact_id: str
    name: str
    email: str
    phone: str | None
    status: str
    handled_by: str
    priority: str
    created_at: datetime
    messages: list[dict[str, Any]] = field(default_factory=list)
    value: float = 0.0
    open_escalations: int = 0

    @property
    def last_message_at(self) -> datetime | None:
        return max((m["created_at"] for m in self.messages), default=None)

    @property
    def last_inbound_at(self) -> datetime | None:
        inbound = [m["created_at"] for m in self.messages if m["direction"] == "inbound"]
        return max(inbound, default=None)

    @property
    def activity(self) -> datetime:
        return self.last_message_at or self.created_at

    @property
    def channels(self) -> list[str]:
        used = {m["channel"] for m in self.messages}
        return [c.value for c in Channel if c.value in used]


def _body(i: int, j: int, rng: random.Random) -> str:
    if i == CONSERVATORY and j == 1:  # not the last message: any message is searched
        return "Can you also do the conservatory windows?"
    if i == LITERAL and j == 0:
        return "I'm 99% sure, plan A_B"
    if i == WILDCARD and j == 0:  # what "99%" and "a_b" would find if they were wildcards
        return "Is 99.5 OK? Or plan AxB"
    return rng.choice(
        [
            "Hi, is Thursday still OK for the clean?",
            "Thanks, see you then.",
            "Could you send the quote again please",
            "We have a dog, is that a problem?",
            "Great, booked.",
        ]
    )


def seed(engine: Engine, *, org_id: str, count: int, rng: random.Random) -> list[Seeded]:
    """``count`` contacts with a thread each and about ten messages per thread (one in fifty
    has none), leads (some converted) and escalations, bulk-inserted."""
    tag = uuid.uuid4().hex[:8]
    start = NOW - timedelta(days=30)
    threads: list[Seeded] = []
    for i in range(count):
        name = "Ada Lovelace" if i == LOVELACE else f"Customer {tag} {i:03d}"
        thread = Seeded(
            index=i,
            thread_id=f"th_{tag}_{i:04d}",
            contact_id=f"ct_{tag}_{i:04d}",
            name=name,
            email=f"c{i:03d}.{tag}@example.com",
            phone=f"+447700900{i:03d}" if i % 3 != 2 else None,
            status=STATUSES[i % 3],
            handled_by="human" if i % 5 == 0 else "ai",
            priority=PRIORITIES[(i // 3) % 4],
            created_at=start - timedelta(days=1) + timedelta(seconds=i),
        )
        used = [Channel.SMS]
        used += [Channel.EMAIL] if i % 2 == 0 else []
        used += [Channel.WHATSAPP] if i % 7 == 0 else []
        used += [Channel.VOICE] if i % 13 == 0 else []
        n = 0 if i % 50 == 49 else 5 + i % 11
        at = start + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        for j in range(n):
            at += timedelta(minutes=rng.randrange(1, 600), microseconds=rng.randrange(10**6))
            inbound = j % 2 == 0
            thread.messages.append(
                {
                    "id": f"msg_{tag}_{i:04d}_{j:02d}",
                    "org_id": org_id,
                    "thread_id": thread.thread_id,
                    "channel": used[j % len(used)].value,
                    "direction": "inbound" if inbound else "outbound",
                    "sender": "customer" if inbound else ("human" if j % 4 == 3 else "ai"),
                    "body": _body(i, j, rng),
                    "status": "received" if inbound else "delivered",
                    "created_at": at,
                }
            )
        threads.append(thread)
    # Ties: pairs of threads whose last messages are at the same instant.
    for i in range(0, count - 1, 10):
        a, b = threads[i], threads[i + 1]
        if a.messages and b.messages:
            tied = max(a.messages[-1]["created_at"], b.messages[-1]["created_at"])
            a.messages[-1]["created_at"] = b.messages[-1]["created_at"] = tied

    leads, escalations = [], []
    for thread in threads:
        i = thread.index
        converted = [float(i * 10), 0.5 * i] if i % 9 == 0 else []
        if i % 18 == 0 and i:
            converted = [300.0]  # many contacts share a value: ties
        thread.value = sum(converted)
        stages = [("converted", value) for value in converted]
        stages += [("contacted", 9999.0)] if i % 4 == 1 else []  # open leads don't count
        stages += [("lost", 5000.0)] if i % 6 == 1 else []
        for k, (stage, value) in enumerate(stages):
            leads.append(
                {
                    "id": f"lead_{tag}_{i:04d}_{k}",
                    "org_id": org_id,
                    "contact_id": thread.contact_id,
                    "workflow_id": f"wf-{tag}-{i}-{k}",
                    "stage": stage,
                    "value": value,
                    "fields": {},
                    "created_at": start,
                    "updated_at": start,
                }
            )
        if i % 17 == 0:
            thread.open_escalations = 2
            for k, status in enumerate(("open", "acknowledged", "resolved")):
                escalations.append(
                    {
                        "id": f"esc_{tag}_{i:04d}_{k}",
                        "org_id": org_id,
                        "thread_id": thread.thread_id,
                        "contact_id": thread.contact_id,
                        "reason": "agent_flag",
                        "priority": "high",
                        "summary": "wants a person",
                        "status": status,
                        "data": {},
                        "opened_at": NOW,
                        "sla_due_at": NOW + timedelta(minutes=15 * (k + 1)),
                    }
                )

    with Session(engine) as session:
        session.execute(
            insert(Contact),
            [
                {"id": t.contact_id, "org_id": org_id, "name": t.name, "created_at": t.created_at}
                for t in threads
            ],
        )
        identities = [
            {
                "id": f"id_{t.contact_id}_{kind}",
                "org_id": org_id,
                "contact_id": t.contact_id,
                "kind": kind,
                "value": value,
                "created_at": t.created_at,
            }
            for t in threads
            for kind, value in (("email", t.email), ("phone", t.phone))
            if value is not None
        ]
        session.execute(insert(Identity), identities)
        session.execute(
            insert(Thread),
            [
                {
                    "id": t.thread_id,
                    "org_id": org_id,
                    "contact_id": t.contact_id,
                    "created_at": t.created_at,
                    "status": t.status,
                    "handled_by": t.handled_by,
                    "priority": t.priority,
                    "last_message_at": t.last_message_at,
                    "last_inbound_at": t.last_inbound_at,
                }
                for t in threads
            ],
        )
        session.execute(insert(Message), [m for t in threads for m in t.messages])
        session.execute(insert(Lead), leads)
        session.execute(insert(Escalation), escalations)
        session.commit()
    return threads


@dataclass
class Inbox:
    headers: Headers
    threads: list[Seeded]
    other_headers: Headers
    other_threads: list[Seeded]

    def by_id(self) -> dict[str, Seeded]:
        return {t.thread_id: t for t in self.threads}


@pytest.fixture(scope="module")
async def inbox(api: httpx.AsyncClient, pg_engine: Engine) -> Inbox:
    """Org A with 300 contacts and about 3,000 messages; org B with a few of its own,
    including an Ada Lovelace and a conservatory of its own."""
    org_id, headers = await create_org(api, name="Inbox A")
    other_id, other_headers = await create_org(api, name="Inbox B")
    threads = seed(pg_engine, org_id=org_id, count=CONTACTS, rng=random.Random(7))
    others = seed(pg_engine, org_id=other_id, count=205, rng=random.Random(8))
    return Inbox(headers, threads, other_headers, others)


async def get(api: httpx.AsyncClient, headers: Headers, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/threads", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def every_page(
    api: httpx.AsyncClient, headers: Headers, *, limit: int = 200, **params: Any
) -> list[dict[str, Any]]:
    """All items, following ``next_cursor`` to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = await get(
            api, headers, limit=limit, **params, **({"cursor": cursor} if cursor else {})
        )
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["thread_id"] for item in items]


def ordered(threads: list[Seeded], sort: str) -> list[str]:
    """The order ``sort`` should give, worked out in Python."""
    keys: dict[str, Callable[[Seeded], Any]] = {
        "recent": lambda t: (t.activity, t.thread_id),
        "oldest_unread": lambda t: (
            t.status != "unread",
            t.last_inbound_at or NEVER,
            t.thread_id,
        ),
        "priority": lambda t: (RANK[t.priority], t.activity, t.thread_id),
        "value": lambda t: (t.value, t.activity, t.thread_id),
    }
    descending = sort != "oldest_unread"
    return [t.thread_id for t in sorted(threads, key=keys[sort], reverse=descending)]


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def test_each_item_shows_the_thread_as_seeded(api: httpx.AsyncClient, inbox: Inbox) -> None:
    items = await every_page(api, inbox.headers)

    assert ids(items) == ordered(inbox.threads, "recent")
    seeded = inbox.by_id()
    for item in items:
        thread = seeded[item["thread_id"]]
        last = max(thread.messages, key=lambda m: (m["created_at"], m["id"]), default=None)
        assert item["contact_id"] == thread.contact_id
        assert item["name"] == thread.name
        assert (item["status"], item["handled_by"], item["priority"]) == (
            thread.status,
            thread.handled_by,
            thread.priority,
        )
        assert item["unread"] == (thread.status == "unread")
        assert item["assigned_to"] is None
        assert item["channels"] == thread.channels
        assert when(item["last_message_at"]) == thread.last_message_at
        assert item["value"] == thread.value
        assert item["open_escalations"] == thread.open_escalations
        if last is None:
            assert item["last_message"] is None
        else:
            assert item["last_message"] == {
                "body": last["body"],
                "channel": last["channel"],
                "direction": last["direction"],
                "created_at": item["last_message"]["created_at"],
            }
            assert when(item["last_message"]["created_at"]) == last["created_at"]


@pytest.mark.parametrize("sort", ["recent", "oldest_unread", "priority", "value"])
async def test_each_sort_pages_through_every_thread_once_in_order(
    api: httpx.AsyncClient, inbox: Inbox, sort: str
) -> None:
    # 37 a page: pages end inside runs of equal keys (priorities, values, tied times).
    items = await every_page(api, inbox.headers, limit=37, sort=sort)

    assert ids(items) == ordered(inbox.threads, sort)


async def test_the_sorts_put_what_they_promise_first(api: httpx.AsyncClient, inbox: Inbox) -> None:
    top = {
        sort: (await get(api, inbox.headers, sort=sort, limit=5))["items"]
        for sort in ("oldest_unread", "priority", "value")
    }

    assert all(item["status"] == "unread" for item in top["oldest_unread"])
    waiting = [inbox.by_id()[item["thread_id"]].last_inbound_at for item in top["oldest_unread"]]
    assert waiting == sorted(w for w in waiting if w is not None)
    assert [item["priority"] for item in top["priority"]] == ["urgent"] * 5
    assert top["value"][0]["value"] == max(t.value for t in inbox.threads)


@pytest.mark.parametrize(
    ("param", "value", "keep"),
    [
        ("status", "unread", lambda t: t.status == "unread"),
        ("status", "assigned", lambda t: t.status == "assigned"),
        ("status", "resolved", lambda t: t.status == "resolved"),
        ("handled_by", "human", lambda t: t.handled_by == "human"),
        ("handled_by", "ai", lambda t: t.handled_by == "ai"),
        ("priority", "urgent", lambda t: t.priority == "urgent"),
        ("priority", "low", lambda t: t.priority == "low"),
        ("channel", "whatsapp", lambda t: "whatsapp" in t.channels),
        ("channel", "voice", lambda t: "voice" in t.channels),
        ("channel", "email", lambda t: "email" in t.channels),
    ],
)
async def test_each_filter_keeps_exactly_its_threads(
    api: httpx.AsyncClient, inbox: Inbox, param: str, value: str, keep: Callable[[Seeded], bool]
) -> None:
    params: dict[str, Any] = {param: value}
    items = await every_page(api, inbox.headers, **params)

    expected = [t for t in inbox.threads if keep(t)]
    assert 0 < len(expected) < len(inbox.threads)
    assert ids(items) == ordered(expected, "recent")


async def test_filters_combine_with_each_other_and_with_a_sort(
    api: httpx.AsyncClient, inbox: Inbox
) -> None:
    items = await every_page(
        api, inbox.headers, limit=9, status="unread", channel="email", sort="priority"
    )

    expected = [t for t in inbox.threads if t.status == "unread" and "email" in t.channels]
    assert ids(items) == ordered(expected, "priority")


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("lovelace", [LOVELACE]),  # name, any case
        ("ADA LOVE", [LOVELACE]),
        (f"c{BY_PHONE:03d}.", [BY_PHONE]),  # email
        ("900123", [BY_PHONE]),  # phone digits
        ("+44 7700 900123", [BY_PHONE]),  # phone as typed, spaces and all
        ("07700 900123", [BY_PHONE]),  # national form, read in the org's region (GB)
        ("conservatory", [CONSERVATORY]),  # message text, not the last message
        ("99%", [LITERAL]),  # % and _ are characters, not wildcards
        ("a_b", [LITERAL]),
        ("PLAN A", [LITERAL, WILDCARD]),
        ("nobody-has-this", []),
    ],
)
async def test_search_finds_names_emails_phones_and_message_text(
    api: httpx.AsyncClient, inbox: Inbox, q: str, found: list[int]
) -> None:
    items = await every_page(api, inbox.headers, q=q)

    assert sorted(inbox.by_id()[i].index for i in ids(items)) == found


async def test_search_combines_with_filters_and_pages(api: httpx.AsyncClient, inbox: Inbox) -> None:
    # Every contact has an example.com email: the search keeps all, the filter some.
    items = await every_page(api, inbox.headers, limit=25, q="EXAMPLE.com", status="resolved")

    expected = [t for t in inbox.threads if t.status == "resolved"]
    assert ids(items) == ordered(expected, "recent")


async def test_one_org_never_sees_another_orgs_threads(
    api: httpx.AsyncClient, inbox: Inbox
) -> None:
    mine = await every_page(api, inbox.other_headers)
    searched = await every_page(api, inbox.other_headers, q="lovelace")
    foreign = inbox.threads[LOVELACE].thread_id

    assert ids(mine) == ordered(inbox.other_threads, "recent")
    assert ids(searched) == [inbox.other_threads[LOVELACE].thread_id]
    assert (await api.get(f"/v1/threads/{foreign}", headers=inbox.other_headers)).status_code == 404
    assert (await api.get(f"/v1/threads/{foreign}", headers=inbox.headers)).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"status": "open"},
        {"handled_by": "robot"},
        {"priority": "critical"},
        {"channel": "fax"},
        {"sort": "newest"},
        {"limit": "0"},
        {"limit": "201"},
        {"q": "a\x00b"},
        {"cursor": "not-a-cursor"},
    ],
)
async def test_bad_filter_values_get_422(
    api: httpx.AsyncClient, inbox: Inbox, params: dict[str, str]
) -> None:
    response = await api.get("/v1/threads", params=params, headers=inbox.headers)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == next(iter(params))


def forged(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("recent", forged(["2020-01-01T00:00:00", "th_x"])),  # no timezone
        ("recent", forged(["2020-01-01T00:00:00+00:00", 7])),  # id not a string
        ("priority", forged([99, "2020-01-01T00:00:00+00:00", "th_x"])),
        ("value", forged([True, "2020-01-01T00:00:00+00:00", "th_x"])),
        ("value", forged([10**400, "2020-01-01T00:00:00+00:00", "th_x"])),
        ("oldest_unread", forged({"rank": 1})),
    ],
)
async def test_forged_cursors_get_422(
    api: httpx.AsyncClient, inbox: Inbox, sort: str, cursor: str
) -> None:
    response = await api.get(
        "/v1/threads", params={"sort": sort, "cursor": cursor}, headers=inbox.headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "cursor"


async def test_a_cursor_of_one_sort_is_refused_by_another(
    api: httpx.AsyncClient, inbox: Inbox
) -> None:
    cursor = (await get(api, inbox.headers, limit=2))["next_cursor"]

    response = await api.get(
        "/v1/threads", params={"sort": "priority", "cursor": cursor}, headers=inbox.headers
    )

    assert response.status_code == 422


async def test_a_thread_shows_its_contact_latest_messages_and_open_escalations(
    api: httpx.AsyncClient, inbox: Inbox
) -> None:
    thread = inbox.threads[34 * 3]  # escalations (i % 17 == 0), a phone, 5 + 102 % 11 messages
    listed = [
        item
        for item in (await get(api, inbox.headers, q=thread.email))["items"]
        if item["thread_id"] == thread.thread_id
    ]

    whole = (await api.get(f"/v1/threads/{thread.thread_id}", headers=inbox.headers)).json()
    capped = (
        await api.get(f"/v1/threads/{thread.thread_id}?limit=3", headers=inbox.headers)
    ).json()

    assert {k: whole[k] for k in listed[0]} == listed[0]
    assert whole["contact"] == {
        "id": thread.contact_id,
        "name": thread.name,
        "emails": [thread.email],
        "phones": [thread.phone],
    }
    assert [m["id"] for m in whole["messages"]] == [m["id"] for m in thread.messages]
    assert whole["earlier_messages"] == 0
    first = whole["messages"][0]
    assert {k: first[k] for k in ("channel", "direction", "sender", "body", "status")} == {
        k: thread.messages[0][k] for k in ("channel", "direction", "sender", "body", "status")
    }
    assert [m["id"] for m in capped["messages"]] == [m["id"] for m in thread.messages[-3:]]
    assert capped["earlier_messages"] == len(thread.messages) - 3
    assert [(e["status"], e["priority"]) for e in whole["escalations"]] == [
        ("open", "high"),
        ("acknowledged", "high"),
    ]
    too_many = await api.get(f"/v1/threads/{thread.thread_id}?limit=501", headers=inbox.headers)
    assert too_many.status_code == 422
    missing = await api.get("/v1/threads/th_nope", headers=inbox.headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


# --- threads follow their messages -------------------------------------------------------


async def thread_of(api: httpx.AsyncClient, headers: Headers, thread_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/threads/{thread_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_status(engine: Engine, thread_id: str, status: str) -> None:
    with Session(engine) as session:
        thread = session.get(Thread, thread_id)
        assert thread is not None
        thread.status = status
        session.add(thread)
        session.commit()


async def test_an_inbound_message_makes_a_resolved_thread_unread_and_a_reply_does_not(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)

    def inbound(body: str, provider_id: str) -> tuple[str, str]:
        with Session(pg_engine) as session:
            recorded = record_inbound_message(
                session,
                org_id=org_id,
                channel=Channel.SMS,
                from_phone="+447700900999",
                to_address="+447700900000",
                body=body,
                provider_message_id=provider_id,
                consent=None,
                source="twilio",
            )
            session.commit()
            message = session.get(Message, recorded.message_id)
            assert message is not None and message.thread_id is not None
            return message.thread_id, message.id

    thread_id, first = inbound("Hello?", "SM1")
    opened = await thread_of(api, headers, thread_id)
    assert (opened["status"], opened["channels"]) == ("unread", ["sms"])
    assert opened["last_message"]["body"] == "Hello?"

    set_status(pg_engine, thread_id, "resolved")
    with Session(pg_engine) as session:
        reply = claim_confirmation(session, org_id=org_id, inbound_message_id=first, kind="help")
        replied_at = reply.created_at
        session.commit()
    answered = await thread_of(api, headers, thread_id)
    assert answered["status"] == "resolved"  # our own reply leaves it as it was
    assert answered["last_message"]["direction"] == "outbound"
    assert when(answered["last_message_at"]) == replied_at

    inbound("Are you there?", "SM2")
    inbound("Are you there?", "SM2")  # the provider's retry: nothing new
    again = await thread_of(api, headers, thread_id)
    assert again["status"] == "unread"
    assert again["unread"] is True
    assert again["last_message"]["body"] == "Are you there?"
    assert len(again["messages"]) == 3
    with Session(pg_engine) as session:
        thread = session.get(Thread, thread_id)
        assert thread is not None
        assert thread.last_inbound_at == when(again["last_message_at"])
    unread = ids(await every_page(api, headers, status="unread"))
    assert unread == [thread_id]


async def test_a_first_touch_shows_in_the_inbox(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    phone = unique_phone()
    lead = await api.post(
        "/v1/leads",
        json={
            "name": "Grace Hopper",
            "phone": phone,
            "consent": {"sms": True},
            "source": "website_form",
        },
        headers=headers,
    )
    assert lead.status_code == 202, lead.text

    async def touched() -> dict[str, Any] | None:
        items = (await get(api, headers))["items"]
        return items[0] if items and items[0]["last_message"] else None

    item = await eventually(touched)
    assert item["name"] == "Grace Hopper"
    assert item["channels"] == ["sms"]
    assert item["last_message"]["direction"] == "outbound"
    assert item["last_message_at"] == item["last_message"]["created_at"]
    national = f"0{phone.removeprefix('+44')[:4]} {phone.removeprefix('+44')[4:]}"  # 07911 1...
    found = ids((await get(api, headers, q=national))["items"])
    assert found == [item["thread_id"]]


async def test_merging_contacts_carries_the_other_threads_activity_over(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    keep, other = seed(pg_engine, org_id=org_id, count=2, rng=random.Random(3))
    set_status(pg_engine, keep.thread_id, "resolved")
    set_status(pg_engine, other.thread_id, "unread")
    latest = max(m["created_at"] for m in keep.messages + other.messages)

    merged = await api.post(
        f"/v1/contacts/{keep.contact_id}/merge",
        json={"other_id": other.contact_id},
        headers=headers,
    )

    assert merged.status_code == 200, merged.text
    [item] = (await get(api, headers))["items"]
    assert item["thread_id"] == keep.thread_id
    assert item["status"] == "unread"
    assert when(item["last_message_at"]) == latest
    with Session(pg_engine) as session:
        moved = session.exec(select(Message).where(Message.thread_id == keep.thread_id)).all()
    assert len(moved) == len(keep.messages) + len(other.messages)
