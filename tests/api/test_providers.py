"""Providers (API.md "Appointments and the people who do the work"): added by the org's key or
its owner, named once per org, listed by name, never another org's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from models.database import make_engine, session_scope
from models.store.sessions import add_session
from models.tables import utcnow
from tests.conftest import create_org, make_settings, serve

#: These routes never use Temporal.
NO_TEMPORAL = "127.0.0.1:1"


@pytest.fixture
async def api(any_db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(
        make_settings(database_url=any_db_url, temporal_address=NO_TEMPORAL)
    ) as client:
        yield client


async def listed(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await api.get("/v1/providers", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_providers_are_added_and_listed_by_name(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    sam = await api.post(
        "/v1/providers",
        json={"name": "  Sam   Okafor ", "phone": "+44 7911 123456", "email": "Sam@Shine.example"},
        headers=headers,
    )
    ana = await api.post("/v1/providers", json={"name": "Ana"}, headers=headers)

    assert (sam.status_code, ana.status_code) == (201, 201), sam.text
    assert set(sam.json()) == {"id"}
    assert [(p["id"], p["name"], p["phone"], p["email"]) for p in await listed(api, headers)] == [
        (ana.json()["id"], "Ana", None, None),
        (sam.json()["id"], "Sam Okafor", "+447911123456", "sam@shine.example"),
    ]


async def test_a_name_the_org_already_has_is_409_and_adds_nothing(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    first = await api.post("/v1/providers", json={"name": "Sam Okafor"}, headers=headers)

    again = await api.post("/v1/providers", json={"name": " Sam  Okafor"}, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "provider_exists"
    assert [p["name"] for p in await listed(api, headers)] == ["Sam Okafor"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "Sam", "phone": "not a phone"},
        {"name": "Sam", "email": "nobody"},
        {"name": "Sam", "colour": "blue"},
    ],
)
async def test_bad_providers_get_422_and_nothing_is_added(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    _, headers = await create_org(api)

    answer = await api.post("/v1/providers", json=body, headers=headers)

    assert answer.status_code == 422, answer.text
    assert await listed(api, headers) == []


async def test_an_org_sees_only_its_own_and_a_key_is_needed(api: httpx.AsyncClient) -> None:
    _, ours = await create_org(api)
    _, theirs = await create_org(api, name="Other Cleaning")
    await api.post("/v1/providers", json={"name": "Sam"}, headers=ours)

    assert await listed(api, theirs) == []
    # The same name is free in another org.
    assert (
        await api.post("/v1/providers", json={"name": "Sam"}, headers=theirs)
    ).status_code == 201
    assert (await api.get("/v1/providers")).status_code == 401
    assert (await api.post("/v1/providers", json={"name": "Ana"})).status_code == 401


async def test_only_the_owner_adds_providers_from_a_session(
    api: httpx.AsyncClient, any_db_url: str
) -> None:
    org_id, headers = await create_org(api)
    made = await api.post(
        "/v1/operators",
        json={"name": "Olu", "email": f"olu-{org_id}@shine.example", "role": "operator"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    engine = make_engine(any_db_url)
    try:
        with session_scope(engine) as session:
            token, _ = add_session(
                session, org_id=org_id, operator_id=made.json()["id"], now=utcnow(), user_agent="t"
            )
    finally:
        engine.dispose()
    operator = {
        "Cookie": f"kw_session={token}",
        "Sec-Fetch-Site": "same-origin",
        "HX-Request": "true",
    }

    refused = await api.post("/v1/providers", json={"name": "Sam"}, headers=operator)

    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "owner_only"
    assert await listed(api, headers) == []
